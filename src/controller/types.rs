//! What the controller answers, as the bridge needs it, and the errors that say what to fix.

pub use crate::domain::TemplateKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// AAP 2.5+ behind the platform gateway, or the classic `/api/v2/` (AWX, Tower, AAP ≤ 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    Aap,
    Awx,
}

#[derive(Debug, Clone, Serialize)]
pub struct Template {
    pub id: i64,
    pub kind: TemplateKind,
    pub name: String,
    pub organization: Option<String>,
    pub ask_variables_on_launch: bool,
}

/// A job the controller created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Launched {
    pub job_id: i64,
    pub kind: TemplateKind,
    pub status: String,
}

/// A 201 from a launch. `Partial` means the job runs, but the controller dropped fields the
/// template does not prompt for (`ignored_fields`); the bridge's marker may be among them.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchOutcome {
    Launched(Launched),
    Partial {
        launched: Launched,
        ignored_fields: Map<String, Value>,
    },
}

impl LaunchOutcome {
    pub fn launched(&self) -> &Launched {
        match self {
            LaunchOutcome::Launched(l) | LaunchOutcome::Partial { launched: l, .. } => l,
        }
    }
}

/// A round of status reads: what was found, and the ids whose page failed.
#[derive(Debug, Default)]
pub struct JobStates {
    pub found: Vec<JobState>,
    pub unread: Vec<i64>,
}

/// One row of `unified_jobs/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobState {
    pub id: i64,
    #[serde(rename = "type")]
    pub job_type: String,
    pub status: String,
    #[serde(default)]
    pub failed: bool,
    pub started: Option<String>,
    pub finished: Option<String>,
    #[serde(default)]
    pub elapsed: f64,
}

impl JobState {
    /// The status is one of the controller's four ends (`JobStatus::is_terminal`).
    pub fn is_terminal(&self) -> bool {
        self.status
            .parse::<crate::domain::JobStatus>()
            .is_ok_and(crate::domain::JobStatus::is_terminal)
    }
}

/// What a cancel request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Canceled {
    /// 202: the controller is canceling the job.
    Canceled,
    /// 405: the job had already finished (or was already canceled).
    AlreadyDone,
    /// 404: the job is gone.
    Gone,
}

/// A job found while reconciling a launch: its creation time and its extra_vars.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub status: String,
    pub created: String,
    pub extra_vars: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Me {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ControllerError {
    #[error("the controller rejected the credentials: {0}")]
    Unauthorized(String),
    #[error("permission denied: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("the template needs variables to start: {}", .0.join("; "))]
    VariablesNeeded(Vec<String>),
    #[error("the template is missing resources: {}", .0.join("; "))]
    ResourcesNeeded(Vec<String>),
    #[error("not configured to prompt on launch: {} (enable \"Prompt on launch\" for it on the template)", .0.join(", "))]
    NotPromptable(Vec<String>),
    #[error("the controller refused the request (400): {0}")]
    BadRequest(String),
    #[error("the controller is unavailable (HTTP {status}) after {attempts} attempt(s)")]
    Unavailable { status: u16, attempts: u32 },
    /// The request never left: retrying cannot duplicate anything.
    #[error("could not connect to the controller: {0}")]
    Connect(String),
    /// A gateway answered that it could not reach the controller: nothing was sent to it.
    #[error("the controller is unreachable behind its gateway ({0})")]
    NotReached(String),
    /// Sent, but no answer: the call may or may not have taken effect.
    #[error("no answer from the controller: {0}")]
    NoAnswer(String),
    #[error("unexpected answer from the controller: {0}")]
    Protocol(String),
    #[error("controller configuration: {0}")]
    Config(String),
    #[error("token store: {0}")]
    Store(String),
}

impl ControllerError {
    /// Worth trying again later (the controller or the network was down).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ControllerError::Unavailable { .. }
                | ControllerError::Connect(_)
                | ControllerError::NotReached(_)
                | ControllerError::NoAnswer(_)
                | ControllerError::Store(_)
        )
    }
}

