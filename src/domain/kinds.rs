//! What kind of thing: a sender, a template, a reply. Stored as text columns and named in
//! config and mapping files alike.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Github,
    Pagerduty,
    Servicenow,
}

impl std::str::FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            SourceKind::Github,
            SourceKind::Pagerduty,
            SourceKind::Servicenow,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not a source kind (github, pagerduty, servicenow)"))
    }
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Github => "github",
            SourceKind::Pagerduty => "pagerduty",
            SourceKind::Servicenow => "servicenow",
        }
    }
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

/// How the outcome is posted back to the ticket.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    None,
    /// ServiceNow work notes (internal).
    WorkNotes,
    /// ServiceNow additional comments (customer visible).
    Comments,
    /// GitHub issue or PR comment.
    Comment,
    /// GitHub commit status.
    Status,
    /// PagerDuty incident note.
    Note,
}

impl std::str::FromStr for Reply {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Reply::None,
            Reply::WorkNotes,
            Reply::Comments,
            Reply::Comment,
            Reply::Status,
            Reply::Note,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
        .ok_or_else(|| format!("`{s}` is not a reply kind"))
    }
}

impl Reply {
    pub fn as_str(self) -> &'static str {
        match self {
            Reply::None => "none",
            Reply::WorkNotes => "work_notes",
            Reply::Comments => "comments",
            Reply::Comment => "comment",
            Reply::Status => "status",
            Reply::Note => "note",
        }
    }

    pub fn default_for(kind: SourceKind) -> Reply {
        match kind {
            SourceKind::Servicenow => Reply::WorkNotes,
            SourceKind::Github => Reply::Comment,
            SourceKind::Pagerduty => Reply::Note,
        }
    }

    /// The replies a source kind can carry out.
    pub fn allowed_for(kind: SourceKind) -> &'static [Reply] {
        match kind {
            SourceKind::Servicenow => &[Reply::None, Reply::WorkNotes, Reply::Comments],
            SourceKind::Github => &[Reply::None, Reply::Comment, Reply::Status],
            SourceKind::Pagerduty => &[Reply::None, Reply::Note],
        }
    }
}

text_column!(SourceKind);
text_column!(TemplateKind);
text_column!(Reply);

impl std::fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// A string schema listing the words, for the OpenAPI document.
impl utoipa::PartialSchema for TemplateKind {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(["job", "workflow"]))
            .into()
    }
}
impl utoipa::ToSchema for TemplateKind {}
