//! Post-backs: the job link and the outcome, written to the ticket that caused the launch.
//!
//! [`prepare`] turns a ticket and a [`Message`] into a [`Prepared`] request (method, path and
//! body), which the outbox stores as JSON. [`Notifier::send`] later sends it to the source's
//! configured `reply.api_url` and sorts the answer into done, retry later, or give up.
//!
//! Paths are built only from validated ticket fields and the host only from configuration, so a
//! delivery cannot steer the bridge to another host or another API path. Every text starts with
//! [`POSTBACK_MARKER`], so the webhook our own post-back provokes is ignored at ingest.

mod answer;
mod down;
mod github;
mod pagerduty;
mod send;
mod servicenow;

pub use answer::{SendError, MAX_RETRY_AFTER};
pub use down::DownSources;
pub use send::Notifier;

use crate::config::SourceKind;
use crate::domain::ticket::ReplyTarget;
use crate::domain::Reply;
use crate::event::POSTBACK_MARKER;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most characters of job output quoted in a post-back (the end is kept).
pub const STDOUT_TAIL_MAX_CHARS: usize = 3000;

pub use crate::domain::Phase;

/// What happened, for the message text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub phase: Phase,
    pub rule: String,
    /// Template name, or `job template 15`.
    pub template: String,
    pub job_id: i64,
    pub job_url: String,
    /// Final status for `Finished`: `successful`, `failed`, `error` or `canceled`.
    pub status: Option<String>,
    pub elapsed_secs: Option<f64>,
    pub stdout_tail: Option<String>,
    pub dry_run: bool,
    /// Set when no job ran: the controller refused the launch, or whether it launched is unknown.
    #[serde(default)]
    pub problem: Option<String>,
    /// Launch fields the controller ignored (the template does not prompt for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_fields: Vec<String>,
}

/// A request ready to send to a ticket system, stored in the outbox as JSON: method, path
/// (relative to the source's `api_url`, built only from validated ticket fields), body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// Builds the post-back for a ticket. `Err` says why no reply is possible: missing or invalid
/// ticket fields, a reply the kind cannot carry out, or `Reply::None`.
pub fn prepare(
    kind: SourceKind,
    reply: Reply,
    ticket: &Value,
    msg: &Message,
    status_context: &str,
) -> Result<Prepared, String> {
    match ReplyTarget::parse(kind, reply, ticket)? {
        ReplyTarget::ServiceNow { table, sys_id } => {
            servicenow::prepare(reply, &table, &sys_id, msg)
        }
        ReplyTarget::GitHubIssue { repo, number } => github::prepare_comment(&repo, number, msg),
        ReplyTarget::GitHubCommit { repo, sha } => {
            github::prepare_status(&repo, &sha, msg, status_context)
        }
        ReplyTarget::PagerDuty { incident_id } => pagerduty::prepare(&incident_id, msg),
    }
}

/// How job output is quoted in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Plain,
    /// A Markdown fenced code block (also keeps `@mentions` in the output from notifying).
    Fenced,
}

impl Message {
    fn succeeded(&self) -> bool {
        self.status.as_deref() == Some("successful")
    }

    /// ` after 12.3 s`, or nothing when the time is unknown.
    fn after(&self) -> String {
        match self.elapsed_secs {
            Some(s) if s.is_finite() && s >= 0.0 => format!(" after {s:.1} s"),
            _ => String::new(),
        }
    }

    fn url_suffix(&self) -> String {
        if self.job_url.is_empty() {
            String::new()
        } else {
            format!(": {}", self.job_url)
        }
    }

