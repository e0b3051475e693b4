//! `callbacks`: the post-back outbox. At-least-once delivery; one row per launch and phase.

pub use crate::domain::CallbackState;
use crate::domain::{CallbackId, EventId, LaunchId};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

pub struct NewCallback<'a> {
    pub launch_id: LaunchId,
    pub event_id: EventId,
    pub source: &'a str,
    pub phase: crate::domain::Phase,
    pub request: &'a Value,
    /// Set when the post-back cannot even be built (it goes straight to dead letters).
    pub error: Option<&'a str>,
}

pub async fn enqueue(conn: &mut PgConnection, c: &NewCallback<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO callbacks (id, launch_id, event_id, source, phase, request, state, last_error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (launch_id, phase) DO NOTHING",
    )
    .bind(CallbackId::new())
    .bind(c.launch_id)
    .bind(c.event_id)
    .bind(c.source)
    .bind(c.phase)
    .bind(Json(c.request))
    .bind(if c.error.is_some() {
        CallbackState::Dead
    } else {
        CallbackState::Pending
    })
    .bind(c.error)
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub id: CallbackId,
    pub source: String,
    pub phase: crate::domain::Phase,
    pub request: Json<Value>,
    pub attempts: i32,
}

/// The notifier's claim (public so `bench explain` shows the plan of this very statement).
pub const CLAIM_DUE: &str = "UPDATE callbacks SET attempts = attempts + 1,
             lease_until = now() + make_interval(secs => $2)
         WHERE id IN (
             SELECT c.id FROM callbacks c
             WHERE c.state = 'pending' AND c.next_attempt_at <= now()
               AND (c.lease_until IS NULL OR c.lease_until < now())
               AND NOT EXISTS (SELECT 1 FROM callbacks p
                   WHERE p.launch_id = c.launch_id AND p.state = 'pending'
                     AND p.created_at < c.created_at)
             ORDER BY c.next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id, source, phase, request, attempts";

/// Claims due callbacks with a lease. A post-back waits while an earlier one of its launch is
/// pending, so a ticket reads them in order: held, then the link, then the outcome.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease_secs: u64,
) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query_as(CLAIM_DUE)
        .bind(limit)
        .bind(lease_secs as f64)
        .fetch_all(pool)
        .await
}

/// While a ticket API is down: its oldest waiting post-back, whatever its backoff says, as the
/// probe that finds the API back. A probe is not an attempt: it never dead-letters anything.
pub async fn claim_probe(
    pool: &PgPool,
    source: &str,
    lease_secs: u64,
) -> Result<Option<Due>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE callbacks SET lease_until = now() + make_interval(secs => $2)
         WHERE id = (
             SELECT c.id FROM callbacks c
             WHERE c.state = 'pending' AND c.source = $1
               AND (c.lease_until IS NULL OR c.lease_until < now())
               AND NOT EXISTS (SELECT 1 FROM callbacks p
                   WHERE p.launch_id = c.launch_id AND p.state = 'pending'
                     AND p.created_at < c.created_at)
             ORDER BY c.created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, source, phase, request, attempts",
    )
    .bind(source)
    .bind(lease_secs as f64)
    .fetch_optional(pool)
    .await
}

/// The ticket API answers again: its waiting post-backs are due now.
pub async fn release_source(pool: &PgPool, source: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE callbacks SET next_attempt_at = now()
         WHERE state = 'pending' AND source = $1 AND next_attempt_at > now()",
    )
    .bind(source)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

pub async fn sent(pool: &PgPool, id: CallbackId, status: u16) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE callbacks SET state = 'sent', sent_at = now(), last_status = $2, lease_until = NULL,
             last_error = NULL WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(status as i32)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Tried again after `delay_ms`; `status` is the ticket API's answer, when it gave one.
pub async fn retry_at(
    pool: &PgPool,
    id: CallbackId,
    delay_ms: u64,
    error: &str,
    status: Option<u16>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE callbacks SET next_attempt_at = now() + make_interval(secs => $2),
             lease_until = NULL, last_error = $3, last_status = COALESCE($4, last_status)
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(delay_ms as f64 / 1000.0)
    .bind(error)
    .bind(status.map(i32::from))
    .execute(pool)
    .await
    .map(|_| ())
}

/// A dead letter, with the reason and the ticket API's last answer (when it gave one), so an
/// operator sees what the ticket system said.
pub async fn dead(
    pool: &PgPool,
    id: CallbackId,
    error: &str,
    status: Option<u16>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE callbacks SET state = 'dead', lease_until = NULL, last_error = $2,
             last_status = COALESCE($3, last_status)
         WHERE id = $1 AND state = 'pending'",
    )
    .bind(id)
    .bind(error)
    .bind(status.map(i32::from))
    .execute(pool)
    .await
    .map(|_| ())
}
