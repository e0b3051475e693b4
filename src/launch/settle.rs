//! Decides a `launching` row whose owner is gone or whose answer was unclear: did its POST
//! create a job? "Not launched" needs the settle window since the POST *and* two reads, some
//! time apart, that both find no job carrying the marker. Errors are retried a bounded number
//! of times; then the launch is `unknown` (ticket told, storm slot freed).

use super::attempt::{counted, give_up, job_status, note_failure, record_launched};
use super::sql::fence::{self as attempts, Fence};
use super::sql::rows::LaunchRow;
use crate::controller::{Controller, ControllerError};
use crate::domain::LaunchState;
use crate::runtime::Context;
use chrono::Duration;
use serde_json::Value;

pub async fn reconcile(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
) -> anyhow::Result<()> {
    let (Some(sent_at), Some(template_id)) = (row.sent_at, row.template_id) else {
        // The owner check never passed: provably nothing was sent.
        if attempts::back_to_planned(&ctx.pool, f, "lease expired before the POST; never sent", 0)
            .await?
        {
            tracing::info!(launch_id = %row.id, "reconciled: never sent; planned again");
            ctx.wake_launch.notify_one();
        }
        return Ok(());
    };
    let since = row.launching_at.unwrap_or(sent_at)
        - Duration::seconds(ctx.settings.reconcile_skew_secs as i64);
    let jobs = match c.jobs_since(row.template_kind, template_id, since).await {
        Ok(jobs) => jobs,
        Err(e) => return failed_read(ctx, row, f, e).await,
    };
    let marker = row.id.to_string();
    if let Some(job) = jobs.iter().find(|j| {
        j.extra_vars
            .get("aap_bridge_launch_id")
            .and_then(Value::as_str)
            == Some(marker.as_str())
    }) {
        counted(ctx, "reconciled");
        tracing::info!(launch_id = %row.id, job_id = job.id, "reconciled: the job exists");
        return record_launched(ctx, c, row, f, job.id, job_status(&job.status), None).await;
    }
    let interval = ctx.settings.reconcile_interval_secs;
    let settled_at = sent_at + Duration::seconds(ctx.settle_secs as i64);
    if row.db_now < settled_at {
        // Too early to tell: the controller may still act on the POST.
        let left = (settled_at - row.db_now).num_milliseconds() as f64 / 1000.0;
        let after = left.min(interval as f64);
        attempts::check_later(
            &ctx.pool,
            f,
            "unclear: no job with the marker yet",
            after,
            false,
        )
        .await?;
        return Ok(());
    }
    if !attempts::empty_read(&ctx.pool, f, interval).await? {
        let why = "unclear: no job with the marker after the settle window; reading once more";
        attempts::check_later(&ctx.pool, f, why, interval as f64, false).await?;
        return Ok(());
    }
    relaunch_or_unknown(ctx, c, row, f, template_id).await
}

/// Proven not launched. Relaunch only where a relaunch could be recognised next time.
async fn relaunch_or_unknown(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    f: &Fence,
    template_id: i64,
) -> anyhow::Result<()> {
    let info = match c.launch_info(row.template_kind, template_id).await {
        Ok(info) => info,
        Err(e) => return failed_read(ctx, row, f, e).await,
    };
    if info.get("ask_variables_on_launch").and_then(Value::as_bool) != Some(true) {
        let why = "no job carries the marker and the template does not prompt for variables; cannot tell whether it launched";
        return give_up(ctx, row, f, LaunchState::Unknown, why).await;
    }
    if row.sends >= ctx.settings.launch_max_attempts {
        let why = format!("no job carries the marker after {} sends", row.sends);
        return give_up(ctx, row, f, LaunchState::Unknown, &why).await;
    }
    let why = "reconciled: settle window passed and two reads found no job; not launched";
    if attempts::back_to_planned(&ctx.pool, f, why, 0).await? {
        tracing::info!(launch_id = %row.id, "reconciled: not launched; relaunching");
        ctx.wake_launch.notify_one();
    }
    Ok(())
}

/// A read that failed. The controller being away is waited out; a definite error (template
/// deleted, 403/404) counts, and after `reconcile_max_errors` in a row the launch is `unknown`.
async fn failed_read(
    ctx: &Context,
    row: &LaunchRow,
    f: &Fence,
    e: ControllerError,
) -> anyhow::Result<()> {
    note_failure(ctx, &e);
    let transient = e.is_transient();
    let errors = row.reconcile_errors + i32::from(!transient);
    if !transient && errors >= ctx.settings.reconcile_max_errors {
        let why = format!("reconciliation failed {errors} times: {e}");
        tracing::warn!(launch_id = %row.id, error = %e, "reconciliation gave up");
        return give_up(ctx, row, f, LaunchState::Unknown, &why).await;
    }
    let after = ctx.settings.reconcile_interval_secs as f64 * f64::from(errors.clamp(1, 6));
    tracing::warn!(launch_id = %row.id, error = %e, errors, "reconciliation read failed; will retry");
    attempts::check_later(&ctx.pool, f, &format!("reconcile: {e}"), after, !transient).await?;
    Ok(())
}
