//! Event rows as the dispatcher claims and settles them.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct PendingEvent {
    pub id: Uuid,
    pub source: String,
    /// The column's CHECK lists the same words.
    pub kind: crate::domain::SourceKind,
    pub delivery_id: String,
    pub event_type: String,
    pub category: Option<String>,
    pub ticket: Json<Value>,
    pub payload: Json<Value>,
    pub received_at: DateTime<Utc>,
}

/// Public so `bench explain` shows the plan of this very statement.
pub const CLAIM: &str =
    "SELECT id, source, kind, delivery_id, event_type, category, ticket, payload, received_at
         FROM events WHERE state = 'pending' ORDER BY received_at LIMIT $1
         FOR UPDATE SKIP LOCKED";

/// Oldest pending events, locked for this transaction; other replicas skip them.
pub async fn claim(conn: &mut PgConnection, limit: i64) -> Result<Vec<PendingEvent>, sqlx::Error> {
    sqlx::query_as(CLAIM).bind(limit).fetch_all(conn).await
}

pub async fn settle(
    conn: &mut PgConnection,
    id: Uuid,
    state: super::events::EventState,
    reason: Option<&str>,
    decision: &Value,
    rules_version: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE events SET state = $2, state_reason = $3, decision = $4, rules_version = $5,
             updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(state)
    .bind(reason)
    .bind(Json(decision))
    .bind(rules_version)
    .execute(conn)
    .await
    .map(|_| ())
}
