//! The approval states of a launch (README "Approval"): `awaiting_approval`, then `planned`
//! (approved), `denied` or `expired`. Every transition is fenced on the state, so the first
//! decision wins and a second one, on any replica, changes nothing.

use super::rows::{LaunchRow, COLUMNS};
use crate::domain::approval::Stored;
use crate::domain::LaunchId;
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::PgConnection;

/// Records what the request needs on a launch just planned `awaiting_approval`; its expiry.
pub async fn request(
    conn: &mut PgConnection,
    id: LaunchId,
    policy: &Stored,
    ticket: &str,
    timeout_secs: u64,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE launches SET approval = $2, approval_ticket = $3,
             approval_expires_at = now() + make_interval(secs => $4), updated_at = now()
         WHERE id = $1 AND state = 'awaiting_approval'
         RETURNING approval_expires_at",
    )
    .bind(id)
    .bind(Json(policy))
    .bind(ticket)
    .bind(timeout_secs as f64)
    .fetch_optional(conn)
    .await
}

/// A launch awaiting approval, with what decides who may give it.
#[derive(Debug, sqlx::FromRow)]
pub struct Awaiting {
    pub id: LaunchId,
    pub approval: Option<Json<Stored>>,
}

/// The launches of `ticket` awaiting approval, oldest first. Not locked: the permission check
/// that follows may wait on the ticket system, and the decision itself is fenced.
pub async fn awaiting(conn: &mut PgConnection, ticket: &str) -> Result<Vec<Awaiting>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, approval FROM launches
         WHERE approval_ticket = $1 AND state = 'awaiting_approval'
         ORDER BY created_at, id",
    )
    .bind(ticket)
    .fetch_all(conn)
    .await
}

/// The newest decided launch of `ticket`: its id, state and who decided (for "already …").
pub async fn last_decided(
    conn: &mut PgConnection,
    ticket: &str,
) -> Result<Option<(LaunchId, String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, state, coalesce(approved_by, denied_by) FROM launches
         WHERE approval_ticket = $1 AND state <> 'awaiting_approval'
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(ticket)
    .fetch_optional(conn)
    .await
}

/// Approved: back to `planned`, due now; the launcher takes it from there.
pub async fn approve(
    conn: &mut PgConnection,
    id: LaunchId,
    by: &str,
) -> Result<Option<LaunchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE launches SET state = 'planned', approved_by = $2, approved_at = now(),
             next_attempt_at = now(), updated_at = now()
         WHERE id = $1 AND state = 'awaiting_approval'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(by)
    .fetch_optional(conn)
    .await
}

/// Denied: final, never sent.
pub async fn deny(
    conn: &mut PgConnection,
    id: LaunchId,
    by: &str,
) -> Result<Option<LaunchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE launches SET state = 'denied', denied_by = $2, finished_at = now(),
             last_error = 'denied by ' || $2, updated_at = now()
         WHERE id = $1 AND state = 'awaiting_approval'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(by)
    .fetch_optional(conn)
    .await
}

/// Requests past their expiry settle `expired` (final), at most `limit` per call.
pub async fn expire(conn: &mut PgConnection, limit: i64) -> Result<Vec<LaunchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE launches SET state = 'expired', finished_at = now(),
             last_error = 'approval expired', updated_at = now()
         WHERE id IN (SELECT id FROM launches
                      WHERE state = 'awaiting_approval' AND approval_expires_at <= now()
                      ORDER BY approval_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
           AND state = 'awaiting_approval'
         RETURNING {COLUMNS}"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The state of launch `id` (None: no such launch), for why a decision changed nothing.
pub async fn state_of(
    conn: &mut PgConnection,
    id: LaunchId,
) -> Result<Option<crate::domain::LaunchState>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM launches WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}
