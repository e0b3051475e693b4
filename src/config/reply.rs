//! `reply:` under a source: where and how the bridge posts job links and outcomes back.
//!
//! The base URL comes only from here, never from a payload, so a delivery cannot point the
//! bridge at another host.

use super::SourceKind;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySettings {
    /// API base URL. Defaults: github `https://api.github.com`, pagerduty
    /// `https://api.pagerduty.com`. Required for servicenow (`https://acme.service-now.com`).
    pub api_url: Option<String>,
    /// github: bearer token; pagerduty: REST API key (`Authorization: Token token=…`);
    /// servicenow: OAuth bearer token (instead of `username`/`password`).
    pub token: Option<SecretString>,
    /// servicenow: basic auth user.
    pub username: Option<String>,
    /// servicenow: basic auth password.
    pub password: Option<SecretString>,
    /// pagerduty: the `From` header, the email of a PagerDuty user.
    pub from: Option<String>,
    /// github: commit status context; must start with `aap-bridge`.
    pub status_context: Option<String>,
    /// Per request, connecting included.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// PEM bundle of extra CA certificates, as text. Written as `ca_file: /path` in YAML; the
    /// loader's generic `*_file` rule reads the file into `ca`.
    pub ca: Option<String>,
    /// Turns TLS verification off. Logged as a warning at start-up; never for production.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Allows an `http://` api_url (credentials in clear text); for local tests only.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// servicenow: the tables post-backs may write to (default [`DEFAULT_TABLES`]).
    pub tables: Option<Vec<String>>,
}

/// ServiceNow tables a post-back may go to unless `reply.tables` says otherwise.
pub const DEFAULT_TABLES: &[&str] = &[
    "incident",
    "sc_req_item",
    "sc_task",
    "change_request",
    "problem",
];

fn default_timeout() -> u64 {
    10
}

impl ReplySettings {
    /// Commit status context when `status_context` is not set. GitHub `status` webhooks whose
    /// context starts with `aap-bridge` are ignored at ingest, so our statuses trigger no rule.
    pub const DEFAULT_STATUS_CONTEXT: &'static str = "aap-bridge";

    /// The configured base URL, or the kind's default, without a trailing slash.
    pub fn api_url(&self, kind: SourceKind) -> Option<String> {
        let url = match (&self.api_url, kind) {
            (Some(u), _) => u.as_str(),
            (None, SourceKind::Github) => "https://api.github.com",
            (None, SourceKind::Pagerduty) => "https://api.pagerduty.com",
            (None, SourceKind::Servicenow) => return None,
        };
        Some(url.trim_end_matches('/').to_string())
    }

    /// servicenow: the allowed tables.
    pub fn tables(&self) -> Vec<String> {
        match &self.tables {
            Some(t) => t.clone(),
            None => DEFAULT_TABLES.iter().map(|t| t.to_string()).collect(),
        }
    }

    pub fn status_context(&self) -> &str {
        self.status_context
            .as_deref()
            .unwrap_or(Self::DEFAULT_STATUS_CONTEXT)
    }

