//! An operator approves or denies a launch awaiting approval (console, admin API).

use super::{Admin, Error, Result};
use crate::approval::{decide_by_operator, NotDecided, Verb};
use crate::domain::{AuditAction, LaunchId, LaunchState};
use crate::operators::{audit, Actor};
use uuid::Uuid;

impl Admin {
    /// Approves (`Verb::Approve`) or denies launch `id` as `actor`; the new state.
    pub async fn decide_launch(&self, id: Uuid, verb: Verb, actor: &Actor) -> Result<LaunchState> {
        let row = decide_by_operator(&self.pool, &self.notifier, LaunchId(id), verb, &actor.name)
            .await
            .map_err(|e| match e {
                NotDecided::NotFound(_) => Error::NotFound(e.to_string()),
                NotDecided::NotAwaiting(_) => Error::Conflict(e.to_string()),
                NotDecided::Database(e) => Error::from(e),
            })?;
        let action = match verb {
            Verb::Approve => AuditAction::Approve,
            Verb::Deny => AuditAction::Deny,
        };
        let target = audit::event(row.event_id);
        let detail = serde_json::json!({ "launch_id": id, "state": row.state });
        audit::record(&self.pool, actor, action, Some(&target), detail).await;
        if let Some(w) = &self.wake {
            w.launch.notify_one();
            w.notify.notify_one();
        }
        Ok(row.state)
    }
}
