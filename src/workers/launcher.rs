//! Launches planned rows following the fenced protocol (README "Launch protocol"): claim with
//! a lease and an attempt number, heartbeat while preparing, confirm ownership (stamping
//! `sent_at`) right before the one POST, and settle only through updates fenced on the attempt.
//! An unclear answer leaves the row `launching` for `reconcile` to decide.

use super::breaker::{self, Check};
use super::ignored;
use super::postback::{self, Outcome};
use super::reconcile;
use super::Context;
use crate::controller::{Controller, ControllerError, Health, LaunchOutcome};
use crate::notify::Phase;
use crate::retry::Backoff;
use crate::store::attempts::{self, Fence, Started};
use crate::store::launches::{LaunchRow, LaunchState};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let controller = ctx
        .controller
        .clone()
        .expect("launcher runs with a controller");
    if !gate(&ctx, &controller).await? {
        return Ok(false);
    }
    let lease = ctx.settings.launch_lease_secs;
    // Only as many rows as there are free slots; a slow POST never delays the next claim.
    let free = ctx.launch_slots.available_permits() as i64;
    if free == 0 {
        ctx.launch_starved.store(true, Ordering::SeqCst);
        return Ok(false);
    }
    let stale = attempts::claim_stale(&ctx.pool, free, lease, &ctx.replica).await?;
    let free = free - stale.len() as i64;
    let ready = controller.is_prepared();
    // One transaction under the claim lock: paused rules' launches are held first, so no pause
    // committed before this claim lets one of them through.
    let mut tx = ctx.pool.begin().await?;
    attempts::lock_claims(&mut tx).await?;
    let held = breaker::hold_planned(&mut tx, &ctx).await?;
    let planned = attempts::claim_planned(&mut tx, free, lease, &ctx.replica, ready).await?;
    tx.commit().await?;
    let claimed = !stale.is_empty() || !planned.is_empty() || held > 0;
    for row in stale {
        spawn(&ctx, &controller, row, true);
    }
    for row in planned {
        spawn(&ctx, &controller, row, false);
    }
    Ok(claimed)
}

/// Launches wait while the controller is unreachable or misconfigured. When a probe finds it
/// back, everything that waited is released at once (paced by the slots and storm control).
async fn gate(ctx: &Context, c: &Controller) -> anyhow::Result<bool> {
    let health = ctx.health.get();
    if health == Health::Ok {
        return Ok(true);
    }
    if !ctx.health.probe_due() {
        return Ok(false);
    }
    match c.probe().await {
        Ok(()) => {
            ctx.health.set(Health::Ok);
            let n = attempts::release_waiting(&ctx.pool).await?;
            tracing::info!(
                released = n,
                "controller answers again: waiting launches released"
            );
            Ok(true)
        }
        Err(e) => {
            note_failure(ctx, &e);
            Ok(false)
        }
    }
}

/// Records what a failed call says about the controller's health.
pub(super) fn note_failure(ctx: &Context, e: &ControllerError) {
    match e {
        ControllerError::Connect(_)
        | ControllerError::NoAnswer(_)
        | ControllerError::Unavailable { .. } => ctx.health.set(Health::Unreachable {
            error: e.to_string(),
        }),
        _ => {}
    }
}

fn spawn(ctx: &Arc<Context>, c: &Arc<Controller>, row: LaunchRow, stale: bool) {
    let Ok(permit) = ctx.launch_slots.clone().try_acquire_owned() else {
        // Cannot happen (we claimed no more than the free slots); the lease brings it back.
        tracing::warn!(launch_id = %row.id, "no free launch slot; the row waits for its lease");
        return;
    };
    let (ctx, c) = (ctx.clone(), c.clone());
    tokio::spawn(async move {
        let fence = Fence::of(&row, &ctx.replica);
        let work = async {
            if stale {
                reconcile::reconcile(&ctx, &c, &row, &fence).await
            } else {
                attempt(&ctx, &c, &row, &fence).await
            }
        };
        tokio::select! {
            r = work => if let Err(e) = r {
                tracing::warn!(launch_id = %row.id, error = %e, "launch bookkeeping failed; the lease brings it back");
            },
            () = heartbeat(&ctx, &fence) => {
                tracing::warn!(launch_id = %row.id, attempt = fence.attempt,
                    "lost the launch lease to another replica; this attempt stops and changes nothing");
            }
        }
        drop(permit);
        // Only a launcher that ran out of slots waits for one; waking it otherwise would cost a
        // claim round per launch for nothing.
        if ctx.launch_starved.swap(false, Ordering::SeqCst) {
            ctx.wake_launch.notify_one();
        }
    });
}

