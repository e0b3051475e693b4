//! What catch-up passes remember: checkpoints, and the GitHub redeliveries already asked for.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// Takes the pass lock of `source` for the life of `conn`'s transaction. `wait`: block up to
/// `lock_timeout` (an admin call); otherwise give up at once (the background pass).
pub async fn lock(conn: &mut PgConnection, source: &str, wait: bool) -> Result<bool, sqlx::Error> {
    let key = format!("aap-bridge:catch-up:{source}");
    if !wait {
        return sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&key)
            .fetch_one(conn)
            .await;
    }
    sqlx::query("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *conn)
        .await?;
    match sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(&key)
        .execute(conn)
        .await
    {
        Ok(_) => Ok(true),
        // lock_not_available: another pass held it for the whole timeout.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn checkpoint(
    pool: &PgPool,
    source: &str,
    scope: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT checkpoint FROM catch_up_checkpoints WHERE source = $1 AND scope = $2",
    )
    .bind(source)
    .bind(scope)
    .fetch_optional(pool)
    .await
}

/// Moves the checkpoint forward (never back: an older `since` pass must not rewind it).
pub async fn advance(
    pool: &PgPool,
    source: &str,
    scope: &str,
    to: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catch_up_checkpoints (source, scope, checkpoint) VALUES ($1, $2, $3)
         ON CONFLICT (source, scope) DO UPDATE
         SET checkpoint = GREATEST(catch_up_checkpoints.checkpoint, EXCLUDED.checkpoint),
             updated_at = now()",
    )
    .bind(source)
    .bind(scope)
    .bind(to)
    .execute(pool)
    .await?;
    Ok(())
}

/// Which of `ids` are on a stored event of `source` received since `after`. `received_at` has
/// a BRIN index, so the bound keeps this to the days GitHub lists.
pub async fn stored_deliveries(
    pool: &PgPool,
    source: &str,
    ids: &[String],
    after: DateTime<Utc>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT delivery_id FROM events
         WHERE source = $1 AND delivery_id = ANY($2) AND received_at >= $3",
    )
    .bind(source)
    .bind(ids)
    .bind(after)
    .fetch_all(pool)
    .await
}

/// Which of `ids` were asked for before.
pub async fn requested(
    pool: &PgPool,
    source: &str,
    ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT delivery_id FROM catch_up_redeliveries WHERE source = $1 AND delivery_id = ANY($2)",
    )
    .bind(source)
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Records the request before it is made; false when another pass already did.
pub async fn claim_redelivery(
    pool: &PgPool,
    source: &str,
    delivery_id: &str,
    github_id: i64,
) -> Result<bool, sqlx::Error> {
    let rows = sqlx::query(
        "INSERT INTO catch_up_redeliveries (source, delivery_id, github_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(source)
    .bind(delivery_id)
    .bind(github_id)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(rows == 1)
}

/// The request's answer; `None` forgets the claim, so a later pass asks again.
pub async fn settle_redelivery(
    pool: &PgPool,
    source: &str,
    delivery_id: &str,
    result: Option<&str>,
) -> Result<(), sqlx::Error> {
    let q = match result {
        Some(_) => {
            "UPDATE catch_up_redeliveries SET result = $3 WHERE source = $1 AND delivery_id = $2"
        }
        None => "DELETE FROM catch_up_redeliveries WHERE source = $1 AND delivery_id = $2",
    };
    let mut query = sqlx::query(q).bind(source).bind(delivery_id);
    if let Some(r) = result {
        query = query.bind(r);
    }
    query.execute(pool).await?;
    Ok(())
}

/// GitHub lists deliveries for 3 days; requests older than a week are of no further use.
pub async fn prune_redeliveries(pool: &PgPool, source: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM catch_up_redeliveries
         WHERE source = $1 AND requested_at < now() - interval '7 days'",
    )
    .bind(source)
    .execute(pool)
    .await?;
    Ok(())
}

/// A stored ServiceNow event for one of the records read.
#[derive(Debug, sqlx::FromRow)]
pub struct KnownRecord {
    pub sys_id: String,
    pub category: Option<String>,
    pub dedupe_key: Option<String>,
}

/// The events of `source` for these sys_ids (the partial index `events_servicenow_sys_id`).
pub async fn known_records(
    pool: &PgPool,
    source: &str,
    sys_ids: &[String],
) -> Result<Vec<KnownRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT ticket ->> 'sys_id' AS sys_id, category, dedupe_key FROM events
         WHERE source = $1 AND kind = 'servicenow' AND (ticket ->> 'sys_id') = ANY($2)",
    )
    .bind(source)
    .bind(sys_ids)
    .fetch_all(pool)
    .await
}
