//! Per-source settings: which sender it is and how its deliveries are authenticated.

pub use crate::domain::SourceKind;
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// How a ServiceNow source proves deliveries are authentic.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SourceAuth {
    #[default]
    Hmac,
    /// `Authorization: Bearer <token>`, for instances that cannot sign.
    Bearer,
}

/// What a ServiceNow MAC covers. Only a signed delivery header may serve as the dedupe key.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum SignatureScheme {
    #[serde(rename = "{body}")]
    Body,
    #[serde(rename = "{timestamp}.{body}")]
    TimestampBody,
    #[serde(rename = "{timestamp}.{delivery}.{body}")]
    TimestampDeliveryBody,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    pub kind: SourceKind,
    #[serde(default)]
    pub auth: SourceAuth,
    /// Active HMAC secrets; more than one during rotation. A single string is split on newlines.
    #[serde(default, deserialize_with = "one_or_many")]
    pub secrets: Vec<SecretString>,
    /// Accepted bearer tokens (ServiceNow `auth: bearer`).
    #[serde(default, deserialize_with = "one_or_many")]
    pub bearer_tokens: Vec<SecretString>,
    /// ServiceNow: header carrying the base64 (or hex) HMAC-SHA256.
    pub signature_header: Option<String>,
    /// ServiceNow: optional header with a unix timestamp that is signed as `{timestamp}.{body}`.
    pub timestamp_header: Option<String>,
    /// ServiceNow: header carrying a unique delivery id. The dedupe key only when signed
    /// (`signature_scheme: "{timestamp}.{delivery}.{body}"`); otherwise kept as information.
    pub delivery_header: Option<String>,
    /// ServiceNow: what the MAC covers. Unset: `{timestamp}.{body}` when `timestamp_header` is
    /// set, else `{body}`.
    pub signature_scheme: Option<SignatureScheme>,
    /// Accepted clock difference for signed timestamps.
    #[serde(default = "default_replay_window")]
    pub replay_window_secs: u64,
    /// Overrides `server.body_limit_bytes` for this source.
    pub body_limit_bytes: Option<usize>,
    /// Where job links and outcomes are posted back; absent means no post-backs.
    #[serde(default)]
    pub reply: Option<super::ReplySettings>,
    /// GitHub and ServiceNow: find deliveries missed while the bridge was away.
    #[serde(default)]
    pub catch_up: Option<super::CatchUpSettings>,
    /// The controller this source's rules launch on, unless a rule names another
    /// (`controllers:`); unset: `default`.
    pub controller: Option<String>,
}

fn default_replay_window() -> u64 {
    300
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.lines().map(str::to_string).collect(),
        OneOrMany::Many(v) => v,
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
        .collect())
}

impl SourceSettings {
    /// The scheme in force (ServiceNow HMAC).
    pub fn scheme(&self) -> SignatureScheme {
        self.signature_scheme
            .unwrap_or(match self.timestamp_header {
                Some(_) => SignatureScheme::TimestampBody,
                None => SignatureScheme::Body,
            })
    }

    /// The checked `catch_up:` block, when there is one.
    pub fn catch_up_plan(&self) -> Option<Result<super::CatchUpPlan, String>> {
        let c = self.catch_up.as_ref()?;
        let signed_delivery = self.kind == SourceKind::Servicenow
            && self.auth == SourceAuth::Hmac
            && self.scheme() == SignatureScheme::TimestampDeliveryBody;
        if signed_delivery {
            // A caught-up record has no delivery header: it and the business rule's delivery of
            // the same record version would be two events.
            return Some(Err(
                "catch_up needs the record's identity as the dedupe key, but \
                 signature_scheme `{timestamp}.{delivery}.{body}` dedupes on the delivery header; \
                 use `{timestamp}.{body}` and send sys_id, sys_updated_on and sys_mod_count \
                 (docs/senders.md)"
                    .into(),
            ));
        }
        Some(c.plan(self.kind, self.reply.as_ref()))
    }

