//! One fenced attempt (README "Launch protocol"): prepare, confirm ownership (stamping
//! `sent_at`) right before the one POST, and settle only through updates fenced on the attempt.
//! An unclear answer leaves the row `launching` for `settle` to decide.

use super::breaker::{self, Check};
use super::ignored;
use super::sql::fence::{self as attempts, Fence, Started};
use super::sql::rows::LaunchRow;
use crate::controller::{Controller, ControllerError, Health, LaunchOutcome};
use crate::domain::{JobStatus, LaunchState};
use crate::postback::{self, field_names, PostbackNews};
use crate::retry::Backoff;
use crate::runtime::Context;
use serde_json::Value;
use std::sync::atomic::Ordering;

/// Records what a failed call says about the controller's health.
pub(super) fn note_failure(ctx: &Context, e: &ControllerError) {
    match e {
        ControllerError::Connect(_)
        | ControllerError::NoAnswer(_)
        | ControllerError::NotReached(_)
        | ControllerError::Unavailable { .. } => ctx.health.set(Health::Unreachable {
            error: e.to_string(),
        }),
        _ => {}
    }
}

pub(super) async fn attempt(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
) -> anyhow::Result<()> {
    if row.sent_at.is_some() {
        // Claimed ready: the claim was the owner check, moments ago.
        let template = row.template_id.unwrap_or_default();
        return post(ctx, c, row, f, template).await;
    }
    // Before the owner check: failures here are "not sent".
    if let Err(e) = c.prepare().await {
        note_failure(ctx, &e);
        if matches!(e, ControllerError::NotFound(_) | ControllerError::Config(_)) {
            ctx.health.set(Health::ConfigError {
                error: e.to_string(),
            });
        }
        return not_sent(ctx, row, f, &e.to_string()).await;
    }
    let template = match template_id(ctx, c, row, f).await {
        Ok(id) => id,
        Err(e) if e.is_transient() || matches!(e, ControllerError::Unauthorized(_)) => {
            note_failure(ctx, &e);
            return not_sent(ctx, row, f, &e.to_string()).await;
        }
        Err(e) => return give_up(ctx, row, f, LaunchState::Rejected, &e.to_string()).await,
    };
    match breaker::owner_check(ctx, row, f, send_lease(ctx, c)).await? {
        Check::Send => post(ctx, c, row, f, template).await,
        Check::Held => Ok(()),
        Check::Lost => {
            counted(ctx, "lost");
            tracing::warn!(launch_id = %row.id, attempt = f.attempt,
                "owner check failed before the POST: another replica owns this launch; not sent");
            Ok(())
        }
    }
}

/// The one POST of this attempt, after its owner check, and what its answer means.
async fn post(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
    template: i64,
) -> anyhow::Result<()> {
    let result = c.launch(row.template_kind, template, &row.request.0).await;
    if ctx.hooks.crash_after_launch_post.load(Ordering::SeqCst) && result.is_ok() {
        tracing::error!(launch_id = %row.id, "fault injection: stopping between the launch POST and its commit");
        return Ok(());
    }
    match result {
        Ok(outcome) => {
            let ignored = match &outcome {
                LaunchOutcome::Partial {
                    launched,
                    ignored_fields,
                } => {
                    match ignored::on_ignored_fields(ctx, c, row, f, launched, ignored_fields).await
                    {
                        // Canceled, settled `rejected`, ticket told.
                        Ok(ignored::Verdict::Rejected { .. }) => return Ok(()),
                        Ok(ignored::Verdict::Keep) => {}
                        // The job exists: keep following it rather than leave it unknown.
                        Err(e) => tracing::warn!(launch_id = %row.id, error = %e,
                            "ignored-fields check failed; keeping the job"),
                    }
                    Some(Value::Object(ignored_fields.clone()))
                }
                LaunchOutcome::Launched(_) => None,
            };
            let l = outcome.launched();
            record_launched(
                ctx,
                c,
                row,
                f,
                l.job_id,
                job_status(&l.status),
                ignored.as_ref(),
            )
            .await
        }
        Err(e) => after_post_error(ctx, c, row, f, e).await,
    }
}

/// The lease after the owner check covers the whole POST (its timeout) with a margin.
fn send_lease(ctx: &Context, c: &Controller) -> u64 {
    ctx.settings
        .launch_lease_secs
        .max(c.timeout().as_secs() + 10)
}

async fn template_id(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
) -> Result<i64, ControllerError> {
    if let Some(id) = row.template_id {
        return Ok(id);
    }
    let name = row.template_name.as_deref().unwrap_or_default();
    let id = c
        .template_id_by_name(row.template_kind, name, row.template_org.as_deref())
        .await?;
    attempts::set_template_id(&ctx.pool, f, Some(id))
        .await
        .map_err(|e| ControllerError::Store(e.to_string()))?;
    Ok(id)
}

