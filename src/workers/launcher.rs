//! Launches planned rows following the no-duplicate protocol: the row is committed as
//! `launching` (with the marker in extra_vars) before the POST; a row left in `launching`
//! is reconciled by looking for its marker on the controller before anything is relaunched.

use super::postback::{self, Outcome};
use super::Context;
use crate::controller::{Controller, ControllerError, LaunchOutcome, TemplateKind};
use crate::notify::Phase;
use crate::retry::Backoff;
use crate::store::launches::{self, LaunchRow, Started};
use chrono::Duration;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::task::JoinSet;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let controller = ctx
        .controller
        .clone()
        .expect("launcher runs with a controller");
    let lease = ctx.settings.launch_lease_secs;
    let stale = launches::claim_stale(&ctx.pool, 50, lease).await?;
    let reconciled = !stale.is_empty();
    for row in stale {
        if let Err(e) = reconcile(&ctx, &controller, &row).await {
            tracing::warn!(launch_id = %row.id, error = %e, "reconciliation failed; will retry");
            let after = (ctx.settings.launch_retry_max_ms / 1000).max(1);
            launches::reconcile_soon(&ctx.pool, row.id, &e.to_string(), after).await?;
        }
    }
    let rows =
        launches::claim_planned(&ctx.pool, ctx.settings.launch_concurrency as i64, lease).await?;
    if rows.is_empty() {
        return Ok(reconciled);
    }
    let mut set = JoinSet::new();
    for row in rows {
        let (ctx, controller) = (ctx.clone(), controller.clone());
        set.spawn(async move {
            if let Err(e) = launch_one(&ctx, &controller, &row).await {
                tracing::warn!(launch_id = %row.id, error = %e, "launch bookkeeping failed");
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(true)
}

fn kind_of(row: &LaunchRow) -> TemplateKind {
    if row.template_kind == "workflow" {
        TemplateKind::Workflow
    } else {
        TemplateKind::Job
    }
}

async fn template_id(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
) -> Result<i64, ControllerError> {
    if let Some(id) = row.template_id {
        return Ok(id);
    }
    let name = row.template_name.as_deref().unwrap_or_default();
    let t = c
        .template_by_name(kind_of(row), name, row.template_org.as_deref())
        .await?;
    launches::set_template_id(&ctx.pool, row.id, t.id)
        .await
        .map_err(|e| ControllerError::Store(e.to_string()))?;
    Ok(t.id)
}

async fn launch_one(ctx: &Context, c: &Controller, row: &LaunchRow) -> anyhow::Result<()> {
    let kind = kind_of(row);
    // Discovery and name lookups happen before the POST: their failures are "not sent".
    let ready = match c.api().await {
        Ok(_) => template_id(ctx, c, row).await,
        Err(e) => Err(e),
    };
    let template = match ready {
        Ok(id) => id,
        Err(e) if e.is_transient() || matches!(e, ControllerError::Unauthorized(_)) => {
            return not_sent(ctx, row, &e.to_string()).await;
        }
        Err(e) => return handle_error(ctx, row, e).await,
    };
    let result = c.launch(kind, template, &row.request.0).await;
    if ctx.hooks.crash_after_launch_post.load(Ordering::SeqCst) && result.is_ok() {
        tracing::error!(launch_id = %row.id, "fault injection: stopping between the launch POST and its commit");
        return Ok(());
    }
    match result {
        Ok(outcome) => {
            let ignored = match &outcome {
                LaunchOutcome::Partial { ignored_fields, .. } => {
                    tracing::warn!(launch_id = %row.id, ignored = ?ignored_fields.keys().collect::<Vec<_>>(),
                        "the controller dropped fields the template does not prompt for");
                    Some(Value::Object(ignored_fields.clone()))
                }
                LaunchOutcome::Launched(_) => None,
            };
            let l = outcome.launched();
            record_launched(ctx, c, row, l.job_id, &l.status, ignored.as_ref()).await
        }
        Err(e) => handle_error(ctx, row, e).await,
    }
}

async fn not_sent(ctx: &Context, row: &LaunchRow, text: &str) -> anyhow::Result<()> {
    let backoff = Backoff::new(
        ctx.settings.launch_retry_base_ms,
        ctx.settings.launch_retry_max_ms,
    );
    let delay = backoff.delay(row.attempts.max(1) as u32);
    counted("retried");
    tracing::warn!(launch_id = %row.id, error = %text, ?delay, "controller not reached; will retry");
    launches::retry_later(&ctx.pool, row.id, text, delay.as_millis() as u64).await?;
    Ok(())
}

async fn record_launched(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    job_id: i64,
    status: &str,
    ignored: Option<&Value>,
) -> anyhow::Result<()> {
    let api = c.api().await?;
    let url = c.job_link(api, kind_of(row), job_id);
    let mut tx = ctx.pool.begin().await?;
    let started = Started {
        job_id,
        status,
        url: &url,
        ignored_fields: ignored,
    };
    if launches::mark_launched(&mut tx, row.id, &started).await? {
        let outcome = Outcome {
            job_id,
            url: &url,
            status: None,
            elapsed: None,
            stdout_tail: None,
            problem: None,
        };
        postback::enqueue(&mut tx, ctx, row, Phase::Launched, outcome).await?;
    }
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

async fn handle_error(ctx: &Context, row: &LaunchRow, e: ControllerError) -> anyhow::Result<()> {
    let text = e.to_string();
    match e {
        // Nothing reached the controller (or it refused to authenticate): launching again is safe.
        ControllerError::Connect(_)
        | ControllerError::Store(_)
        | ControllerError::Unauthorized(_) => not_sent(ctx, row, &text).await?,
        // The POST may have been acted on: find out before doing anything else.
        ControllerError::NoAnswer(_)
        | ControllerError::Unavailable { .. }
        | ControllerError::Protocol(_) => {
            tracing::warn!(launch_id = %row.id, error = %text, "launch outcome unknown; reconciling");
            let after = (ctx.settings.launch_retry_base_ms / 1000).max(1);
            launches::reconcile_soon(&ctx.pool, row.id, &text, after).await?;
        }
        _ => {
            tracing::warn!(launch_id = %row.id, error = %text, "launch rejected");
            give_up(ctx, row, "rejected", &text).await?;
        }
    }
    Ok(())
}

/// A `launching` row whose owner is gone: did its POST create a job?
async fn reconcile(ctx: &Context, c: &Controller, row: &LaunchRow) -> anyhow::Result<()> {
    let kind = kind_of(row);
    let Some(template_id) = row.template_id else {
        // The template name was never resolved, so no POST was sent.
        return Ok(launches::retry_later(&ctx.pool, row.id, "reconciled: never sent", 0).await?);
    };
    let since = row.launching_at.unwrap_or_else(chrono::Utc::now)
        - Duration::seconds(ctx.settings.reconcile_skew_secs as i64);
    let jobs = c.jobs_since(kind, template_id, since).await?;
    let marker = row.id.to_string();
    if let Some(job) = jobs.iter().find(|j| {
        j.extra_vars
            .get("aap_bridge_launch_id")
            .and_then(Value::as_str)
            == Some(marker.as_str())
    }) {
        counted("reconciled");
        tracing::info!(launch_id = %row.id, job_id = job.id, "reconciled: the job exists");
        return record_launched(ctx, c, row, job.id, &job.status, None).await;
    }
    // Relaunch only where a relaunch could be recognised next time.
    let info = c.launch_info(kind, template_id).await?;
    if info.get("ask_variables_on_launch").and_then(Value::as_bool) != Some(true) {
        let why = "no job carries the marker and the template does not prompt for variables; cannot tell whether it launched";
        return give_up(ctx, row, "unknown", why).await;
    }
    if row.attempts >= ctx.settings.launch_max_attempts {
        let why = format!("no job carries the marker after {} attempts", row.attempts);
        return give_up(ctx, row, "unknown", &why).await;
    }
    tracing::info!(launch_id = %row.id, "reconciled: no job carries the marker; relaunching");
    launches::retry_later(&ctx.pool, row.id, "reconciled: not launched", 0).await?;
    ctx.wake_launch.notify_one();
    Ok(())
}

/// `rejected` or `unknown`: no job the bridge can follow. The ticket is told, in the place of
/// the outcome post-back, so nobody waits for a job that is not coming.
async fn give_up(
    ctx: &Context,
    row: &LaunchRow,
    state: &'static str,
    why: &str,
) -> anyhow::Result<()> {
    counted(state);
    let mut tx = ctx.pool.begin().await?;
    if launches::settle(&mut *tx, row.id, state, why).await? {
        let problem = match state {
            "rejected" => format!("the controller refused it: {why}"),
            _ => format!(
                "cannot tell whether it launched ({why}); check the controller before retrying"
            ),
        };
        let outcome = Outcome {
            job_id: 0,
            url: "",
            status: Some(state),
            elapsed: None,
            stdout_tail: None,
            problem: Some(problem),
        };
        postback::enqueue(&mut tx, ctx, row, Phase::Finished, outcome).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn counted(result: &'static str) {
    metrics::counter!("aap_bridge_launches_total", "result" => result).increment(1);
}