/// Keeps the lease alive while the attempt works; returns only when another replica owns it.
async fn heartbeat(ctx: &Context, f: &Fence) {
    let lease = ctx.settings.launch_lease_secs;
    let every = Duration::from_millis(lease * 1000 / 3);
    loop {
        tokio::time::sleep(every).await;
        match attempts::heartbeat(&ctx.pool, f, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            // The database is away: keep working; the owner check before the POST decides.
            Err(e) => tracing::warn!(launch_id = %f.id, error = %e, "lease heartbeat failed"),
        }
    }
}

async fn attempt(ctx: &Context, c: &Controller, row: &LaunchRow, f: &Fence) -> anyhow::Result<()> {
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
            counted("lost");
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
            record_launched(ctx, c, row, f, l.job_id, &l.status, ignored.as_ref()).await
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
        | ControllerError::Store(_)
        | ControllerError::Unauthorized(_) => not_sent(ctx, row, f, &text).await,
        // The POST may have been acted on, now or later: the row stays `launching`.
        ControllerError::NoAnswer(_)
        | ControllerError::Unavailable { .. }
        | ControllerError::Protocol(_) => {
            counted("unclear");
            tracing::warn!(launch_id = %row.id, error = %text,
                "launch answer unclear; the launch stays open until reconciliation decides");
            let after = ctx.settings.reconcile_interval_secs as f64;
            attempts::check_later(&ctx.pool, f, &format!("unclear: {text}"), after, false).await?;
            Ok(())
        }
        // A name resolved to an id the controller no longer knows (template re-created).
        ControllerError::NotFound(_)
            if row.template_name.is_some() && row.attempts < ctx.settings.launch_max_attempts =>
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
        counted("retried");
        tracing::warn!(launch_id = %row.id, error = %text, ?delay, "not sent; will retry");
    } else {
        lost(row, "retry");
    }
    Ok(())
}

pub(super) async fn record_launched(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
    job_id: i64,
    status: &str,
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
        lost(row, "launched");
        return Ok(());
    }
    let outcome = Outcome {
        job_id,
        url: &url,
        status: None,
        elapsed: None,
        stdout_tail: None,
        problem: None,
    };
    postback::enqueue(&mut tx, ctx, row, Phase::Launched, outcome).await?;
    tx.commit().await?;
    counted("launched");
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
        lost(row, state.as_str());
        return Ok(());
    }
    let problem = match state {
        LaunchState::Rejected => format!("the controller refused it: {why}"),
        _ => {
            format!("cannot tell whether it launched ({why}); check the controller before retrying")
        }
    };
    let outcome = Outcome {
        job_id: 0,
        url: "",
        status: Some(state.as_str()),
        elapsed: None,
        stdout_tail: None,
        problem: Some(problem),
    };
    postback::enqueue(&mut tx, ctx, row, Phase::Finished, outcome).await?;
    tx.commit().await?;
    counted(state.as_str());
    Ok(())
}

/// A fenced transition that changed nothing: another attempt owns the row. Never a launch.
fn lost(row: &LaunchRow, transition: &str) {
    counted("lost");
    tracing::info!(launch_id = %row.id, attempt = row.attempts, transition,
        "transition lost: the row belongs to another attempt now; nothing changed");
}

pub(super) fn counted(result: &'static str) {
    metrics::counter!("aap_bridge_launches_total", "result" => result).increment(1);
}
