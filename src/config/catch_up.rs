//! `catch_up:` under a GitHub or ServiceNow source: how the bridge finds deliveries it missed.
//! GitHub and ServiceNow business rules never retry, so a delivery lost while the bridge was
//! down is found afterwards: GitHub is asked to redeliver it, ServiceNow records are read back.
//!
//! The URL, credentials, `ca_file`, `timeout_secs` and `allow_insecure_http` default to the
//! source's `reply:` settings, so one token or user serves both.

use super::reply::header_safe;
use super::{ReplySettings, SourceKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatchUpSettings {
    /// github: API base URL (default: `reply.api_url`, else https://api.github.com).
    pub api_url: Option<String>,
    /// github: the webhooks whose delivery logs are read.
    #[serde(default)]
    pub hooks: Vec<HookSetting>,
    /// servicenow: the instance (default: `reply.api_url`).
    pub instance_url: Option<String>,
    /// servicenow: the table read back, e.g. `incident`.
    pub table: Option<String>,
    /// servicenow: an encoded query selecting the records the business rule sends.
    pub query: Option<String>,
    /// servicenow: `sysparm_fields`; all fields when unset.
    pub fields: Option<Vec<String>>,
    /// servicenow: how far back the first pass reads.
    pub lookback_secs: Option<u64>,
    /// servicenow: which versions of a record the bridge already has an event for are stored.
    #[serde(default)]
    pub versions: Versions,
    /// servicenow: records last updated by these users are skipped (the bridge's own notes).
    /// Default: the basic-auth users of `catch_up` and `reply`.
    pub skip_updated_by: Option<Vec<String>>,
    /// github: bearer token; servicenow: OAuth bearer token (instead of username/password).
    pub token: Option<SecretString>,
    /// servicenow: basic auth.
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// A pass at start-up and then this often.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    /// github: redeliveries requested per pass (default 100); servicenow: records read (1000).
    pub max_per_run: Option<u32>,
    /// Each pass re-reads this much before the checkpoint (clock skew, slow commits).
    #[serde(default = "default_overlap")]
    pub overlap_secs: u64,
    pub timeout_secs: Option<u64>,
    /// PEM bundle (`ca_file: /path`).
    pub ca: Option<String>,
    pub allow_insecure_http: Option<bool>,
}

/// `{repo: "owner/name", id: 123}` or `{org: "name", id: 456}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSetting {
    pub repo: Option<String>,
    pub org: Option<String>,
    pub id: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Versions {
    /// A record the bridge has an event for is stored again only when its category changed:
    /// the business rule sends on insert and on a category change, not on every update.
    #[default]
    CategoryChange,
    /// Every version not stored yet.
    All,
}

fn default_interval() -> u64 {
    300
}
fn default_overlap() -> u64 {
    60
}

/// What a pass needs, checked.
#[derive(Debug, Clone)]
pub enum CatchUpPlan {
    Github(GithubPlan),
    Servicenow(ServiceNowPlan),
}

/// Settings both kinds share.
#[derive(Debug, Clone)]
pub struct Pace {
    pub interval_secs: u64,
    pub max_per_run: u32,
    pub overlap_secs: u64,
    pub timeout_secs: u64,
    pub ca: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GithubPlan {
    pub api_url: String,
    pub token: SecretString,
    pub hooks: Vec<Hook>,
    pub pace: Pace,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    Repo { repo: String, id: u64 },
    Org { org: String, id: u64 },
}

impl Hook {
    /// The hook's API path, `/repos/{owner}/{repo}/hooks/{id}` or `/orgs/{org}/hooks/{id}`.
    pub fn path(&self) -> String {
        match self {
            Hook::Repo { repo, id } => format!("/repos/{repo}/hooks/{id}"),
            Hook::Org { org, id } => format!("/orgs/{org}/hooks/{id}"),
        }
    }
    pub fn id(&self) -> u64 {
        match self {
            Hook::Repo { id, .. } | Hook::Org { id, .. } => *id,
        }
    }
    /// The checkpoint's scope, e.g. `repo acme/ops hook 12`.
    pub fn scope(&self) -> String {
        match self {
            Hook::Repo { repo, id } => format!("repo {repo} hook {id}"),
            Hook::Org { org, id } => format!("org {org} hook {id}"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum SnAuth {
    Bearer(SecretString),
    Basic {
        username: String,
        password: SecretString,
    },
}

#[derive(Debug, Clone)]
pub struct ServiceNowPlan {
    pub instance_url: String,
    pub auth: SnAuth,
    pub table: String,
    pub query: Option<String>,
    pub fields: Option<Vec<String>>,
    pub lookback_secs: u64,
    pub versions: Versions,
    pub skip_updated_by: Vec<String>,
    pub pace: Pace,
}

impl CatchUpSettings {
    /// Checks the block for a source of `kind` and fills in what it takes from `reply`.
    pub fn plan(
        &self,
        kind: SourceKind,
        reply: Option<&ReplySettings>,
    ) -> Result<CatchUpPlan, String> {
        let only = |key: &str, set: bool, for_kind: SourceKind| {
            if set && kind != for_kind {
                Err(format!(
                    "catch_up.{key} applies to kind {} only",
                    for_kind.as_str()
                ))
            } else {
                Ok(())
            }
        };
        use SourceKind::{Github, Servicenow};
        only("api_url", self.api_url.is_some(), Github)?;
        only("hooks", !self.hooks.is_empty(), Github)?;
        only("instance_url", self.instance_url.is_some(), Servicenow)?;
        only("table", self.table.is_some(), Servicenow)?;
        only("query", self.query.is_some(), Servicenow)?;
        only("fields", self.fields.is_some(), Servicenow)?;
        only("lookback_secs", self.lookback_secs.is_some(), Servicenow)?;
        only("versions", self.versions != Versions::default(), Servicenow)?;
        only(
            "skip_updated_by",
            self.skip_updated_by.is_some(),
            Servicenow,
        )?;
        only("username", self.username.is_some(), Servicenow)?;
        only("password", self.password.is_some(), Servicenow)?;
        if self.interval_secs == 0 || self.max_per_run == Some(0) {
            return Err(
                "catch_up.interval_secs and catch_up.max_per_run must be at least 1".into(),
            );
        }
        let timeout_secs = self
            .timeout_secs
            .or(reply.map(|r| r.timeout_secs))
            .unwrap_or(10);
        if timeout_secs == 0 {
            return Err("catch_up.timeout_secs must be at least 1".into());
        }
        let pace = |default_max: u32| Pace {
            interval_secs: self.interval_secs,
            max_per_run: self.max_per_run.unwrap_or(default_max),
            overlap_secs: self.overlap_secs,
            timeout_secs,
            ca: self.ca.clone().or_else(|| reply.and_then(|r| r.ca.clone())),
        };
        let insecure = self
            .allow_insecure_http
            .or(reply.map(|r| r.allow_insecure_http))
            .unwrap_or(false);
        match kind {
            SourceKind::Pagerduty => Err(
                "catch_up is for github and servicenow sources (PagerDuty retries on its own)"
                    .into(),
            ),
            SourceKind::Github => {
                let api_url = self
                    .api_url
                    .clone()
                    .or_else(|| reply.and_then(|r| r.api_url.clone()))
                    .unwrap_or_else(|| "https://api.github.com".into());
                let api_url = base_url("catch_up.api_url", &api_url, insecure)?;
                let token = self
                    .token
                    .clone()
                    .or_else(|| reply.and_then(|r| r.token.clone()))
                    .ok_or("catch_up needs `token` (or reply.token) for kind github")?;
                header_safe("catch_up.token", token.expose_secret())?;
                Ok(CatchUpPlan::Github(GithubPlan {
                    api_url,
                    token,
                    hooks: hooks(&self.hooks)?,
                    pace: pace(100),
                }))
            }
            SourceKind::Servicenow => self.servicenow(reply, insecure, pace(1000)),
        }
    }

    fn servicenow(
        &self,
        reply: Option<&ReplySettings>,
        insecure: bool,
        pace: Pace,
    ) -> Result<CatchUpPlan, String> {
        let url = self
            .instance_url
            .clone()
            .or_else(|| reply.and_then(|r| r.api_url.clone()))
            .ok_or("catch_up.instance_url is required (e.g. https://acme.service-now.com)")?;
        let instance_url = base_url("catch_up.instance_url", &url, insecure)?;
        let auth = match (&self.token, &self.username, &self.password) {
            (None, None, None) => match reply {
                Some(r) => sn_auth(&r.token, &r.username, &r.password)
                    .map_err(|e| format!("{e} (taken from reply:)"))?,
                None => return Err("catch_up needs `token`, or `username` and `password`".into()),
            },
            (t, u, p) => sn_auth(t, u, p)?,
        };
        let table = self
            .table
            .clone()
            .ok_or("catch_up.table is required for servicenow (e.g. incident)")?;
        if !crate::domain::ticket::valid_table(&table) {
            return Err(format!(
                "catch_up.table: `{table}` is not a table name ([a-z0-9_]+)"
            ));
        }
        if let Some(q) = &self.query {
            crate::domain::snow_query::validate(q).map_err(|e| format!("catch_up.query: {e}"))?;
        }
        if let Some(fields) = &self.fields {
            if let Some(bad) = fields
                .iter()
                .find(|f| !crate::domain::snow_query::field_name(f))
            {
                return Err(format!("catch_up.fields: `{bad}` is not a field name"));
            }
        }
        let lookback_secs = self.lookback_secs.unwrap_or(3600);
        if lookback_secs == 0 {
            return Err("catch_up.lookback_secs must be at least 1".into());
        }
        let skip_updated_by = self.skip_updated_by.clone().unwrap_or_else(|| {
            let users = [&self.username, &reply.and_then(|r| r.username.clone())];
            users.into_iter().flatten().cloned().collect()
        });
        Ok(CatchUpPlan::Servicenow(ServiceNowPlan {
            instance_url,
            auth,
            table,
            query: self.query.clone(),
            fields: self.fields.clone(),
            lookback_secs,
            versions: self.versions,
            skip_updated_by,
            pace,
        }))
    }
}

fn sn_auth(
    token: &Option<SecretString>,
    username: &Option<String>,
    password: &Option<SecretString>,
) -> Result<SnAuth, String> {
    match (token, username, password) {
        (Some(t), None, None) => {
            header_safe("catch_up.token", t.expose_secret())?;
            Ok(SnAuth::Bearer(t.clone()))
        }
        (None, Some(u), Some(p)) => {
            header_safe("catch_up.username", u)?;
            header_safe("catch_up.password", p.expose_secret())?;
            if u.contains(':') {
                return Err("catch_up.username must not contain `:`".into());
            }
            Ok(SnAuth::Basic {
                username: u.clone(),
                password: p.clone(),
            })
        }
        (Some(_), _, _) => Err("catch_up: set either `token` or `username`/`password`".into()),
        _ => Err("catch_up needs `token`, or `username` and `password`".into()),
    }
}

fn hooks(list: &[HookSetting]) -> Result<Vec<Hook>, String> {
    if list.is_empty() {
        return Err(
            "catch_up.hooks must name at least one webhook ({repo: owner/name, id: 123} \
                    or {org: name, id: 456})"
                .into(),
        );
    }
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 100
            && p.bytes().any(|b| b != b'.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    let mut out: Vec<Hook> = Vec::new();
    for (i, h) in list.iter().enumerate() {
        let hook = match (&h.repo, &h.org) {
            (Some(repo), None) => match repo.split_once('/') {
                Some((o, n)) if part(o) && part(n) => Hook::Repo {
                    repo: repo.clone(),
                    id: h.id,
                },
                _ => {
                    return Err(format!(
                        "catch_up.hooks[{i}].repo `{repo}` is not owner/name"
                    ))
                }
            },
            (None, Some(org)) if part(org) => Hook::Org {
                org: org.clone(),
                id: h.id,
            },
            (None, Some(org)) => {
                return Err(format!("catch_up.hooks[{i}].org `{org}` is not a name"))
            }
            _ => {
                return Err(format!(
                    "catch_up.hooks[{i}] needs exactly one of `repo` and `org`"
                ))
            }
        };
        if h.id == 0 || out.iter().any(|o| o.id() == h.id) {
            return Err(format!("catch_up.hooks[{i}].id must be a webhook id, once"));
        }
        out.push(hook);
    }
    Ok(out)
}

/// An `https://` base URL (or `http://` when allowed) without credentials, query or fragment;
/// returned without a trailing slash.
fn base_url(key: &str, url: &str, allow_http: bool) -> Result<String, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{key} `{url}` is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(format!(
                "{key} `{url}` is http://: credentials would travel in clear text; use https:// \
                 (or set catch_up.allow_insecure_http: true for a local test)"
            ))
        }
        _ => return Err(format!("{key} must be https://")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{key} must not carry credentials"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{key} must not have a query or fragment"));
    }
    Ok(url.trim_end_matches('/').to_string())
}
