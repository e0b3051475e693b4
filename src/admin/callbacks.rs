//! Post-backs: listing them, and sending a dead one again.

use super::query::{CallbackQuery, DEFAULT_LIMIT};
use super::{Admin, Error, Result};
use crate::domain::AuditAction;
use crate::operators::{audit, Actor};
use crate::store::admin::{self as store, CallbackView, Retry};
use uuid::Uuid;

impl Admin {
    /// Post-backs, newest first, optionally in one state (`dead`: the dead letters).
    pub async fn callbacks(&self, query: &CallbackQuery) -> Result<Vec<CallbackView>> {
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        Ok(store::list_callbacks(&self.pool, query.state, limit).await?)
    }

    /// Every dead letter goes back to the outbox, due now, attempts reset: after a ticket
    /// system's outage or a fixed credential. Returns how many.
    pub async fn retry_dead(&self, actor: &Actor) -> Result<u64> {
        let n = store::retry_dead(&self.pool).await?;
        tracing::warn!(retried = n, user = %actor.name, "every dead callback queued again");
        let detail = serde_json::json!({ "retried": n });
        audit::record(
            &self.pool,
            actor,
            AuditAction::CallbacksRetryAll,
            None,
            detail,
        )
        .await;
        if let Some(w) = &self.wake {
            w.notify.notify_one();
        }
        Ok(n)
    }

    /// A dead post-back goes back to the outbox, due now, attempts reset.
    pub async fn retry_callback(&self, id: Uuid, actor: &Actor) -> Result<CallbackView> {
        match store::retry_callback(&self.pool, id).await? {
            Retry::Queued(cb) => {
                tracing::info!(callback_id = %id, user = %actor.name, "dead callback queued again");
                let detail = serde_json::json!({ "callback_id": id, "phase": cb.phase });
                let target = audit::event(cb.event_id);
                audit::record(
                    &self.pool,
                    actor,
                    AuditAction::CallbackRetry,
                    Some(&target),
                    detail,
                )
                .await;
                Ok(cb)
            }
            Retry::NotDead(state) => Err(Error::Conflict(format!(
                "callback is {state}, only dead callbacks can be retried"
            ))),
            Retry::NotFound => Err(Error::NotFound(format!("no callback {id}"))),
        }
    }
}
