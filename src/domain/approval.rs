//! A rule's `approval:` block, as written and as stored on each launch it plans (the
//! lifecycle itself is in `approval`).

use serde::{Deserialize, Serialize};

/// `approval: {timeout_secs: 86400, approvers: [...], allow_self_approval: false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// How long the request stands; then the launch settles `expired`.
    #[serde(default = "a_day")]
    pub timeout_secs: u64,
    /// Who may approve besides the repository's writers (GitHub): user logins or `org/team`;
    /// PagerDuty user ids. Empty on GitHub: anyone with write access.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// The person who raised the event may approve it too.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// ServiceNow: the record field whose value approves or denies (`u_automation_approval`),
    /// with those two values.
    pub field: Option<String>,
    pub approve: Option<String>,
    pub deny: Option<String>,
}

/// A ServiceNow approval field and the values that approve and deny.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    pub approve: String,
    pub deny: String,
}

fn a_day() -> u64 {
    86_400
}

/// Shortest and longest `timeout_secs`.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 60..=30 * 86_400;

impl Policy {
    /// What is wrong with it for a source of `kind`, if anything.
    pub fn problem(&self, kind: super::SourceKind) -> Option<String> {
        use super::SourceKind;
        if !TIMEOUT_RANGE.contains(&self.timeout_secs) {
            return Some(format!(
                "approval.timeout_secs must be between {} and {} (30 days)",
                TIMEOUT_RANGE.start(),
                TIMEOUT_RANGE.end()
            ));
        }
        if self.approvers.iter().any(|a| a.trim().is_empty()) {
            return Some("approval.approvers has an empty entry".into());
        }
        let set = [&self.field, &self.approve, &self.deny].map(Option::is_some);
        match kind {
            SourceKind::Pagerduty if self.approvers.is_empty() => Some(
                "approval on a PagerDuty source needs approvers (PagerDuty user ids): \
                 PagerDuty has no permission the bridge could check"
                    .into(),
            ),
            SourceKind::Servicenow if set != [true; 3] => Some(
                "approval on a ServiceNow source needs field, approve and deny (the record \
                 field a person sets, and its values that approve and deny)"
                    .into(),
            ),
            SourceKind::Servicenow if self.approve == self.deny => {
                Some("approval.approve and approval.deny must differ".into())
            }
            SourceKind::Github | SourceKind::Pagerduty if set.contains(&true) => Some(
                "approval.field, approve and deny are for ServiceNow sources; this source's \
                 people comment /approve or /deny"
                    .into(),
            ),
            _ => None,
        }
    }

    /// The ServiceNow field, when set.
    pub fn field(&self) -> Option<Field> {
        Some(Field {
            name: self.field.clone()?,
            approve: self.approve.clone()?,
            deny: self.deny.clone()?,
        })
    }
}

/// What a launch keeps of its rule's policy, and who raised its event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub approvers: Vec<String>,
    pub allow_self_approval: bool,
    /// The sender of the event that planned it (GitHub login, PagerDuty user id, ServiceNow
    /// `sys_updated_by`).
    pub raised_by: Option<String>,
    /// ServiceNow: the field a person sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
}

/// Events that may carry a command: the commit writer leaves them to the dispatcher, which
/// reads the command from the stored document. `fields`: the ServiceNow approval fields of the
/// event's source (a ServiceNow update is a command when one of them holds its value).
pub fn may_be_command(kind: super::SourceKind, event_type: &str, fields: &[Field]) -> bool {
    match kind {
        super::SourceKind::Github => event_type == "issue_comment.created",
        super::SourceKind::Pagerduty => event_type == "incident.annotated",
        super::SourceKind::Servicenow => !fields.is_empty(),
    }
}
