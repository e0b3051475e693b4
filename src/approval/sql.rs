//! `approval_commands`: each `/approve` or `/deny` as it arrived, until a worker applies it.

use super::command::{Command, Verb};
use sqlx::PgConnection;
use uuid::Uuid;

/// Stored in the dispatcher's transaction, with its event (one row per event: a redelivery of
/// the same comment is the same event, so the same command).
pub async fn record(conn: &mut PgConnection, event: Uuid, c: &Command) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO approval_commands (event_id, ticket, verb, actor) VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event)
    .bind(&c.ticket)
    .bind(c.verb.as_str())
    .bind(&c.actor)
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(Debug, sqlx::FromRow)]
pub struct Pending {
    pub event_id: Uuid,
    pub ticket: String,
    pub verb: String,
    pub actor: String,
    pub attempts: i32,
}

impl Pending {
    pub fn verb(&self) -> Verb {
        match self.verb.as_str() {
            "deny" => Verb::Deny,
            _ => Verb::Approve,
        }
    }
}

/// The oldest due command, locked for this transaction; other replicas skip it.
pub async fn claim(conn: &mut PgConnection) -> Result<Option<Pending>, sqlx::Error> {
    sqlx::query_as(
        "SELECT event_id, ticket, verb, actor, attempts FROM approval_commands
         WHERE state = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(conn)
    .await
}

/// How it ended: `applied`, `refused` or `moot` (nothing awaited approval on its ticket).
pub async fn settle(
    conn: &mut PgConnection,
    event: Uuid,
    state: &str,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE approval_commands SET state = $2, outcome = $3, updated_at = now()
         WHERE event_id = $1",
    )
    .bind(event)
    .bind(state)
    .bind(outcome)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Not decided yet (the permission check could not be made): tried again after `secs`.
pub async fn retry(
    conn: &mut PgConnection,
    event: Uuid,
    secs: f64,
    why: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE approval_commands SET attempts = attempts + 1, outcome = $3,
             next_attempt_at = now() + make_interval(secs => $2), updated_at = now()
         WHERE event_id = $1",
    )
    .bind(event)
    .bind(secs)
    .bind(why)
    .execute(conn)
    .await
    .map(|_| ())
}
