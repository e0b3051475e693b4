//! The `deliveries` table: batch insert, the two trims, and the reads of the page and API.

use super::Delivery;
use crate::domain::{paging, DeliveryOutcome};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// Takes the rows (they are moved into the statement's arrays, not copied).
pub async fn insert(pool: &PgPool, rows: &mut Vec<Delivery>) -> Result<(), sqlx::Error> {
    let mut at = Vec::with_capacity(rows.len());
    let mut source = Vec::with_capacity(rows.len());
    let mut known = Vec::with_capacity(rows.len());
    let mut client = Vec::with_capacity(rows.len());
    let mut delivery_id = Vec::with_capacity(rows.len());
    let mut status = Vec::with_capacity(rows.len());
    let mut outcome = Vec::with_capacity(rows.len());
    let mut reason = Vec::with_capacity(rows.len());
    let mut size = Vec::with_capacity(rows.len());
    let mut event_id = Vec::with_capacity(rows.len());
    for d in rows.drain(..) {
        at.push(d.at);
        source.push(d.source);
        known.push(d.known);
        client.push(d.client);
        delivery_id.push(d.delivery_id);
        status.push(d.status as i16);
        outcome.push(d.outcome.as_str());
        reason.push(d.reason);
        size.push(d.size);
        event_id.push(d.event_id);
    }
    sqlx::query(
        "INSERT INTO deliveries (at, source, known, client, delivery_id, status, outcome, reason,
                                 size, event_id)
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::bool[], $4::text[], $5::text[],
                              $6::int2[], $7::text[], $8::text[], $9::int8[], $10::uuid[])",
    )
    .bind(at)
    .bind(source)
    .bind(known)
    .bind(client)
    .bind(delivery_id)
    .bind(status)
    .bind(outcome)
    .bind(reason)
    .bind(size)
    .bind(event_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps the newest `max_rows` (by id; sequence gaps only make it keep fewer). Both steps walk
/// the primary key, so a trim with nothing to delete costs one index probe.
pub async fn trim(pool: &PgPool, max_rows: i64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM deliveries WHERE id <= (SELECT max(id) FROM deliveries) - $1")
        .bind(max_rows)
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}

pub async fn expire(pool: &PgPool, age: Duration) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM deliveries WHERE at < now() - make_interval(secs => $1)")
        .bind(age.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}

/// A stored delivery, as the page and `GET /api/v1/deliveries` show it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub source: String,
    /// False: no source of that name is configured.
    pub known: bool,
    /// The client's address (see `server.client_address_header`).
    pub client: Option<String>,
    pub delivery_id: Option<String>,
    pub status: i16,
    pub outcome: DeliveryOutcome,
    /// Why it was refused or ignored: the answer's error text.
    pub reason: Option<String>,
    /// Body bytes as declared or read.
    pub size: Option<i64>,
    /// The stored event (accepted, duplicate or ignored).
    pub event_id: Option<Uuid>,
}

/// Which deliveries, and which page (newest first).
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub source: Option<String>,
    pub outcome: Option<DeliveryOutcome>,
    pub status: Option<i16>,
    /// Older than this id (the next page).
    pub before: Option<i64>,
    /// Newer than this id (the previous page).
    pub after: Option<i64>,
    pub limit: i64,
}

/// A page newest first, and whether there are older and newer rows beyond it.
pub async fn list(
    pool: &PgPool,
    f: &DeliveryFilter,
) -> Result<(Vec<DeliveryRow>, bool, bool), sqlx::Error> {
    let up = paging::walks_up(f.before.is_some(), f.after.is_some());
    let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
        "SELECT id, at, source, known, client, delivery_id, status, outcome, reason, size, event_id
         FROM deliveries
         WHERE ($1::text IS NULL OR source = $1)
           AND ($2::text IS NULL OR outcome = $2)
           AND ($3::int2 IS NULL OR status = $3)
           AND ($4::int8 IS NULL OR id < $4)
           AND ($5::int8 IS NULL OR id > $5)
         ORDER BY id {} LIMIT $6",
        if up { "ASC" } else { "DESC" }
    ))
    .bind(&f.source)
    .bind(f.outcome)
    .bind(f.status)
    .bind(f.before)
    .bind(f.after)
    .bind(f.limit + 1)
    .fetch_all(pool)
    .await?;
    let page = paging::cut(rows, f.limit, f.before.is_some(), f.after.is_some());
    Ok((page.rows, page.older, page.newer))
}

/// Per source, the deliveries of the last 24 hours by outcome.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SourceCounts {
    pub source: String,
    pub known: bool,
    pub accepted: i64,
    pub duplicate: i64,
    pub ignored: i64,
    pub refused: i64,
    pub unavailable: i64,
    pub last_at: DateTime<Utc>,
}

pub async fn counts(pool: &PgPool) -> Result<Vec<SourceCounts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT source, bool_or(known) AS known,
                count(*) FILTER (WHERE outcome = 'accepted') AS accepted,
                count(*) FILTER (WHERE outcome = 'duplicate') AS duplicate,
                count(*) FILTER (WHERE outcome = 'ignored') AS ignored,
                count(*) FILTER (WHERE outcome = 'refused') AS refused,
                count(*) FILTER (WHERE outcome = 'unavailable') AS unavailable,
                max(at) AS last_at
         FROM deliveries WHERE at > now() - interval '24 hours'
         GROUP BY source ORDER BY bool_or(known) DESC, source LIMIT 50",
    )
    .fetch_all(pool)
    .await
}