    fn validate_scheme(&self) -> Result<(), String> {
        let Some(scheme) = self.signature_scheme else {
            return Ok(());
        };
        if self.auth == SourceAuth::Bearer {
            return Err("`signature_scheme` applies to auth: hmac only".into());
        }
        let (ts, delivery) = (
            self.timestamp_header.is_some(),
            self.delivery_header.is_some(),
        );
        match scheme {
            SignatureScheme::Body if ts => Err(
                "`timestamp_header` is set but signature_scheme `{body}` does not sign it".into(),
            ),
            SignatureScheme::TimestampBody | SignatureScheme::TimestampDeliveryBody if !ts => {
                Err("this signature_scheme signs a timestamp: set `timestamp_header`".into())
            }
            SignatureScheme::TimestampDeliveryBody if !delivery => Err(
                "signature_scheme `{timestamp}.{delivery}.{body}` needs `delivery_header`".into(),
            ),
            _ => Ok(()),
        }
    }

    pub fn validate(&self, name: &str) -> Result<(), String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err("source names use lowercase letters, digits, `-` and `_`".into());
        }
        let sn_only = [
            ("signature_header", self.signature_header.is_some()),
            ("timestamp_header", self.timestamp_header.is_some()),
            ("delivery_header", self.delivery_header.is_some()),
            ("signature_scheme", self.signature_scheme.is_some()),
        ];
        if self.kind != SourceKind::Servicenow {
            if let Some((key, _)) = sn_only.iter().find(|(_, set)| *set) {
                return Err(format!("`{key}` applies to kind servicenow only"));
            }
            if self.auth == SourceAuth::Bearer || !self.bearer_tokens.is_empty() {
                return Err(format!(
                    "{} deliveries are signed; bearer auth is for servicenow only",
                    self.kind.as_str()
                ));
            }
        }
        if let Some(reply) = &self.reply {
            reply.validate(self.kind)?;
        }
        self.validate_scheme()?;
        if self.catch_up.is_some() {
            self.catch_up_plan().transpose()?;
        }
        match self.auth {
            SourceAuth::Hmac if self.secrets.is_empty() => {
                Err("needs at least one secret (`secrets` or `secrets_file`)".into())
            }
            SourceAuth::Bearer if self.bearer_tokens.is_empty() => {
                Err("auth: bearer needs `bearer_tokens` (or `bearer_tokens_file`)".into())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;

    fn err(source: &str) -> String {
        let yaml = format!("{DEV}sources:\n  s: {{kind: servicenow, secrets: [k], {source}}}\n");
        Settings::from_parts(Some(&yaml), None, false)
            .unwrap_err()
            .to_string()
    }

    /// Short test secrets are allowed in dev mode, which needs a loopback listener.
    const DEV: &str = "dev_mode: true\nserver: {listen: \"127.0.0.1:0\"}\n";

    #[test]
    fn signature_scheme_needs_the_headers_it_signs() {
        let full = "signature_scheme: \"{timestamp}.{delivery}.{body}\"";
        assert!(err(&format!("timestamp_header: X-Ts, {full}"))
            .contains("signature_scheme `{timestamp}.{delivery}.{body}` needs `delivery_header`"));
        assert!(err(&format!("delivery_header: X-D, {full}"))
            .contains("this signature_scheme signs a timestamp: set `timestamp_header`"));
        assert!(err("timestamp_header: X-Ts, signature_scheme: \"{body}\"")
            .contains("does not sign it"));
        assert!(err("signature_scheme: \"{delivery}\"").contains("unknown variant"));
        let yaml = format!(
            "{DEV}sources:\n  s: {{kind: servicenow, secrets: [k], timestamp_header: X-Ts, \
             delivery_header: X-D, {full}}}\n"
        );
        assert!(Settings::from_parts(Some(&yaml), None, false).is_ok());
    }

    #[test]
    fn dedupe_days_cover_event_retention() {
        let e = Settings::from_parts(Some("retention: {max_age_days: 120}\n"), None, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("retention.dedupe_days (90) must be at least"),
            "{e}"
        );
        let ok = "retention: {max_age_days: 120, dedupe_days: 0}\n";
        assert!(Settings::from_parts(Some(ok), None, false).is_ok());
    }
}
