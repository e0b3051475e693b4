//! `launches`: the launch state machine. Every transition is a guarded UPDATE, so a row moves
//! only from the state the caller saw.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LaunchRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub rule: String,
    pub source: String,
    pub kind: String,
    pub ticket: Json<Value>,
    pub template_kind: String,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub template_org: Option<String>,
    pub request: Json<Value>,
    pub reply: String,
    pub report_outcome: bool,
    pub state: String,
    pub attempts: i32,
    pub launching_at: Option<DateTime<Utc>>,
    pub job_id: Option<i64>,
    pub job_status: Option<String>,
    pub job_url: Option<String>,
    pub ignored_fields: Option<Json<Value>>,
    /// When the event arrived (for the dispatch latency metric).
    pub received_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, event_id, rule, source, kind, ticket, template_kind, template_id, \
    template_name, template_org, request, reply, report_outcome, state, attempts, launching_at, \
    job_id, job_status, job_url, ignored_fields, \
    (SELECT e.received_at FROM events e WHERE e.id = launches.event_id) AS received_at";

pub struct NewLaunch<'a> {
    pub id: Uuid,
    pub event_id: Uuid,
    pub rule: &'a str,
    pub source: &'a str,
    pub kind: &'a str,
    pub ticket: &'a Value,
    pub template_kind: &'a str,
    pub template_id: Option<i64>,
    pub template_name: Option<&'a str>,
    pub template_org: Option<&'a str>,
    pub request: &'a Value,
    pub reply: &'a str,
    pub report_outcome: bool,
    pub max_concurrent: Option<i32>,
    pub coalesce_key: Option<&'a str>,
    pub coalesced_into: Option<Uuid>,
    /// `planned`, `coalesced` or `dry_run`.
    pub state: &'a str,
}

pub async fn insert(conn: &mut PgConnection, l: &NewLaunch<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO launches (id, event_id, rule, source, kind, ticket, template_kind, template_id,
             template_name, template_org, request, reply, report_outcome, max_concurrent,
             coalesce_key, coalesced_into, state)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)
         ON CONFLICT (event_id, rule) DO NOTHING",
    )
    .bind(l.id)
    .bind(l.event_id)
    .bind(l.rule)
    .bind(l.source)
    .bind(l.kind)
    .bind(Json(l.ticket))
    .bind(l.template_kind)
    .bind(l.template_id)
    .bind(l.template_name)
    .bind(l.template_org)
    .bind(Json(l.request))
    .bind(l.reply)
    .bind(l.report_outcome)
    .bind(l.max_concurrent)
    .bind(l.coalesce_key)
    .bind(l.coalesced_into)
    .bind(l.state)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The launch a new one with this key should attach to, if one was planned within the window.
pub async fn coalesce_target(
    conn: &mut PgConnection,
    key: &str,
    window_secs: i64,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aap-bridge:coalesce:' || $1, 0))")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "SELECT id FROM launches
         WHERE coalesce_key = $1 AND coalesced_into IS NULL AND state NOT IN ('rejected', 'coalesced')
           AND created_at >= now() - make_interval(secs => $2)
         ORDER BY created_at LIMIT 1",
    )
    .bind(key)
    .bind(window_secs as f64)
    .fetch_optional(conn)
    .await
}

/// Claims planned launches that are due, honouring each rule's cap on active jobs, and marks
/// them `launching` with a lease. Committed before any POST (the no-duplicate protocol).
pub async fn claim_planned(
    pool: &PgPool,
    limit: i64,
    lease_secs: u64,
) -> Result<Vec<LaunchRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let candidates: Vec<(Uuid, String, Option<i32>)> = sqlx::query_as(
        "SELECT id, rule, max_concurrent FROM launches
         WHERE state = 'planned' AND next_attempt_at <= now()
         ORDER BY next_attempt_at, created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut claimed = Vec::new();
    let mut active: std::collections::HashMap<String, i64> = Default::default();
    for (id, rule, cap) in candidates {
        if let Some(cap) = cap {
            if !active.contains_key(&rule) {
                // Serializes the count per rule across replicas until this transaction ends.
                sqlx::query(
                    "SELECT pg_advisory_xact_lock(hashtextextended('aap-bridge:rule:' || $1, 0))",
                )
                .bind(&rule)
                .execute(&mut *tx)
                .await?;
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM launches WHERE rule = $1 AND state IN ('launching', 'launched')",
                )
                .bind(&rule)
                .fetch_one(&mut *tx)
                .await?;
                active.insert(rule.clone(), n);
            }
            let n = active.get_mut(&rule).expect("inserted above");
            if *n >= cap as i64 {
                continue; // waits; nothing is dropped
            }
            *n += 1;
        }
        claimed.push(id);
    }
    let rows: Vec<LaunchRow> = sqlx::query_as(&format!(
        "UPDATE launches SET state = 'launching', attempts = attempts + 1, launching_at = now(),
             lease_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id = ANY($1) RETURNING {COLUMNS}"
    ))
    .bind(&claimed)
    .bind(lease_secs as f64)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows)
}

