//! An operator approves or denies from the console or the admin API: the same fenced
//! decision as a ticket command, recorded with their name.

use super::Verb;
use crate::domain::{LaunchId, LaunchState};
use crate::launch::sql::approval as launches;
use crate::launch::LaunchRow;
use crate::notify::Notifier;
use crate::postback::{self, PostbackNews};
use sqlx::PgPool;

/// Why an operator's decision changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum NotDecided {
    #[error("no launch {0}")]
    NotFound(LaunchId),
    #[error("the launch is {0}; only a launch awaiting approval can be approved or denied")]
    NotAwaiting(LaunchState),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Approves (back to `planned`) or denies (final, ticket told) launch `id` as `by`; the
/// decided row.
pub async fn decide(
    pool: &PgPool,
    notifier: &Notifier,
    id: LaunchId,
    verb: Verb,
    by: &str,
) -> Result<LaunchRow, NotDecided> {
    let mut tx = pool.begin().await?;
    let done = match verb {
        Verb::Approve => launches::approve(&mut tx, id, by).await?,
        Verb::Deny => launches::deny(&mut tx, id, by).await?,
    };
    let Some(row) = done else {
        return Err(match launches::state_of(&mut tx, id).await? {
            Some(s) => NotDecided::NotAwaiting(s),
            None => NotDecided::NotFound(id),
        });
    };
    if verb == Verb::Deny {
        let text = format!(
            "Not launched: {} for rule {} was denied by {by} in the aap-bridge console.",
            row.target().template_label(),
            row.rule
        );
        postback::write(
            &mut tx,
            notifier,
            &row.target(),
            PostbackNews::ApprovalDecided { text },
        )
        .await?;
    }
    tx.commit().await?;
    let result = match verb {
        Verb::Approve => "approved",
        Verb::Deny => "denied",
    };
    metrics::counter!("aap_bridge_approvals_total", "result" => result).increment(1);
    tracing::info!(launch_id = %id, rule = %row.rule, user = %by, result, "launch decided by an operator");
    Ok(row)
}
