//! What the controller answers, as the bridge needs it, and the errors that say what to fix.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// AAP 2.5+ behind the platform gateway, or the classic `/api/v2/` (AWX, Tower, AAP ≤ 2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    Aap,
    Awx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// `job_templates/`
    Job,
    /// `workflow_job_templates/`
    Workflow,
}

impl TemplateKind {
    pub fn collection(self) -> &'static str {
        match self {
            TemplateKind::Job => "job_templates",
            TemplateKind::Workflow => "workflow_job_templates",
        }
    }
    /// The collection of the jobs this kind of template creates.
    pub fn jobs(self) -> &'static str {
        match self {
            TemplateKind::Job => "jobs",
            TemplateKind::Workflow => "workflow_jobs",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Job => "job",
            TemplateKind::Workflow => "workflow",
        }
    }
}

impl std::str::FromStr for TemplateKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "job" => Ok(TemplateKind::Job),
            "workflow" => Ok(TemplateKind::Workflow),
            other => Err(format!("`{other}` is not a template kind (job, workflow)")),
        }
    }
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
    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.status)
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "successful" | "failed" | "error" | "canceled")
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
    ControllerError::BadRequest(truncate(&body.to_string(), 500))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
