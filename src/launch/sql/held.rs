//! Launches held while their rule is paused (README "Circuit breaker"). A launch is held at
//! planning (the dispatcher inserts it `held`), at the claim, or at the owner check before the
//! POST, so a held launch has never been sent. Resuming the rule releases held launches back to
//! `planned` or drops them (final).

use super::fence::Fence;
use super::rows::{LaunchRow, COLUMNS};
use sqlx::PgConnection;

/// Rules paused now, as a subquery.
const PAUSED: &str = "SELECT rule FROM rule_pauses WHERE paused_at IS NOT NULL";

/// Planned launches of paused rules become `held`. Run under `fence::lock_claims`, before
/// the claim: a pause committed before that lock holds every launch not claimed yet.
pub async fn hold_planned(conn: &mut PgConnection) -> Result<Vec<LaunchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE launches SET state = 'held', held_at = now(), updated_at = now()
         WHERE state = 'planned' AND rule IN ({PAUSED})
         RETURNING {COLUMNS}"
    ))
    .fetch_all(conn)
    .await
}

/// A claimed launch whose rule was paused before its owner check (`confirm_send` refused it):
/// `held`, never sent. None: not this attempt's, already sent, or its rule is not paused.
pub async fn hold_unsent(
    conn: &mut PgConnection,
    f: &Fence,
) -> Result<Option<LaunchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE launches SET state = 'held', held_at = now(), lease_until = NULL, owner = NULL,
             updated_at = now()
         WHERE id = $1 AND attempts = $2 AND owner = $3 AND state = 'launching'
           AND sent_at IS NULL AND rule IN ({PAUSED})
         RETURNING {COLUMNS}"
    ))
    .bind(f.id)
    .bind(f.attempt)
    .bind(&f.owner)
    .fetch_optional(conn)
    .await
}

/// The rule's held launches go back to `planned`, due now. Claims take a rule's launches by
/// due time, then creation, so they go out oldest first, through storm control.
pub async fn release(conn: &mut PgConnection, rule: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE launches SET state = 'planned', next_attempt_at = now(), updated_at = now()
         WHERE rule = $1 AND state = 'held'",
    )
    .bind(rule)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
}

/// The rule's held launches become `dropped` (final), oldest first, with `why` as their error.
pub async fn drop_all(
    conn: &mut PgConnection,
    rule: &str,
    why: &str,
) -> Result<Vec<LaunchRow>, sqlx::Error> {
    let mut rows: Vec<LaunchRow> = sqlx::query_as(&format!(
        "UPDATE launches SET state = 'dropped', last_error = $2, updated_at = now()
         WHERE rule = $1 AND state = 'held'
         RETURNING {COLUMNS}"
    ))
    .bind(rule)
    .bind(why)
    .fetch_all(conn)
    .await?;
    // UUIDv7 ids sort in creation order.
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}