async fn after_post_error(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
    e: ControllerError,
) -> anyhow::Result<()> {
    note_failure(ctx, &e);
    let text = e.to_string();
    match e {
        // Nothing reached the controller, or it refused to authenticate: nothing launched.
        ControllerError::Connect(_)
        | ControllerError::NotReached(_)
        | ControllerError::Store(_)
        | ControllerError::Unauthorized(_) => not_sent(ctx, row, f, &text).await,
        // The POST may have been acted on, now or later: the row stays `launching`.
        ControllerError::NoAnswer(_)
        | ControllerError::Unavailable { .. }
        | ControllerError::Protocol(_) => {
            counted(ctx, "unclear");
            tracing::warn!(launch_id = %row.id, error = %text,
                "launch answer unclear; the launch stays open until reconciliation decides");
            let after = ctx.settings.reconcile_interval_secs as f64;
            attempts::check_later(&ctx.pool, f, &format!("unclear: {text}"), after, false).await?;
            Ok(())
        }
        // A name resolved to an id the controller no longer knows (template re-created).
        ControllerError::NotFound(_)
            if row.template_name.is_some() && row.sends < ctx.settings.launch_max_attempts =>
        {
            let name = row.template_name.as_deref().unwrap_or_default();
            c.forget_template_name(row.template_kind, name, row.template_org.as_deref());
            attempts::set_template_id(&ctx.pool, f, None).await?;
            not_sent(ctx, row, f, &format!("{text}; looking the name up again")).await
        }
        _ => {
            tracing::warn!(launch_id = %row.id, error = %text, "launch rejected");
            give_up(ctx, row, f, LaunchState::Rejected, &text).await
        }
    }
}

pub(super) async fn not_sent(
    ctx: &Context,
    row: &LaunchRow,
    f: &Fence,
    text: &str,
) -> anyhow::Result<()> {
    let backoff = Backoff::new(
        ctx.settings.launch_retry_base_ms,
        ctx.settings.launch_retry_max_ms,
    );
    let delay = backoff.delay(row.attempts.max(1) as u32);
    if attempts::back_to_planned(&ctx.pool, f, text, delay.as_millis() as u64).await? {
        counted(ctx, "retried");
        tracing::warn!(launch_id = %row.id, error = %text, ?delay, "not sent; will retry");
    } else {
        lost(ctx, row, "retry");
    }
    Ok(())
}

pub(super) async fn record_launched(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
    job_id: i64,
    status: JobStatus,
    ignored: Option<&Value>,
) -> anyhow::Result<()> {
    let api = c.api().await?;
    let url = c.job_link(api, row.template_kind, job_id);
    let mut tx = ctx.pool.begin().await?;
    let started = Started {
        job_id,
        status,
        url: &url,
        ignored_fields: ignored,
    };
    if !attempts::mark_launched(&mut tx, f, &started).await? {
        lost(ctx, row, "launched");
        return Ok(());
    }
    let news = PostbackNews::Launched {
        job_id,
        url: &url,
        ignored_fields: field_names(ignored),
    };
    postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
    tx.commit().await?;
    counted(ctx, "launched");
    if let Some(received) = row.received_at {
        let waited = (chrono::Utc::now() - received)
            .num_microseconds()
            .unwrap_or(0) as f64
            / 1e6;
        metrics::histogram!("aap_bridge_dispatch_latency_seconds").record(waited.max(0.0));
    }
    tracing::info!(launch_id = %row.id, job_id, %url, "launched");
    Ok(())
}

/// `rejected` or `unknown`: no job the bridge can follow. The ticket is told, in the place of
/// the outcome post-back, so nobody waits for a job that is not coming.
pub(super) async fn give_up(
    ctx: &Context,
    row: &LaunchRow,
    f: &Fence,
    state: LaunchState,
    why: &str,
) -> anyhow::Result<()> {
    let mut tx = ctx.pool.begin().await?;
    if !attempts::settle(&mut *tx, f, state, why).await? {
        lost(ctx, row, state.as_str());
        return Ok(());
    }
    let problem = match state {
        LaunchState::Rejected => format!("the controller refused it: {why}"),
        _ => {
            format!("cannot tell whether it launched ({why}); check the controller before retrying")
        }
    };
    let news = PostbackNews::NoJob {
        state,
        problem,
        job: None,
    };
    postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
    tx.commit().await?;
    counted(ctx, state.as_str());
    Ok(())
}

/// A fenced transition that changed nothing: another attempt owns the row. Never a launch.
fn lost(ctx: &Context, row: &LaunchRow, transition: &str) {
    counted(ctx, "lost");
    tracing::info!(launch_id = %row.id, attempt = row.attempts, transition,
        "transition lost: the row belongs to another attempt now; nothing changed");
}

/// A new job's status as the launch answer (or a reconcile read) gave it; a word this bridge
/// does not know is taken as `pending`, and the tracker reads the real one.
pub(super) fn job_status(s: &str) -> JobStatus {
    s.parse().unwrap_or(JobStatus::Pending)
}

pub(super) fn counted(ctx: &Context, result: &'static str) {
    metrics::counter!("aap_bridge_launches_total", "controller" => ctx.lane.clone(), "result" => result)
        .increment(1);
}
