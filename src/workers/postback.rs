//! Builds post-backs into the outbox, in the caller's transaction.

use super::Context;
use crate::mapping::Reply;
use crate::notify::{self, Message, Notifier, Phase};
use crate::store::callbacks::{self, NewCallback};
use crate::store::launch_policy;
use crate::store::launches::LaunchRow;
use serde_json::{json, Value};

pub struct Outcome<'a> {
    pub job_id: i64,
    pub url: &'a str,
    pub status: Option<&'a str>,
    pub elapsed: Option<f64>,
    pub stdout_tail: Option<String>,
    /// No job ran (rejected, or unknown whether it launched): said instead of an outcome.
    pub problem: Option<String>,
}

pub fn template_label(row: &LaunchRow) -> String {
    let kind = if row.template_kind == crate::controller::TemplateKind::Workflow {
        "workflow template"
    } else {
        "job template"
    };
    match (&row.template_name, row.template_id) {
        (Some(name), _) => format!("{kind} \"{name}\""),
        (None, Some(id)) => format!("{kind} {id}"),
        (None, None) => kind.to_string(),
    }
}

/// Writes the post-back and wakes this replica's notifier.
pub async fn enqueue(
    conn: &mut sqlx::PgConnection,
    ctx: &Context,
    row: &LaunchRow,
    phase: Phase,
    o: Outcome<'_>,
) -> Result<(), sqlx::Error> {
    if write(conn, &ctx.notifier, row, phase, o).await? {
        ctx.wake_notify.notify_one();
    }
    Ok(())
}

/// Writes the post-back into the outbox, in the caller's transaction; a notifier on any replica
/// sends it. False when the rule replies nothing (or not for this phase), or the source cannot.
pub async fn write(
    conn: &mut sqlx::PgConnection,
    notifier: &Notifier,
    row: &LaunchRow,
    phase: Phase,
    o: Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let reply = row.reply;
    if reply == Reply::None || (phase == Phase::Finished && !row.report_outcome) {
        return Ok(false);
    }
    if !notifier.can_reply(&row.source) {
        tracing::debug!(source = %row.source, "no reply settings for this source; no post-back");
        return Ok(false);
    }
    let kind = row.kind;
    // The launcher records what the controller ignored on the row, in this same transaction.
    let ignored_fields = match phase {
        Phase::Launched => field_names(launch_policy::ignored_fields(&mut *conn, row.id).await?),
        Phase::Finished | Phase::Held | Phase::Dropped => Vec::new(),
    };
    let msg = Message {
        phase,
        rule: row.rule.clone(),
        template: template_label(row),
        job_id: o.job_id,
        job_url: o.url.to_string(),
        status: o.status.map(str::to_string),
        elapsed_secs: o.elapsed,
        stdout_tail: o.stdout_tail,
        dry_run: false,
        problem: o.problem,
        ignored_fields,
    };
    let context = notifier.status_context(&row.source);
    let (request, error) = match notify::prepare(kind, reply, &row.ticket.0, &msg, &context) {
        Ok(p) => (serde_json::to_value(p).unwrap_or(Value::Null), None),
        // Recorded as a dead letter, so the reason is visible.
        Err(reason) => (json!({}), Some(reason)),
    };
    callbacks::enqueue(
        conn,
        &NewCallback {
            launch_id: row.id,
            event_id: row.event_id,
            source: &row.source,
            phase: phase.as_str(),
            request: &request,
            error: error.as_deref(),
        },
    )
    .await?;
    Ok(true)
}

/// The names of the ignored fields, sorted (`ignored_fields` is a map of field -> value).
pub fn field_names(ignored: Option<Value>) -> Vec<String> {
    let mut names: Vec<String> = match ignored {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    names.sort();
    names
}
