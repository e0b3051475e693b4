//! Counts for the console's overview and rules pages, and the queue depths `/metrics` shows.

use super::admin::{CallbackView, EventSummary, CALLBACK, SUMMARY};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// How many rows are in one state, among those created in the last hour and the last day.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StateCount {
    pub state: String,
    pub hour: i64,
    pub day: i64,
}

/// Which table `state_counts` reads, and its creation time column.
#[derive(Debug, Clone, Copy)]
pub enum Counted {
    Events,
    Launches,
    Callbacks,
}

pub async fn state_counts(pool: &PgPool, what: Counted) -> Result<Vec<StateCount>, sqlx::Error> {
    let (table, at) = match what {
        Counted::Events => ("events", "received_at"),
        Counted::Launches => ("launches", "created_at"),
        Counted::Callbacks => ("callbacks", "created_at"),
    };
    sqlx::query_as(&format!(
        "SELECT state, count(*) FILTER (WHERE {at} > now() - interval '1 hour') AS hour,
                count(*) AS day
         FROM {table} WHERE {at} > now() - interval '1 day'
         GROUP BY state ORDER BY state"
    ))
    .fetch_all(pool)
    .await
}

/// Work waiting or in progress, by queue (the `aap_bridge_queue_depth` gauge).
pub async fn queue_depths(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT 'events_pending', count(*) FROM events WHERE state = 'pending'
         UNION ALL SELECT 'launches_planned', count(*) FROM launches WHERE state = 'planned'
         UNION ALL SELECT 'launches_launching', count(*) FROM launches WHERE state = 'launching'
         UNION ALL SELECT 'launches_running', count(*) FROM launches WHERE state = 'launched'
         UNION ALL SELECT 'launches_held', count(*) FROM launches WHERE state = 'held'
         UNION ALL SELECT 'launches_awaiting_approval', count(*) FROM launches
             WHERE state = 'awaiting_approval'
         UNION ALL SELECT 'callbacks_pending', count(*) FROM callbacks WHERE state = 'pending'
         UNION ALL SELECT 'callbacks_dead', count(*) FROM callbacks WHERE state = 'dead'",
    )
    .fetch_all(pool)
    .await
}

/// Seconds since each of these stored controller tokens was created, by `controller_key`.
pub async fn token_ages(pool: &PgPool, keys: &[&str]) -> Result<Vec<(String, f64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT controller_key, extract(epoch FROM now() - created_at)::float8
         FROM controller_tokens WHERE controller_key = ANY($1)",
    )
    .bind(keys)
    .fetch_all(pool)
    .await
}

/// Seconds since the oldest launch still awaiting approval was planned (None: none waits).
pub async fn oldest_approval_secs(pool: &PgPool) -> Result<Option<f64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - min(created_at))::float8 FROM launches
         WHERE state = 'awaiting_approval'",
    )
    .fetch_one(pool)
    .await
}

/// Launches `planned` or `launching`, by the controller they go to.
pub async fn waiting_by_controller(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT controller, count(*) FROM launches
         WHERE state IN ('planned', 'launching') GROUP BY controller ORDER BY controller",
    )
    .fetch_all(pool)
    .await
}

/// The newest events that settled `failed`.
pub async fn failed_events(pool: &PgPool, limit: i64) -> Result<Vec<EventSummary>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY} FROM events WHERE state = 'failed' ORDER BY id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A launch that did not become a job (`rejected`, `unknown`) or whose job did not succeed.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LaunchBrief {
    pub id: Uuid,
    pub event_id: Uuid,
    pub rule: String,
    pub state: String,
    pub job_status: Option<String>,
    pub job_url: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

const BRIEF: &str = "id, event_id, rule, state, job_status, job_url, last_error, created_at";

pub async fn failed_launches(pool: &PgPool, limit: i64) -> Result<Vec<LaunchBrief>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {BRIEF} FROM launches
         WHERE state IN ('rejected', 'unknown')
            OR (state = 'finished' AND job_status NOT IN ('successful'))
         ORDER BY created_at DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn dead_callbacks(pool: &PgPool, limit: i64) -> Result<Vec<CallbackView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CALLBACK} FROM callbacks WHERE state = 'dead'
         ORDER BY created_at DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Launches of one rule in one state, and the newest of them.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RuleCount {
    pub rule: String,
    pub state: String,
    pub count: i64,
}

pub async fn rule_counts(pool: &PgPool) -> Result<Vec<RuleCount>, sqlx::Error> {
    sqlx::query_as("SELECT rule, state, count(*) AS count FROM launches GROUP BY rule, state")
        .fetch_all(pool)
        .await
}

/// The newest launch of each rule.
pub async fn last_launches(pool: &PgPool) -> Result<Vec<LaunchBrief>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT DISTINCT ON (rule) {BRIEF} FROM launches ORDER BY rule, created_at DESC"
    ))
    .fetch_all(pool)
    .await
}
