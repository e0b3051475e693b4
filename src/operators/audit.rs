//! The audit trail: one row per operator action and per login, failed ones included.

use super::Actor;
use crate::domain::{AuditAction, Role};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use std::time::Duration;

/// What an action was done to: `event:<id>`, `rule:<name>`, `source:<name>`.
pub fn event(id: impl std::fmt::Display) -> String {
    format!("event:{id}")
}
pub fn rule(name: &str) -> String {
    format!("rule:{name}")
}
pub fn source(name: &str) -> String {
    format!("source:{name}")
}

/// Writes the row. An action that happened is not undone when its audit row cannot be written:
/// the failure is logged at error with everything the row would have held.
pub async fn record(
    pool: &PgPool,
    actor: &Actor,
    action: AuditAction,
    target: Option<&str>,
    detail: Value,
) {
    let r = sqlx::query(
        "INSERT INTO audit (actor, role, action, target, detail, client)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&actor.name)
    .bind(actor.role)
    .bind(action)
    .bind(target)
    .bind(Json(&detail))
    .bind(&actor.client)
    .execute(pool)
    .await;
    if let Err(e) = r {
        tracing::error!(error = %e, actor = %actor.name, action = %action, target, client = actor.client.as_deref(),
            detail = %detail, "audit row not written");
    }
}

/// A failed login: no role, the name as presented.
pub async fn login_failed(pool: &PgPool, name: &str, client: Option<&str>, why: &str) {
    let r = sqlx::query(
        "INSERT INTO audit (actor, action, detail, client) VALUES ($1, 'login.failed', $2, $3)",
    )
    .bind(crate::domain::text::clip(name))
    .bind(Json(serde_json::json!({ "reason": why })))
    .bind(client)
    .execute(pool)
    .await;
    if let Err(e) = r {
        tracing::error!(error = %e, user = %name.escape_debug(), client, "audit row of a failed login not written");
    }
}

/// Failed logins within `window` from `client` and for `name`.
pub async fn recent_failures(
    pool: &PgPool,
    client: Option<&str>,
    name: &str,
    window: Duration,
) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE client = $1), count(*) FILTER (WHERE actor = $2)
         FROM audit
         WHERE action = 'login.failed' AND at > now() - make_interval(secs => $3)
           AND (client = $1 OR actor = $2)",
    )
    .bind(client)
    .bind(crate::domain::text::clip(name))
    .bind(window.as_secs_f64())
    .fetch_one(pool)
    .await
}

/// An audit row as the page and `GET /api/v1/audit` show it.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// Null on a failed login.
    pub role: Option<Role>,
    pub action: AuditAction,
    pub target: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Option<Json<Value>>,
    pub client: Option<String>,
}

/// Which rows, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn list(pool: &PgPool, f: &AuditFilter) -> Result<(Vec<AuditRow>, bool), sqlx::Error> {
    let mut rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT id, at, actor, role, action, target, detail, client FROM audit
         WHERE ($1::text IS NULL OR actor = $1)
           AND ($2::text IS NULL OR target = $2)
           AND ($3::int8 IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(&f.actor)
    .bind(&f.target)
    .bind(f.before)
    .bind(f.limit + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() as i64 > f.limit;
    rows.truncate(f.limit as usize);
    Ok((rows, more))
}

/// The latest actions on rules (pause, resume).
pub async fn of_rules(pool: &PgPool, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, at, actor, role, action, target, detail, client FROM audit
         WHERE action IN ('rule.pause', 'rule.resume') ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