/// `launching` rows whose lease ran out: the process that owned them died or gave up.
pub async fn claim_stale(
    pool: &PgPool,
    limit: i64,
    lease_secs: u64,
) -> Result<Vec<LaunchRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE launches SET lease_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id IN (SELECT id FROM launches WHERE state = 'launching' AND lease_until < now()
                      ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(limit)
    .bind(lease_secs as f64)
    .fetch_all(pool)
    .await
}

pub async fn set_template_id(pool: &PgPool, id: Uuid, template_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE launches SET template_id = $2 WHERE id = $1")
        .bind(id)
        .bind(template_id)
        .execute(pool)
        .await
        .map(|_| ())
}

pub struct Started<'a> {
    pub job_id: i64,
    pub status: &'a str,
    pub url: &'a str,
    pub ignored_fields: Option<&'a Value>,
}

/// `launching` -> `launched`. False if the row was no longer `launching` (someone else settled it).
pub async fn mark_launched(
    conn: &mut PgConnection,
    id: Uuid,
    s: &Started<'_>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET state = 'launched', job_id = $2, job_status = $3, job_url = $4,
             ignored_fields = $5, launched_at = now(), lease_until = NULL, last_error = NULL,
             updated_at = now()
         WHERE id = $1 AND state = 'launching'",
    )
    .bind(id)
    .bind(s.job_id)
    .bind(s.status)
    .bind(s.url)
    .bind(s.ignored_fields.map(Json))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// `launching` -> `planned` again, after `delay_ms` (nothing reached the controller).
pub async fn retry_later(
    pool: &PgPool,
    id: Uuid,
    error: &str,
    delay_ms: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE launches SET state = 'planned', last_error = $2, lease_until = NULL,
             next_attempt_at = now() + make_interval(secs => $3), updated_at = now()
         WHERE id = $1 AND state = 'launching'",
    )
    .bind(id)
    .bind(error)
    .bind(delay_ms as f64 / 1000.0)
    .execute(pool)
    .await
    .map(|_| ())
}

/// The POST may have reached the controller: leave `launching` and let reconciliation decide soon.
pub async fn reconcile_soon(
    pool: &PgPool,
    id: Uuid,
    error: &str,
    after_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE launches SET last_error = $2, lease_until = now() + make_interval(secs => $3),
             updated_at = now()
         WHERE id = $1 AND state = 'launching'",
    )
    .bind(id)
    .bind(error)
    .bind(after_secs as f64)
    .execute(pool)
    .await
    .map(|_| ())
}

/// `launching` -> `rejected` or `unknown`, with the reason. False if no longer `launching`.
pub async fn settle<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    id: Uuid,
    state: &str,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET state = $2, last_error = $3, lease_until = NULL, updated_at = now()
         WHERE id = $1 AND state = 'launching'",
    )
    .bind(id)
    .bind(state)
    .bind(error)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Tracked {
    pub id: Uuid,
    pub job_id: i64,
    pub job_status: Option<String>,
    pub missing_polls: i32,
}

pub async fn launched(pool: &PgPool, limit: i64) -> Result<Vec<Tracked>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, job_id, job_status, missing_polls FROM launches
         WHERE state = 'launched' AND job_id IS NOT NULL ORDER BY launched_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<LaunchRow, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM launches WHERE id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await
}

pub struct Progress<'a> {
    pub status: &'a str,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub elapsed: Option<f64>,
    pub terminal: bool,
}

/// Records a status change; a terminal status moves the row to `finished`. False if not `launched`.
pub async fn progress(
    conn: &mut PgConnection,
    id: Uuid,
    p: &Progress<'_>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET job_status = $2, started_at = COALESCE(started_at, $3),
             finished_at = $4, elapsed_secs = $5,
             state = CASE WHEN $6 THEN 'finished' ELSE state END, updated_at = now()
         WHERE id = $1 AND state = 'launched'",
    )
    .bind(id)
    .bind(p.status)
    .bind(p.started)
    .bind(p.finished)
    .bind(p.elapsed)
    .bind(p.terminal)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Counts one more poll without the job (or resets the count); returns the new count.
pub async fn set_missing(pool: &PgPool, id: Uuid, missing: bool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE launches SET missing_polls = CASE WHEN $2 THEN missing_polls + 1 ELSE 0 END
         WHERE id = $1 RETURNING missing_polls",
    )
    .bind(id)
    .bind(missing)
    .fetch_one(pool)
    .await
}