    pub fn validate(&self, kind: SourceKind) -> Result<(), String> {
        let url = self.api_url(kind).ok_or(
            "reply.api_url is required for servicenow (e.g. https://acme.service-now.com)",
        )?;
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| format!("reply.api_url `{url}` is not a URL: {e}"))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http => {}
            "http" => {
                return Err(format!(
                    "reply.api_url `{url}` is http://: credentials would travel in clear text; \
                     use https:// (or set reply.allow_insecure_http: true for a local test)"
                ))
            }
            _ => return Err("reply.api_url must be https://".into()),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("reply.api_url must not carry credentials; use token or username".into());
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err("reply.api_url must not have a query or fragment".into());
        }
        if self.timeout_secs == 0 {
            return Err("reply.timeout_secs must be at least 1".into());
        }
        let only = |key: &str, set: bool, for_kind: SourceKind| {
            if set && kind != for_kind {
                Err(format!(
                    "reply.{key} applies to kind {} only",
                    for_kind.as_str()
                ))
            } else {
                Ok(())
            }
        };
        only("username", self.username.is_some(), SourceKind::Servicenow)?;
        only("password", self.password.is_some(), SourceKind::Servicenow)?;
        only("from", self.from.is_some(), SourceKind::Pagerduty)?;
        only("tables", self.tables.is_some(), SourceKind::Servicenow)?;
        if let Some(tables) = &self.tables {
            if tables.is_empty() {
                return Err("reply.tables must name at least one table".into());
            }
            if let Some(bad) = tables
                .iter()
                .find(|t| !crate::domain::ticket::valid_table(t))
            {
                return Err(format!(
                    "reply.tables: `{bad}` is not a table name ([a-z0-9_]+)"
                ));
            }
        }
        only(
            "status_context",
            self.status_context.is_some(),
            SourceKind::Github,
        )?;
        if let Some(t) = &self.token {
            header_safe("reply.token", t.expose_secret())?;
        }
        match kind {
            SourceKind::Github | SourceKind::Pagerduty if self.token.is_none() => {
                return Err(format!(
                    "reply needs `token` (or `token_file`) for kind {}",
                    kind.as_str()
                ));
            }
            SourceKind::Servicenow => match (&self.token, &self.username, &self.password) {
                (Some(_), None, None) => {}
                (None, Some(u), Some(p)) => {
                    header_safe("reply.username", u)?;
                    header_safe("reply.password", p.expose_secret())?;
                    if u.contains(':') {
                        return Err("reply.username must not contain `:`".into());
                    }
                }
                (Some(_), _, _) => {
                    return Err(
                        "reply: set either `token` or `username`/`password`, not both".into(),
                    )
                }
                _ => {
                    return Err(
                        "reply needs `token`, or `username` and `password`, for servicenow".into(),
                    )
                }
            },
            _ => {}
        }
        if kind == SourceKind::Pagerduty {
            let from = self
                .from
                .as_deref()
                .ok_or("reply.from (a PagerDuty user's email) is required for pagerduty")?;
            header_safe("reply.from", from)?;
            if !from.contains('@') {
                return Err("reply.from must be the email of a PagerDuty user".into());
            }
        }
        if let Some(c) = &self.status_context {
            if !c.starts_with(Self::DEFAULT_STATUS_CONTEXT) || c.len() > 255 {
                return Err(
                    "reply.status_context must start with `aap-bridge` (so the status webhook \
                     it provokes is ignored) and be at most 255 characters"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// Values that end up in a header: non-empty visible ASCII (and spaces). The value is never
/// echoed, since it may be a secret.
pub(super) fn header_safe(key: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!(
            "{key} must be non-empty printable ASCII (check for a stray newline)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> ReplySettings {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_and_requirements_per_kind() {
        let gh = parse("token: t\n");
        assert_eq!(
            gh.api_url(SourceKind::Github).as_deref(),
            Some("https://api.github.com")
        );
        assert!(gh.validate(SourceKind::Github).is_ok());
        assert_eq!(gh.status_context(), "aap-bridge");
        assert_eq!(gh.timeout_secs, 10);
        let err = gh.validate(SourceKind::Pagerduty).unwrap_err();
        assert!(err.contains("from"), "{err}");
        assert!(gh.validate(SourceKind::Servicenow).is_err());

        let sn = parse("api_url: https://acme.service-now.com/\nusername: u\npassword: p\n");
        assert!(sn.validate(SourceKind::Servicenow).is_ok());
        assert_eq!(
            sn.api_url(SourceKind::Servicenow).as_deref(),
            Some("https://acme.service-now.com")
        );
        let both = parse("api_url: https://x.example\nusername: u\npassword: p\ntoken: t\n");
        assert!(both.validate(SourceKind::Servicenow).is_err());
        let half = parse("api_url: https://x.example\nusername: u\n");
        assert!(half.validate(SourceKind::Servicenow).is_err());
    }

    #[test]
    fn bad_urls_and_misplaced_keys_are_refused() {
        for yaml in [
            "token: t\napi_url: ftp://x.example\n",
            "token: t\napi_url: https://u:p@x.example\n",
            "token: t\napi_url: not a url\n",
            "token: t\nusername: u\n",
            "token: t\nstatus_context: ci/other\n",
            "token: \"a\\nb\"\n",
            "token: t\ntimeout_secs: 0\n",
        ] {
            assert!(parse(yaml).validate(SourceKind::Github).is_err(), "{yaml}");
        }
        let pd = parse("token: k\nfrom: bot@example.com\nstatus_context: aap-bridge/x\n");
        assert!(pd.validate(SourceKind::Pagerduty).is_err());
    }
}