    /// The one-line summary: launched, dry run, finished, held or dropped.
    pub fn headline(&self) -> String {
        let why = self.problem.as_deref().unwrap_or("paused");
        match self.phase {
            Phase::Held => {
                return format!(
                    "{POSTBACK_MARKER} Not launched yet: automation for rule {} is paused ({why}). \
                     {} will be launched if an operator resumes the rule and releases its held \
                     launches, and not at all if they are dropped.",
                    self.rule, self.template
                )
            }
            Phase::Dropped => {
                return format!(
                    "{POSTBACK_MARKER} Not launched: {} for rule {} was held while the rule was \
                     paused ({why}), and an operator dropped it on resume.",
                    self.template, self.rule
                )
            }
            // The approval module writes the whole sentence.
            Phase::Approval
            | Phase::ApprovalRefused
            | Phase::ApprovalDecided
            | Phase::ApprovalLate => return format!("{POSTBACK_MARKER} {why}"),
            Phase::Launched | Phase::Finished => {}
        }
        if self.dry_run {
            return format!(
                "{POSTBACK_MARKER} Dry run: would launch {} for rule {}",
                self.template, self.rule
            );
        }
        if let Some(problem) = &self.problem {
            return if self.job_id > 0 {
                format!(
                    "{POSTBACK_MARKER} Job {} ({}): {problem}",
                    self.job_id, self.template
                )
            } else {
                format!(
                    "{POSTBACK_MARKER} Could not launch {} for rule {}: {problem}",
                    self.template, self.rule
                )
            };
        }
        match self.phase {
            Phase::Launched => format!(
                "{POSTBACK_MARKER} Launched job {} ({}) for rule {}{}",
                self.job_id,
                self.template,
                self.rule,
                self.url_suffix()
            ),
            // Held, dropped and the approval phases returned above.
            _ => format!(
                "{POSTBACK_MARKER} Job {} finished: {}{}{}",
                self.job_id,
                self.status.as_deref().unwrap_or("unknown"),
                self.after(),
                self.url_suffix()
            ),
        }
    }

    /// Said at launch when the template dropped part of the request.
    pub fn ignored_note(&self) -> Option<String> {
        if self.ignored_fields.is_empty() || self.phase != Phase::Launched || self.dry_run {
            return None;
        }
        let mut note = format!(
            "Note: the controller ignored {} (the template does not prompt for {} on launch); \
             the job runs without {}.",
            self.ignored_fields.join(", "),
            if self.ignored_fields.len() == 1 {
                "it"
            } else {
                "them"
            },
            if self.ignored_fields.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
        if self.ignored_fields.iter().any(|f| f == "extra_vars") {
            note.push_str(" Enable \"Prompt on launch\" for variables on the template.");
        }
        Some(note)
    }

    /// The full text: the headline, what the controller ignored at launch, and for a job that
    /// did not succeed, the end of its output.
    pub fn text(&self, quote: Quote) -> String {
        let mut text = self.headline();
        if let Some(note) = self.ignored_note() {
            text.push_str("\n\n");
            text.push_str(&note);
        }
        let tail = self
            .stdout_tail
            .as_deref()
            .map(str::trim_end)
            .filter(|t| !t.trim().is_empty());
        if let (Phase::Finished, false, false, Some(tail)) =
            (self.phase, self.dry_run, self.succeeded(), tail)
        {
            let tail = last_chars(tail, STDOUT_TAIL_MAX_CHARS);
            text.push_str("\n\nLast output:\n");
            match quote {
                Quote::Plain => text.push_str(tail),
                Quote::Fenced => {
                    let fence = "`".repeat(longest_backtick_run(tail).max(2) + 1);
                    text.push_str(&format!("{fence}\n{tail}\n{fence}"));
                }
            }
        }
        text
    }
}

/// The last `max` characters of `s`, on a character boundary.
pub(crate) fn last_chars(s: &str, max: usize) -> &str {
    let count = s.chars().count();
    if count <= max {
        return s;
    }
    let start = s.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    &s[start..]
}

/// At most `max` characters, ending in `…` when cut.
pub(crate) fn first_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(status: &str, tail: &str) -> Message {
        Message {
            phase: Phase::Finished,
            rule: "r".into(),
            template: "job template 15".into(),
            job_id: 7,
            job_url: "https://aap/jobs/7".into(),
            status: Some(status.into()),
            elapsed_secs: Some(12.34),
            stdout_tail: Some(tail.into()),
            dry_run: false,
            problem: None,
            ignored_fields: Vec::new(),
        }
    }

