//! Deletes old, settled events in batches (launches and callbacks go with them). Nothing still
//! in flight is touched: pending events, unfinished launches, undelivered callbacks stay.

use crate::config::RetentionSettings;
use sqlx::PgPool;

/// One pruning pass by whichever replica gets the lock; returns the events deleted.
pub async fn prune(pool: &PgPool, s: &RetentionSettings) -> Result<u64, sqlx::Error> {
    if s.max_age_days == 0 {
        return Ok(0);
    }
    let mut lock = pool.begin().await?;
    let ours: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('aap-bridge:retention', 0))",
    )
    .fetch_one(&mut *lock)
    .await?;
    if !ours {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM events WHERE id IN (
                 SELECT e.id FROM events e
                 WHERE e.received_at < now() - make_interval(days => $1)
                   AND e.state <> 'pending'
                   AND NOT EXISTS (SELECT 1 FROM launches l WHERE l.event_id = e.id
                                   AND l.state IN ('planned', 'launching', 'launched'))
                   AND NOT EXISTS (SELECT 1 FROM callbacks c WHERE c.event_id = e.id
                                   AND c.state = 'pending')
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(s.max_age_days as i32)
        .bind(s.batch)
        .execute(pool)
        .await?
        .rows_affected();
        total += deleted;
        if deleted < s.batch as u64 {
            break;
        }
    }
    lock.commit().await?;
    if total > 0 {
        tracing::info!(events = total, days = s.max_age_days, "pruned old events");
    }
    Ok(total)
}
