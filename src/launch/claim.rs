//! The launcher's round: one transaction under the claim lock holds paused rules' launches and
//! claims what may go now (storm caps per rule, only as many as there are free slots). The hold
//! runs whether or not the controller answers, so a pause during an outage holds its backlog.
//! Each claimed launch then runs its attempt (or its settling) on its own supervised task.

use super::attempt::{attempt, note_failure};
use super::breaker;
use super::settle::reconcile;
use super::sql::fence::{self, Fence};
use super::sql::rows::LaunchRow;
use crate::controller::{Controller, Health};
use crate::runtime::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let controller = ctx
        .controller
        .clone()
        .expect("launcher runs with a controller");
    if !gate(&ctx, &controller).await? {
        // Nothing is claimed while the controller is away, but a pause still holds.
        let mut tx = ctx.pool.begin().await?;
        fence::lock_claims(&mut tx).await?;
        let held = breaker::hold_planned(&mut tx, &ctx).await?;
        tx.commit().await?;
        return Ok(held > 0);
    }
    let lease = ctx.settings.launch_lease_secs;
    // Only as many rows as there are free slots; a slow POST never delays the next claim.
    let free = ctx.launch_slots.available_permits() as i64;
    if free == 0 {
        ctx.launch_starved.store(true, Ordering::SeqCst);
        return Ok(false);
    }
    let stale = fence::claim_stale(&ctx.pool, free, lease, &ctx.replica, &ctx.lane).await?;
    let free = free - stale.len() as i64;
    let ready = controller.is_prepared();
    // One transaction under the claim lock: paused rules' launches are held first, so no pause
    // committed before this claim lets one of them through.
    let mut tx = ctx.pool.begin().await?;
    fence::lock_claims(&mut tx).await?;
    let held = breaker::hold_planned(&mut tx, &ctx).await?;
    let planned =
        fence::claim_planned(&mut tx, free, lease, &ctx.replica, ready, &ctx.lane).await?;
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
            let n = fence::release_waiting(&ctx.pool, &ctx.lane).await?;
            tracing::info!(
                controller = %ctx.lane,
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

/// Runs one claimed launch on the supervised set (`Context::attempts`), holding a slot.
fn spawn(ctx: &Arc<Context>, c: &Arc<Controller>, row: LaunchRow, stale: bool) {
    let Ok(permit) = ctx.launch_slots.clone().try_acquire_owned() else {
        // Cannot happen (we claimed no more than the free slots); the lease brings it back.
        tracing::warn!(launch_id = %row.id, "no free launch slot; the row waits for its lease");
        return;
    };
    let (ctx, c) = (ctx.clone(), c.clone());
    let attempts = ctx.attempts.clone();
    attempts.spawn(async move {
        let fence = Fence::of(&row, &ctx.replica);
        let work = async {
            if stale {
                reconcile(&ctx, &c, &row, &fence).await
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
        match fence::heartbeat(&ctx.pool, f, lease).await {
            Ok(true) => {}
            Ok(false) => return,
            // The database is away: keep working; the owner check before the POST decides.
            Err(e) => tracing::warn!(launch_id = %f.id, error = %e, "lease heartbeat failed"),
        }
    }
}