    #[test]
    fn a_launch_note_names_the_ignored_fields() {
        let mut m = finished("", "");
        m.phase = Phase::Launched;
        m.status = None;
        m.ignored_fields = vec!["extra_vars".into(), "limit".into()];
        let text = m.text(Quote::Plain);
        assert!(
            text.starts_with("[aap-bridge] Launched job 7 (job template 15) for rule r: https://aap/jobs/7\n\nNote: the controller ignored extra_vars, limit (the template does not prompt for them on launch); the job runs without them."),
            "{text}"
        );
        assert!(text.contains("Prompt on launch"), "{text}");
        // Only at launch: the outcome does not repeat it.
        let mut done = m.clone();
        done.phase = Phase::Finished;
        done.status = Some("successful".into());
        assert!(!done.text(Quote::Plain).contains("ignored"));
    }

    #[test]
    fn a_launch_that_never_ran_says_why_and_errors_the_status() {
        let mut m = finished("rejected", "");
        m.job_id = 0;
        m.problem = Some("the controller refused it: no inventory".into());
        assert_eq!(
            m.text(Quote::Plain),
            "[aap-bridge] Could not launch job template 15 for rule r: the controller refused it: no inventory"
        );
        let ticket = serde_json::json!({"repo": "acme/ops", "sha": "a".repeat(40)});
        let p = prepare(SourceKind::Github, Reply::Status, &ticket, &m, "aap-bridge").unwrap();
        assert_eq!(p.body["state"], "error");
        assert!(p.body["description"]
            .as_str()
            .unwrap()
            .contains("Not launched"));
    }

    #[test]
    fn held_and_dropped_say_why_and_keep_the_status_open_then_error_it() {
        let mut m = finished("held", "");
        m.phase = Phase::Held;
        m.job_id = 0;
        m.job_url = String::new();
        m.problem = Some("paused by an operator: change freeze".into());
        let text = m.text(Quote::Plain);
        assert!(
            text.starts_with("[aap-bridge] Not launched yet: automation for rule r is paused (paused by an operator: change freeze)."),
            "{text}"
        );
        let ticket = serde_json::json!({"repo": "acme/ops", "sha": "a".repeat(40)});
        let p = prepare(SourceKind::Github, Reply::Status, &ticket, &m, "aap-bridge").unwrap();
        assert_eq!(p.body["state"], "pending");
        m.phase = Phase::Dropped;
        assert!(m.text(Quote::Plain).contains("an operator dropped it"));
        let p = prepare(SourceKind::Github, Reply::Status, &ticket, &m, "aap-bridge").unwrap();
        assert_eq!(p.body["state"], "error");
    }

    #[test]
    fn tail_only_for_failures_fenced_longer_than_its_backticks() {
        let ok = finished("successful", "all good");
        assert_eq!(
            ok.text(Quote::Fenced),
            "[aap-bridge] Job 7 finished: successful after 12.3 s: https://aap/jobs/7"
        );
        let bad = finished("failed", "x ```` y");
        let text = bad.text(Quote::Fenced);
        assert!(text.ends_with("\n`````\nx ```` y\n`````"), "{text}");
        let long = finished("error", &"é".repeat(5000));
        let plain = long.text(Quote::Plain);
        assert_eq!(plain.matches('é').count(), STDOUT_TAIL_MAX_CHARS);
    }

    #[test]
    fn cutting_respects_characters() {
        assert_eq!(last_chars("añb", 2), "ñb");
        assert_eq!(first_chars("añbc", 3), "añ…");
        assert_eq!(first_chars("ab", 3), "ab");
    }
}
