//! Builds post-backs into the outbox, in the caller's transaction.

use super::sql::{self, NewCallback};
use crate::domain::{EventId, JobStatus, LaunchId, LaunchState, Reply, SourceKind, TemplateKind};
use crate::notify::{self, Message, Notifier, Phase};
use crate::runtime::Context;
use serde_json::{json, Value};

/// The launch a post-back is about: where it replies and what it names.
pub struct Target<'a> {
    pub launch_id: LaunchId,
    pub event_id: EventId,
    pub rule: &'a str,
    pub source: &'a str,
    pub kind: SourceKind,
    pub ticket: &'a Value,
    pub reply: Reply,
    pub report_outcome: bool,
    pub template_kind: TemplateKind,
    pub template_name: Option<&'a str>,
    pub template_id: Option<i64>,
}

impl Target<'_> {
    /// `job template "Disk cleanup"`, or `workflow template 12`.
    pub fn template_label(&self) -> String {
        let kind = match self.template_kind {
            TemplateKind::Workflow => "workflow template",
            TemplateKind::Job => "job template",
        };
        match (self.template_name, self.template_id) {
            (Some(name), _) => format!("{kind} \"{name}\""),
            (None, Some(id)) => format!("{kind} {id}"),
            (None, None) => kind.to_string(),
        }
    }
}

/// What the ticket is told. Each kind carries exactly what it needs: no job id 0, no empty link.
pub enum PostbackNews<'a> {
    /// The job exists; `ignored_fields` names what the controller dropped (sorted).
    Launched {
        job_id: i64,
        url: &'a str,
        ignored_fields: Vec<String>,
    },
    /// The job ended (`problem`: said beside the outcome, e.g. the job vanished).
    Finished {
        job_id: i64,
        url: &'a str,
        status: JobStatus,
        elapsed: Option<f64>,
        stdout_tail: Option<String>,
        problem: Option<String>,
    },
    /// No job the bridge can follow: `rejected` (refused, by the controller or the bridge) or
    /// `unknown` (cannot tell whether it launched). `job`: one was created and canceled.
    NoJob {
        state: LaunchState,
        problem: String,
        job: Option<(i64, &'a str)>,
    },
    /// Not sent: the rule is paused (`why`).
    Held { why: String },
    /// A held launch an operator dropped: it will never run.
    Dropped { why: String },
    /// What waits for approval and how to give it (`approval` writes each sentence).
    Approval { text: String },
    /// A command that changed nothing.
    ApprovalRefused { text: String },
    /// Denied or expired: it will never run.
    ApprovalDecided { text: String },
    /// A command after the decision.
    ApprovalLate { text: String },
}

impl PostbackNews<'_> {
    pub fn phase(&self) -> Phase {
        match self {
            PostbackNews::Launched { .. } => Phase::Launched,
            PostbackNews::Finished { .. } | PostbackNews::NoJob { .. } => Phase::Finished,
            PostbackNews::Held { .. } => Phase::Held,
            PostbackNews::Dropped { .. } => Phase::Dropped,
            PostbackNews::Approval { .. } => Phase::Approval,
            PostbackNews::ApprovalRefused { .. } => Phase::ApprovalRefused,
            PostbackNews::ApprovalDecided { .. } => Phase::ApprovalDecided,
            PostbackNews::ApprovalLate { .. } => Phase::ApprovalLate,
        }
    }

    fn message(self, t: &Target<'_>) -> Message {
        let mut m = Message {
            phase: self.phase(),
            rule: t.rule.to_string(),
            template: t.template_label(),
            job_id: 0,
            job_url: String::new(),
            status: None,
            elapsed_secs: None,
            stdout_tail: None,
            dry_run: false,
            problem: None,
            ignored_fields: Vec::new(),
        };
        match self {
            PostbackNews::Launched {
                job_id,
                url,
                ignored_fields,
            } => {
                (m.job_id, m.job_url, m.ignored_fields) = (job_id, url.into(), ignored_fields);
            }
            PostbackNews::Finished {
                job_id,
                url,
                status,
                elapsed,
                stdout_tail,
                problem,
            } => {
                (m.job_id, m.job_url) = (job_id, url.into());
                m.status = Some(status.as_str().into());
                (m.elapsed_secs, m.stdout_tail, m.problem) = (elapsed, stdout_tail, problem);
            }
            PostbackNews::NoJob {
                state,
                problem,
                job,
            } => {
                if let Some((id, url)) = job {
                    (m.job_id, m.job_url) = (id, url.into());
                }
                m.status = Some(state.as_str().into());
                m.problem = Some(problem);
            }
            PostbackNews::Held { why } => {
                m.status = Some("held".into());
                m.problem = Some(why);
            }
            PostbackNews::Dropped { why } => {
                m.status = Some("dropped".into());
                m.problem = Some(why);
            }
            PostbackNews::Approval { text }
            | PostbackNews::ApprovalRefused { text }
            | PostbackNews::ApprovalDecided { text }
            | PostbackNews::ApprovalLate { text } => m.problem = Some(text),
        }
        m
    }
}

/// Writes the post-back and wakes this replica's notifier.
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    ctx: &Context,
    target: &Target<'_>,
    news: PostbackNews<'_>,
) -> Result<(), sqlx::Error> {
    if write(conn, &ctx.notifier, target, news).await? {
        ctx.wake_notify.notify_one();
    }
    Ok(())
}

/// Writes the post-back into the outbox, in the caller's transaction; a notifier on any replica
/// sends it. False when the rule replies nothing (or not for this phase), or the source cannot.
pub async fn write(
    conn: &mut sqlx::PgConnection,
    notifier: &Notifier,
    t: &Target<'_>,
    news: PostbackNews<'_>,
) -> Result<bool, sqlx::Error> {
    let phase = news.phase();
    if t.reply == Reply::None || (phase == Phase::Finished && !t.report_outcome) {
        return Ok(false);
    }
    if !notifier.can_reply(t.source) {
        tracing::debug!(source = %t.source, "no reply settings for this source; no post-back");
        return Ok(false);
    }
    let msg = news.message(t);
    let context = notifier.status_context(t.source);
    let (request, error) = match notify::prepare(t.kind, t.reply, t.ticket, &msg, &context) {
        Ok(p) => (serde_json::to_value(p).unwrap_or(Value::Null), None),
        // Recorded as a dead letter, so the reason is visible.
        Err(reason) => (json!({}), Some(reason)),
    };
    sql::enqueue(
        conn,
        &NewCallback {
            launch_id: t.launch_id,
            event_id: t.event_id,
            source: t.source,
            phase,
            request: &request,
            error: error.as_deref(),
        },
    )
    .await?;
    Ok(true)
}

/// The names of the ignored fields, sorted (`ignored_fields` is a map of field -> value).
pub fn field_names(ignored: Option<&Value>) -> Vec<String> {
    let mut names: Vec<String> = match ignored {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    names.sort();
    names
}
