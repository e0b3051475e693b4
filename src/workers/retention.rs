//! Deletes old, settled events in batches (launches and callbacks go with them). Nothing still
//! in flight is touched: pending events, unfinished launches, undelivered callbacks stay.
//! Dedupe keys are pruned separately and later (`dedupe_days`), and never while their event is
//! still stored, so a pruned delivery replayed later is still a duplicate.

use crate::config::RetentionSettings;
use sqlx::PgPool;

/// One pruning pass by whichever replica gets the lock; returns the events deleted.
pub async fn prune(pool: &PgPool, s: &RetentionSettings) -> Result<u64, sqlx::Error> {
    if s.max_age_days == 0 && s.dedupe_days == 0 {
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
    let events = if s.max_age_days > 0 {
        batches(pool, EVENTS, s.max_age_days, s.batch).await?
    } else {
        0
    };
    let keys = if s.dedupe_days > 0 {
        batches(pool, DEDUPE, s.dedupe_days, s.batch).await?
    } else {
        0
    };
    lock.commit().await?;
    if events > 0 {
        tracing::info!(events, days = s.max_age_days, "pruned old events");
    }
    if keys > 0 {
        tracing::info!(keys, days = s.dedupe_days, "pruned old dedupe keys");
    }
    Ok(events)
}

const EVENTS: &str = "DELETE FROM events WHERE id IN (
     SELECT e.id FROM events e
     WHERE e.received_at < now() - make_interval(days => $1)
       AND e.state <> 'pending'
       AND NOT EXISTS (SELECT 1 FROM launches l WHERE l.event_id = e.id
                       AND l.state IN ('planned', 'launching', 'launched'))
       AND NOT EXISTS (SELECT 1 FROM callbacks c WHERE c.event_id = e.id
                       AND c.state = 'pending')
     LIMIT $2 FOR UPDATE SKIP LOCKED)";

const DEDUPE: &str = "DELETE FROM dedupe WHERE (source, dedupe_key) IN (
     SELECT d.source, d.dedupe_key FROM dedupe d
     WHERE d.first_seen < now() - make_interval(days => $1)
       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id)
     LIMIT $2 FOR UPDATE SKIP LOCKED)";

/// Runs a `DELETE … LIMIT $2` until it deletes less than a full batch.
async fn batches(pool: &PgPool, sql: &str, days: u32, batch: i64) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let deleted = sqlx::query(sql)
            .bind(days as i32)
            .bind(batch)
            .execute(pool)
            .await?
            .rows_affected();
        total += deleted;
        if deleted < batch as u64 {
            return Ok(total);
        }
    }
}
