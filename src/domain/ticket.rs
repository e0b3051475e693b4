//! Where a post-back goes: the stored ticket parsed, for one reply kind, into a typed target
//! whose every field is checked, so a URL path built from it carries nothing a sender chose
//! freely. Parsed when an event is decided (a problem is recorded on the event at once) and
//! again when the post-back is built (`notify::prepare` takes only a `ReplyTarget`).

use super::{Reply, SourceKind};
use serde_json::Value;
use std::borrow::Cow;

/// A checked reply target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTarget {
    /// `PATCH /api/now/table/{table}/{sys_id}` (a work note or a comment).
    ServiceNow { table: String, sys_id: String },
    /// `POST /repos/{repo}/issues/{number}/comments` (issues and pull requests alike).
    GitHubIssue { repo: String, number: u64 },
    /// `POST /repos/{repo}/statuses/{sha}`; `sha` is lowercase.
    GitHubCommit { repo: String, sha: String },
    /// `POST /incidents/{incident_id}/notes`.
    PagerDuty { incident_id: String },
}

impl ReplyTarget {
    /// The target for replying `reply` to a `kind` ticket, or why there is none.
    pub fn parse(kind: SourceKind, reply: Reply, ticket: &Value) -> Result<ReplyTarget, String> {
        Ok(match parts(kind, reply, ticket)? {
            Parts::ServiceNow(table, sys_id) => ReplyTarget::ServiceNow {
                table: table.into_owned(),
                sys_id: sys_id.into_owned(),
            },
            Parts::GitHubIssue(repo, number) => ReplyTarget::GitHubIssue {
                repo: repo.into_owned(),
                number,
            },
            Parts::GitHubCommit(repo, sha) => ReplyTarget::GitHubCommit {
                repo: repo.into_owned(),
                sha: sha.to_ascii_lowercase(),
            },
            Parts::PagerDuty(id) => ReplyTarget::PagerDuty {
                incident_id: id.into_owned(),
            },
        })
    }

    /// Why `ticket` cannot take `reply`, if it cannot: `parse` without building the target
    /// (it runs for every planned launch at ingest).
    pub fn check(kind: SourceKind, reply: Reply, ticket: &Value) -> Result<(), String> {
        parts(kind, reply, ticket).map(|_| ())
    }
}

/// A target's checked parts, borrowed from the ticket where they are strings.
enum Parts<'a> {
    ServiceNow(Cow<'a, str>, Cow<'a, str>),
    GitHubIssue(Cow<'a, str>, u64),
    GitHubCommit(Cow<'a, str>, Cow<'a, str>),
    PagerDuty(Cow<'a, str>),
}

fn parts(kind: SourceKind, reply: Reply, ticket: &Value) -> Result<Parts<'_>, String> {
    match (kind, reply) {
        (_, Reply::None) => Err("reply is `none`".into()),
        (SourceKind::Servicenow, Reply::WorkNotes | Reply::Comments) => Ok(Parts::ServiceNow(
            checked(ticket, "table", "a table name ([a-z0-9_]+)", valid_table)?,
            checked(ticket, "sys_id", "a sys_id (32 hex digits)", valid_sys_id)?,
        )),
        (SourceKind::Github, Reply::Comment) => {
            let number = checked(
                ticket,
                "number",
                "an issue or pull request number",
                valid_number,
            )?;
            let number = number
                .parse()
                .map_err(|_| "ticket `number` is too large".to_string())?;
            Ok(Parts::GitHubIssue(repo(ticket)?, number))
        }
        (SourceKind::Github, Reply::Status) => Ok(Parts::GitHubCommit(
            repo(ticket)?,
            checked(ticket, "sha", "a commit sha (40 hex digits)", |s| {
                all_hex(s, 40)
            })?,
        )),
        (SourceKind::Pagerduty, Reply::Note) => Ok(Parts::PagerDuty(checked(
            ticket,
            "incident_id",
            "a PagerDuty incident id ([A-Z0-9]+)",
            valid_incident_id,
        )?)),
        (kind, reply) => Err(format!(
            "reply `{}` is not possible for a {} source",
            reply.as_str(),
            kind.as_str()
        )),
    }
}

/// A ServiceNow table name as a URL path segment may carry it.
pub fn valid_table(t: &str) -> bool {
    (1..=80).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// ServiceNow sys_ids are 32 lowercase hex digits.
pub fn valid_sys_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_number(n: &str) -> bool {
    (1..=12).contains(&n.len())
        && n.bytes().all(|b| b.is_ascii_digit())
        && n.parse::<u64>().is_ok_and(|n| n > 0)
}

fn valid_incident_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

pub fn all_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `owner/name`, each part `[A-Za-z0-9_.-]+` and not `.` or `..`.
fn repo(ticket: &Value) -> Result<Cow<'_, str>, String> {
    checked(ticket, "repo", "`owner/name`", |r| {
        let parts: Vec<&str> = r.split('/').collect();
        r.len() <= 200
            && parts.len() == 2
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.bytes().any(|b| b != b'.')
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            })
    })
}

/// A ticket field as text: a non-empty string, or a number.
pub fn field<'a>(ticket: &'a Value, name: &str) -> Option<Cow<'a, str>> {
    match ticket.get(name)? {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// A required ticket field that must pass `valid`; the error names the field and the rule.
fn checked<'a>(
    ticket: &'a Value,
    name: &str,
    rule: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<Cow<'a, str>, String> {
    let v = field(ticket, name).ok_or_else(|| format!("ticket has no `{name}`"))?;
    if valid(&v) {
        Ok(v)
    } else {
        Err(format!("ticket `{name}` is not {rule}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_kind_parses_what_its_replies_need() {
        let snow = json!({"table": "incident", "sys_id": "9d385017c611228701d22104cc95c371"});
        assert!(ReplyTarget::parse(SourceKind::Servicenow, Reply::WorkNotes, &snow).is_ok());
        let bad = json!({"table": "incident", "sys_id": "../../x"});
        assert_eq!(
            ReplyTarget::parse(SourceKind::Servicenow, Reply::WorkNotes, &bad).unwrap_err(),
            "ticket `sys_id` is not a sys_id (32 hex digits)"
        );
        let push = json!({"repo": "acme/ops", "sha": "ABCDEF0123456789abcdef0123456789abcdef01"});
        assert_eq!(
            ReplyTarget::parse(SourceKind::Github, Reply::Status, &push).unwrap(),
            ReplyTarget::GitHubCommit {
                repo: "acme/ops".into(),
                sha: "abcdef0123456789abcdef0123456789abcdef01".into()
            }
        );
        assert_eq!(
            ReplyTarget::parse(SourceKind::Github, Reply::Comment, &push).unwrap_err(),
            "ticket has no `number`",
            "a push has no issue to comment on"
        );
        let issue = json!({"repo": "acme/ops", "number": 42});
        assert_eq!(
            ReplyTarget::parse(SourceKind::Github, Reply::Comment, &issue).unwrap(),
            ReplyTarget::GitHubIssue {
                repo: "acme/ops".into(),
                number: 42
            }
        );
        let pd = json!({"incident_id": "PABC123"});
        assert!(ReplyTarget::parse(SourceKind::Pagerduty, Reply::Note, &pd).is_ok());
        assert!(ReplyTarget::parse(SourceKind::Pagerduty, Reply::Comment, &pd).is_err());
        assert!(ReplyTarget::parse(SourceKind::Pagerduty, Reply::None, &pd).is_err());
    }
}
