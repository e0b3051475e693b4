//! Deletes old, settled events in batches (launches and callbacks go with them). Nothing still
//! in flight is touched: pending events, unfinished launches, undelivered callbacks stay.
//! A pruned event's dedupe key moves to the `dedupe` table, pruned later (`dedupe_days`), so a
//! pruned delivery replayed later is still a duplicate.

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
    // Ended sessions go; the audit trail stays (it is small: failed logins are rate-limited).
    crate::operators::sessions::prune(pool).await?;
    lock.commit().await?;
    if events > 0 {
        tracing::info!(events, days = s.max_age_days, "pruned old events");
    }
    if keys > 0 {
        tracing::info!(keys, days = s.dedupe_days, "pruned old dedupe keys");
    }
    Ok(events)
}

// Each pruned event's dedupe key moves to `dedupe` in the same statement that deletes it.
/// Public so `bench explain` shows the plan of this very statement.
pub const EVENTS: &str = "WITH gone AS (
     DELETE FROM events WHERE id IN (
         SELECT e.id FROM events e
         WHERE e.received_at < now() - make_interval(days => $1)
           AND e.state <> 'pending'
           AND NOT EXISTS (SELECT 1 FROM launches l WHERE l.event_id = e.id
                           AND l.state IN ('planned', 'launching', 'launched', 'held',
                                           'awaiting_approval'))
           AND NOT EXISTS (SELECT 1 FROM callbacks c WHERE c.event_id = e.id
                           AND c.state = 'pending')
         LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING source, dedupe_key, received_at, id),
 kept AS (
     INSERT INTO dedupe (source, dedupe_key, first_seen, event_id)
     SELECT source, dedupe_key, received_at, id FROM gone WHERE dedupe_key IS NOT NULL
     ON CONFLICT (source, dedupe_key) DO NOTHING)
 SELECT count(*) FROM gone";

const DEDUPE: &str = "WITH gone AS (
     DELETE FROM dedupe WHERE (source, dedupe_key) IN (
         SELECT d.source, d.dedupe_key FROM dedupe d
         WHERE d.first_seen < now() - make_interval(days => $1)
         LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING 1)
 SELECT count(*) FROM gone";

/// Runs a `DELETE … LIMIT $2` until it deletes less than a full batch.
async fn batches(pool: &PgPool, sql: &str, days: u32, batch: i64) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        if sql == EVENTS {
            // An insert that began before this delete could miss both the event's key (deleted)
            // and its copy in `dedupe` (not yet visible to it) and store a replay as new. The
            // lock waits for inserts in progress and holds new ones back for one batch.
            sqlx::query("SET LOCAL lock_timeout = '5s'")
                .execute(&mut *tx)
                .await?;
            sqlx::query("LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let deleted: i64 = sqlx::query_scalar(sql)
            .bind(days as i32)
            .bind(batch)
            .fetch_optional(&mut *tx)
            .await?
            .unwrap_or(0);
        tx.commit().await?;
        let deleted = deleted as u64;
        total += deleted;
        if deleted < batch as u64 {
            return Ok(total);
        }
    }
}
