//! The circuit breaker's worker side (README "Circuit breaker"). A job's end counts toward its
//! rule's run of failures and may pause the rule; a paused rule's launches are held instead of
//! sent (at planning, at the claim, or at the owner check); each held or dropped launch tells its
//! ticket in the transaction that holds or drops it.

use super::sql::fence::{self as attempts, Fence};
use super::sql::held;
use super::sql::pauses::{self, Pause};
use super::sql::rows::LaunchRow;
use crate::domain::JobStatus;
use crate::notify::Notifier;
use crate::postback::{self, PostbackNews};
use crate::runtime::Context;
use sqlx::PgConnection;
use std::collections::HashMap;

/// Counts a finished job toward its rule's breaker, in the transaction recording its end.
pub async fn job_ended(
    conn: &mut PgConnection,
    ctx: &Context,
    row: &LaunchRow,
    status: JobStatus,
    job_id: i64,
) -> anyhow::Result<()> {
    let threshold = ctx.mappings.current().pause_after_failures(&row.rule);
    if let Some(p) = pauses::count_job_end(conn, &row.rule, status, threshold, job_id).await? {
        tracing::warn!(rule = %row.rule, reason = %p.why(),
            "rule paused: its launches are held until an operator resumes it");
    }
    Ok(())
}

/// Tells the ticket its launch is held, and why. Once per launch: the outbox keeps one post-back
/// per launch and phase.
pub async fn tell_held(
    conn: &mut PgConnection,
    notifier: &Notifier,
    row: &LaunchRow,
    pause: &Pause,
) -> Result<bool, sqlx::Error> {
    metrics::counter!("aap_bridge_launches_held_total", "rule" => row.rule.clone()).increment(1);
    tracing::info!(launch_id = %row.id, event_id = %row.event_id, rule = %row.rule,
        reason = %pause.why(), "launch held: its rule is paused");
    let news = PostbackNews::Held { why: pause.why() };
    postback::write(conn, notifier, &row.target(), news).await
}

/// Tells the ticket its held launch was dropped and will never run.
pub async fn tell_dropped(
    conn: &mut PgConnection,
    notifier: &Notifier,
    row: &LaunchRow,
    pause: &Pause,
) -> Result<bool, sqlx::Error> {
    tracing::info!(launch_id = %row.id, event_id = %row.event_id, rule = %row.rule,
        "held launch dropped");
    let news = PostbackNews::Dropped { why: pause.why() };
    postback::write(conn, notifier, &row.target(), news).await
}

/// The claim's first step: planned launches of paused rules become `held`, and their tickets
/// are told. In the claim's transaction, after `lock_claims`.
pub async fn hold_planned(conn: &mut PgConnection, ctx: &Context) -> anyhow::Result<usize> {
    let rows = held::hold_planned(conn).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut rules: Vec<String> = rows.iter().map(|r| r.rule.clone()).collect();
    rules.sort();
    rules.dedup();
    let paused: HashMap<String, Pause> = pauses::paused_among(conn, &rules, false)
        .await?
        .into_iter()
        .map(|p| (p.rule.clone(), p))
        .collect();
    let mut told = false;
    for row in &rows {
        if let Some(p) = paused.get(&row.rule) {
            told |= tell_held(conn, &ctx.notifier, row, p).await?;
        }
    }
    if told {
        ctx.wake_notify.notify_one();
    }
    Ok(rows.len())
}

/// What the owner check before a POST decided.
pub enum Check {
    Send,
    /// The rule was paused: held, not sent, ticket told.
    Held,
    /// Another attempt owns the row: not sent.
    Lost,
}

/// The owner check (`confirm_send`). When it fails because the rule was paused meanwhile, the
/// launch is held instead; when the rule was resumed again since, the check is made once more.
pub async fn owner_check(
    ctx: &Context,
    row: &LaunchRow,
    f: &Fence,
    lease_secs: u64,
) -> anyhow::Result<Check> {
    if attempts::confirm_send(&ctx.pool, f, lease_secs).await? {
        return Ok(Check::Send);
    }
    if hold_unsent(ctx, row, f).await? {
        return Ok(Check::Held);
    }
    Ok(
        match attempts::confirm_send(&ctx.pool, f, lease_secs).await? {
            true => Check::Send,
            false => Check::Lost,
        },
    )
}

/// The owner check refused a claimed launch. If its rule is paused, the launch is held (never
/// sent) and the ticket told: true. False: not paused (any more), or not this attempt's.
async fn hold_unsent(ctx: &Context, row: &LaunchRow, f: &Fence) -> anyhow::Result<bool> {
    let mut tx = ctx.pool.begin().await?;
    // The row lock keeps a resume from passing this launch while it is being held.
    let rule = [row.rule.clone()];
    let Some(pause) = pauses::paused_among(&mut tx, &rule, true).await?.pop() else {
        return Ok(false);
    };
    let Some(held) = held::hold_unsent(&mut tx, f).await? else {
        return Ok(false);
    };
    let told = tell_held(&mut tx, &ctx.notifier, &held, &pause).await?;
    tx.commit().await?;
    if told {
        ctx.wake_notify.notify_one();
    }
    Ok(true)
}
