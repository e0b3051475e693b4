//! Delivers the outbox: retries with backoff and jitter, honours Retry-After and rate-limit
//! resets, and dead-letters permanent failures with the reason.

use super::sql as callbacks;
use crate::notify::{Prepared, SendError};
use crate::retry::Backoff;
use crate::runtime::Context;
use std::sync::Arc;

/// Post-backs in flight at once per replica. Each delivery runs on its own task holding a
/// slot, so one slow ticket API never delays the next claim; the claim takes only as many rows
/// as there are free slots (a claimed row's lease runs while it waits for nothing).
pub const NOTIFY_CONCURRENCY: usize = 32;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let lease = ctx.settings.callback_lease_secs;
    let mut free = ctx.notify_slots.available_permits() as i64;
    if free == 0 {
        return Ok(false);
    }
    // A ticket API that was down is probed with its oldest post-back; when that goes through,
    // everything that waited for it is released at once instead of at the end of its backoff.
    let mut due = Vec::new();
    for source in ctx.down_sources.probes_due() {
        if free == 0 {
            break;
        }
        if let Some(cb) = callbacks::claim_probe(&ctx.pool, &source, lease).await? {
            due.push(cb);
            free -= 1;
        }
    }
    due.extend(callbacks::claim_due(&ctx.pool, free, lease).await?);
    if due.is_empty() {
        return Ok(false);
    }
    let full = due.len() as i64 >= free;
    for cb in due {
        let Ok(slot) = ctx.notify_slots.clone().try_acquire_owned() else {
            // Only this loop takes slots, and it took no more rows than were free.
            tracing::error!(callback_id = %cb.id, "no free post-back slot; retried after its lease");
            continue;
        };
        let ctx = ctx.clone();
        let task = tokio::spawn(async move {
            let c = ctx.clone();
            // A panicking delivery loses only its own lease; the row is claimed again later.
            let run = tokio::spawn(async move { deliver(&c, cb).await });
            match run.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "callback bookkeeping failed"),
                Err(e) => tracing::error!(error = %e, "callback delivery task failed"),
                Ok(Ok(())) => {}
            }
            drop(slot);
            ctx.wake_notify.notify_one();
        });
        drop(task);
    }
    Ok(full)
}

async fn deliver(ctx: &Context, cb: callbacks::Due) -> anyhow::Result<()> {
    let prepared: Prepared = match serde_json::from_value(cb.request.0.clone()) {
        Ok(p) => p,
        Err(e) => {
            return Ok(
                callbacks::dead(&ctx.pool, cb.id, &format!("unreadable request: {e}"), None)
                    .await?,
            )
        }
    };
    match ctx.notifier.send(&cb.source, &prepared).await {
        Ok(status) => {
            if ctx.down_sources.up(&cb.source) {
                let n = callbacks::release_source(&ctx.pool, &cb.source).await?;
                tracing::info!(source = %cb.source, released = n, "ticket API answers again: waiting post-backs released");
            }
            count(&cb.source, "sent");
            tracing::info!(callback_id = %cb.id, phase = %cb.phase, status, "post-back delivered");
            callbacks::sent(&ctx.pool, cb.id, status).await?;
        }
        Err(e) => {
            // What the ticket API answered, kept on the row for operators.
            let status = e.status();
            match e {
                SendError::Permanent { reason } => {
                    count(&cb.source, "dead");
                    tracing::warn!(callback_id = %cb.id, %reason, "post-back dead-lettered");
                    callbacks::dead(&ctx.pool, cb.id, &reason, status).await?;
                }
                SendError::Retry { after, reason } => {
                    retry(ctx, &cb, after, &reason, status).await?;
                }
            }
        }
    }
    Ok(())
}

/// A failed delivery worth trying again, unless it has had its attempts.
async fn retry(
    ctx: &Context,
    cb: &callbacks::Due,
    after: Option<std::time::Duration>,
    reason: &str,
    status: Option<u16>,
) -> anyhow::Result<()> {
    if after.is_none() {
        // Down, not throttling us (a throttle names its own delay).
        ctx.down_sources.down(&cb.source);
    }
    if cb.attempts >= ctx.settings.callback_max_attempts {
        count(&cb.source, "dead");
        let why = format!("{reason} (gave up after {} attempts)", cb.attempts);
        tracing::warn!(callback_id = %cb.id, reason = %why, "post-back dead-lettered");
        return Ok(callbacks::dead(&ctx.pool, cb.id, &why, status).await?);
    }
    count(&cb.source, "retry");
    let backoff = Backoff::new(
        ctx.settings.callback_retry_base_ms,
        ctx.settings.callback_retry_max_ms,
    );
    // The server's own Retry-After / rate-limit reset wins over our schedule.
    let delay = after.unwrap_or_else(|| backoff.delay(cb.attempts as u32));
    tracing::info!(callback_id = %cb.id, %reason, ?delay, "post-back will be retried");
    callbacks::retry_at(&ctx.pool, cb.id, delay.as_millis() as u64, reason, status).await?;
    Ok(())
}

fn count(source: &str, result: &'static str) {
    metrics::counter!("aap_bridge_callback_attempts_total", "source" => source.to_string(), "result" => result)
        .increment(1);
}
