//! Delivers the outbox: retries with backoff and jitter, honours Retry-After and rate-limit
//! resets, and dead-letters permanent failures with the reason.

use super::Context;
use crate::notify::{Prepared, SendError};
use crate::retry::Backoff;
use crate::store::callbacks;
use std::sync::Arc;
use tokio::task::JoinSet;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let lease = ctx.settings.callback_lease_secs;
    let mut due = callbacks::claim_due(&ctx.pool, 32, lease).await?;
    // A ticket API that was down is probed with its oldest post-back; when that goes through,
    // everything that waited for it is released at once instead of at the end of its backoff.
    for source in ctx.down_sources.probes_due() {
        if let Some(cb) = callbacks::claim_probe(&ctx.pool, &source, lease).await? {
            due.push(cb);
        }
    }
    if due.is_empty() {
        return Ok(false);
    }
    let mut set = JoinSet::new();
    for cb in due {
        let ctx = ctx.clone();
        set.spawn(async move {
            if let Err(e) = deliver(&ctx, cb).await {
                tracing::warn!(error = %e, "callback bookkeeping failed");
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        // A panicking delivery loses only its own lease; the row is claimed again later.
        if let Err(e) = joined {
            tracing::error!(error = %e, "callback delivery task failed");
        }
    }
    Ok(true)
}

async fn deliver(ctx: &Context, cb: callbacks::Due) -> anyhow::Result<()> {
    let prepared: Prepared = match serde_json::from_value(cb.request.0.clone()) {
        Ok(p) => p,
        Err(e) => {
            return Ok(
                callbacks::dead(&ctx.pool, cb.id, &format!("unreadable request: {e}")).await?,
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
        Err(SendError::Permanent { reason }) => {
            count(&cb.source, "dead");
            tracing::warn!(callback_id = %cb.id, %reason, "post-back dead-lettered");
            callbacks::dead(&ctx.pool, cb.id, &reason).await?;
        }
        Err(SendError::Retry { after, reason }) => {
            if after.is_none() {
                // Down, not throttling us (a throttle names its own delay).
                ctx.down_sources.down(&cb.source);
            }
            if cb.attempts >= ctx.settings.callback_max_attempts {
                count(&cb.source, "dead");
                let why = format!("{reason} (gave up after {} attempts)", cb.attempts);
                tracing::warn!(callback_id = %cb.id, reason = %why, "post-back dead-lettered");
                return Ok(callbacks::dead(&ctx.pool, cb.id, &why).await?);
            }
            count(&cb.source, "retry");
            let backoff = Backoff::new(
                ctx.settings.callback_retry_base_ms,
                ctx.settings.callback_retry_max_ms,
            );
            // The server's own Retry-After / rate-limit reset wins over our schedule.
            let delay = after.unwrap_or_else(|| backoff.delay(cb.attempts as u32));
            tracing::info!(callback_id = %cb.id, %reason, ?delay, "post-back will be retried");
            callbacks::retry_at(&ctx.pool, cb.id, delay.as_millis() as u64, &reason).await?;
        }
    }
    Ok(())
}

fn count(source: &str, result: &'static str) {
    metrics::counter!("aap_bridge_callback_attempts_total", "source" => source.to_string(), "result" => result)
        .increment(1);
}
