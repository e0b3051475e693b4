//! `/approve` and `/deny` as they arrive on a ticket, read from the stored event.

use crate::domain::approval::{may_be_command, Field};
use crate::domain::SourceKind;
use crate::mapping::EventView;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Approve,
    Deny,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Approve => "approve",
            Verb::Deny => "deny",
        }
    }
}

/// A command from a person on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub verb: Verb,
    /// GitHub login, PagerDuty user id.
    pub actor: String,
    /// The ticket it is about (`ticket_key`).
    pub ticket: String,
}

/// The command in `e`, if it is one: a new comment or note whose first word is `/approve` or
/// `/deny`, or (ServiceNow) a record whose approval field holds the approving or denying
/// value, set by `sys_updated_by`. The bridge's own post-backs never get here: they are
/// ignored at ingest.
pub fn command_of(e: &EventView, fields: &[Field]) -> Option<Command> {
    if !may_be_command(e.kind, &e.event_type, fields) {
        return None;
    }
    let doc = e.payload.value();
    if e.kind == SourceKind::Servicenow {
        let verb = fields.iter().find_map(|f| {
            let v = doc.get(&f.name)?;
            let v = v.get("value").unwrap_or(v).as_str()?;
            (v == f.approve)
                .then_some(Verb::Approve)
                .or((v == f.deny).then_some(Verb::Deny))
        })?;
        return Some(Command {
            verb,
            actor: text_at(doc, "/sys_updated_by")?.to_string(),
            ticket: ticket_key(&e.source, e.kind, &e.ticket)?,
        });
    }
    let (text, actor) = match e.kind {
        SourceKind::Github => (
            text_at(doc, "/comment/body"),
            text_at(doc, "/comment/user/login"),
        ),
        SourceKind::Pagerduty => (
            text_at(doc, "/event/data/content"),
            text_at(doc, "/event/agent/id"),
        ),
        SourceKind::Servicenow => (None, None),
    };
    let verb = verb(text?)?;
    Some(Command {
        verb,
        actor: actor?.to_string(),
        ticket: ticket_key(&e.source, e.kind, &e.ticket)?,
    })
}

/// `/approve` or `/deny` as the first word (any case), followed by nothing or a space.
fn verb(text: &str) -> Option<Verb> {
    let first = text.split_whitespace().next()?.to_ascii_lowercase();
    match first.as_str() {
        "/approve" => Some(Verb::Approve),
        "/deny" => Some(Verb::Deny),
        _ => None,
    }
}

/// The sender of the event (who raised it): GitHub `sender.login`, PagerDuty `event.agent.id`.
pub fn raised_by(e: &EventView) -> Option<String> {
    let doc = e.payload.value();
    match e.kind {
        SourceKind::Github => text_at(doc, "/sender/login"),
        SourceKind::Pagerduty => text_at(doc, "/event/agent/id"),
        SourceKind::Servicenow => text_at(doc, "/sys_updated_by"),
    }
    .map(str::to_string)
}

/// The ticket a request and its commands share: `source|repo#number` on GitHub,
/// `source|incident id` on PagerDuty (a note's event carries the incident as a reference).
pub fn ticket_key(source: &str, kind: SourceKind, ticket: &Value) -> Option<String> {
    let f = |k: &str| {
        ticket
            .get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let id = match kind {
        SourceKind::Github => format!("{}#{}", f("repo")?, f("number")?),
        SourceKind::Pagerduty => f("incident_id")?.to_string(),
        SourceKind::Servicenow => format!("{}/{}", f("table")?, f("sys_id")?),
    };
    Some(format!("{source}|{id}"))
}

fn text_at<'a>(doc: &'a Value, pointer: &str) -> Option<&'a str> {
    doc.pointer(pointer).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_word_is_the_command() {
        assert_eq!(verb("/approve"), Some(Verb::Approve));
        assert_eq!(
            verb("  /APPROVE please, freeze is over"),
            Some(Verb::Approve)
        );
        assert_eq!(verb("/deny\nnot during the freeze"), Some(Verb::Deny));
        for no in [
            "",
            "approve",
            "/approved",
            "please /approve",
            "/deny-all",
            "`/approve`",
        ] {
            assert_eq!(verb(no), None, "{no:?}");
        }
    }

    #[test]
    fn tickets_match_across_event_kinds() {
        let gh = serde_json::json!({"repo": "acme/web", "number": "7", "url": "x"});
        assert_eq!(
            ticket_key("gh", SourceKind::Github, &gh).as_deref(),
            Some("gh|acme/web#7")
        );
        let pd = serde_json::json!({"incident_id": "PABC"});
        assert_eq!(
            ticket_key("pd", SourceKind::Pagerduty, &pd).as_deref(),
            Some("pd|PABC")
        );
        assert_eq!(
            ticket_key("gh", SourceKind::Github, &serde_json::json!({})),
            None
        );
    }
}
