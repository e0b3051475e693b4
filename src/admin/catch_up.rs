//! One catch-up pass on demand (the admin API's `POST /catch-up/{source}`, the `catch-up`
//! command); the background passes run the same code.

use super::{Admin, Error, Result};
use crate::catch_up::{RunError, Summary};
use crate::domain::AuditAction;
use crate::operators::{audit, Actor};
use chrono::{DateTime, Utc};

impl Admin {
    /// Runs one pass for `source` now, from `since` instead of its checkpoint when given. Waits
    /// (up to 30 s) for a pass already running elsewhere. A pass that failed part-way is still
    /// an answer: its summary carries the error.
    pub async fn catch_up(
        &self,
        source: &str,
        since: Option<DateTime<Utc>>,
        actor: &Actor,
    ) -> Result<Summary> {
        let Some(c) = &self.catch_up else {
            return Err(Error::NotFound(format!(
                "source `{}` has no catch_up: configured",
                source.escape_debug()
            )));
        };
        match c.run(source, since, true).await {
            Ok(summary) => {
                let detail = serde_json::json!({ "since": since, "summary": &summary });
                let target = audit::source(source);
                audit::record(
                    &self.pool,
                    actor,
                    AuditAction::CatchUp,
                    Some(&target),
                    detail,
                )
                .await;
                Ok(summary)
            }
            Err(e @ (RunError::UnknownSource(_) | RunError::NotConfigured(_))) => {
                Err(Error::NotFound(e.to_string()))
            }
            Err(e @ RunError::Busy(_)) => Err(Error::Conflict(e.to_string())),
            Err(RunError::Database(e)) => Err(e.into()),
        }
    }
}