/// Maps a 4xx body to the specific error that tells the operator what to fix.
pub fn classify_400(body: &Value) -> ControllerError {
    let strings = |key: &str| -> Option<Vec<String>> {
        body.get(key)?
            .as_array()
            .map(|a| a.iter().map(value_text).collect())
    };
    if let Some(v) = strings("variables_needed_to_start") {
        return ControllerError::VariablesNeeded(v);
    }
    if let Some(v) = strings("resources_needed_to_start") {
        return ControllerError::ResourcesNeeded(v);
    }
    if let Some(obj) = body.as_object() {
        let fields: Vec<String> = obj
            .iter()
            .filter(|(_, v)| value_text(v).contains("not configured to prompt on launch"))
            .map(|(k, _)| k.clone())
            .collect();
        if !fields.is_empty() {
            return ControllerError::NotPromptable(fields);
        }
    }
    ControllerError::BadRequest(body_excerpt(&body.to_string(), 500))
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(value_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Words after which a value is a credential (`Bearer x`, `token=x`, `"password": "x"`).
const SECRET_WORDS: &[&str] = &["bearer", "token", "password", "secret", "authorization"];

/// An answer body for an error message: one line, at most `max` bytes, credentials masked.
/// Text endpoints answer errors in plain text (e.g. a Python repr), so the raw text is kept.
pub fn body_excerpt(body: &str, max: usize) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&mask_secrets(&one_line), max)
}

/// Replaces the value that follows a credential-like word with `****`.
fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(word_end) = next_secret_word(rest) {
        out.push_str(&rest[..word_end]);
        let after = &rest[word_end..];
        // Skip the separator (`": "`, `=`, `: `, a space), then mask up to the next delimiter:
        // a whole `Bearer x` goes, which may over-mask but never leaks.
        let sep = after
            .find(|c: char| !matches!(c, '"' | '\'' | ':' | '=' | ' '))
            .unwrap_or(after.len());
        let value_len = after[sep..]
            .find(['"', '\'', ',', '}', '&', ';', ')'])
            .unwrap_or(after.len() - sep);
        out.push_str(&after[..sep]);
        if value_len > 0 && sep > 0 {
            out.push_str("****");
        } else {
            out.push_str(&after[sep..sep + value_len]);
        }
        rest = &after[sep + value_len..];
    }
    out.push_str(rest);
    out
}

/// The end of the first credential-like word in `text`.
fn next_secret_word(text: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    SECRET_WORDS
        .iter()
        .filter_map(|w| lower.find(w).map(|i| (i, i + w.len())))
        .map(|(i, mut end)| {
            // Take the whole word: `access_token`, `client_secret`, `refresh_token`.
            while lower[end..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
                end += 1;
            }
            (i, end)
        })
        .min()
        .map(|(_, end)| end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn excerpts_keep_text_bodies_and_mask_credentials() {
        let repr =
            "{'detail': ErrorDetail(string='No Job matches the given query.', code='not_found')}\n";
        assert_eq!(
            body_excerpt(repr, 300),
            "{'detail': ErrorDetail(string='No Job matches the given query.', code='not_found')}"
        );
        let json = r#"{"access_token": "abc123", "refresh_token":"r9", "scope": "write"}"#;
        let out = body_excerpt(json, 300);
        assert!(!out.contains("abc123") && !out.contains("r9"), "{out}");
        assert!(out.contains("\"scope\": \"write\""), "{out}");
        let header = body_excerpt("got Authorization: Bearer s3cr3t-value here", 300);
        assert!(!header.contains("s3cr3t"), "{header}");
        assert!(!body_excerpt("token=zzz&x=1", 300).contains("zzz"));
        assert_eq!(
            body_excerpt(&"é".repeat(400), 11),
            format!("{}…", "é".repeat(5))
        );
    }

    #[test]
    fn launch_400_bodies_are_told_apart() {
        assert_eq!(
            classify_400(&json!({"variables_needed_to_start": ["'foo' value missing"]})),
            ControllerError::VariablesNeeded(vec!["'foo' value missing".into()])
        );
        assert!(matches!(
            classify_400(
                &json!({"resources_needed_to_start": ["Job Template 'inventory' is missing or undefined."]})
            ),
            ControllerError::ResourcesNeeded(_)
        ));
        assert_eq!(
            classify_400(&json!({"inventory": ["Field is not configured to prompt on launch."]})),
            ControllerError::NotPromptable(vec!["inventory".into()])
        );
        assert!(matches!(
            classify_400(&json!({"limit": ["bad"]})),
            ControllerError::BadRequest(_)
        ));
    }
}
