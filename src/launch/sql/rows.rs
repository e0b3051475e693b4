//! `launches`: the row, planning and tracking. The fenced launch attempt (claim, owner check,
//! settle) lives in `fence`. Every transition is a guarded UPDATE, so a row moves only from the
//! state the caller saw.

use crate::domain::{EventId, JobStatus, LaunchId, Reply, TemplateKind};
use crate::mapping::{EventView, OnIgnored};
use crate::postback::Target;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use crate::domain::LaunchState;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LaunchRow {
    pub id: LaunchId,
    pub event_id: EventId,
    pub rule: String,
    pub source: String,
    pub kind: crate::domain::SourceKind,
    pub ticket: Json<Value>,
    pub template_kind: TemplateKind,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub template_org: Option<String>,
    pub request: Json<Value>,
    pub reply: crate::domain::Reply,
    pub report_outcome: bool,
    pub state: LaunchState,
    /// The fencing token: bumped by every claim (the reconciler's too), named by every
    /// transition out of `launching`.
    pub attempts: i32,
    /// POSTs confirmed for sending; `workers.launch_max_attempts` caps relaunches by it.
    pub sends: i32,
    pub launching_at: Option<DateTime<Utc>>,
    /// Set by the owner check right before the POST; None: this attempt never sent anything.
    pub sent_at: Option<DateTime<Utc>>,
    pub first_empty_read_at: Option<DateTime<Utc>>,
    pub reconcile_errors: i32,
    /// The database's clock when the row was read (all lease and settle maths use it).
    pub db_now: DateTime<Utc>,
    pub job_id: Option<i64>,
    pub job_status: Option<JobStatus>,
    pub job_url: Option<String>,
    pub ignored_fields: Option<Json<Value>>,
    /// When the event arrived (for the dispatch latency metric).
    pub received_at: Option<DateTime<Utc>>,
}

impl LaunchRow {
    /// What its post-backs need.
    pub fn target(&self) -> Target<'_> {
        Target {
            launch_id: self.id,
            event_id: self.event_id,
            rule: &self.rule,
            source: &self.source,
            kind: self.kind,
            ticket: &self.ticket.0,
            reply: self.reply,
            report_outcome: self.report_outcome,
            template_kind: self.template_kind,
            template_name: self.template_name.as_deref(),
            template_id: self.template_id,
        }
    }
}

pub(in crate::launch) const COLUMNS: &str =
    "id, event_id, rule, source, kind, ticket, template_kind, \
    template_id, template_name, template_org, request, reply, report_outcome, state, attempts, sends, \
    launching_at, sent_at, first_empty_read_at, reconcile_errors, now() AS db_now, \
    job_id, job_status, job_url, ignored_fields, \
    (SELECT e.received_at FROM events e WHERE e.id = launches.event_id) AS received_at";

/// A launch as planned (`plan::planned_row`), before it is stored: the one shape both the
/// ingest batch and the dispatcher write. Source, kind and ticket are its event's.
#[derive(Debug, Clone)]
pub struct NewLaunch {
    pub id: LaunchId,
    pub rule: String,
    /// The configured name of the controller it goes to.
    pub controller: String,
    pub template_kind: TemplateKind,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub template_org: Option<String>,
    pub request: Value,
    pub reply: Reply,
    pub report_outcome: bool,
    pub max_concurrent: Option<i32>,
    pub on_ignored_fields: OnIgnored,
    pub coalesce_key: Option<String>,
    pub coalesced_into: Option<LaunchId>,
    /// `planned`, `coalesced`, `dry_run` or `rejected`.
    pub state: LaunchState,
}

/// The dispatcher's insert of one planned launch. False when the event already has a launch
/// for this rule (nothing was written).
pub async fn insert(
    conn: &mut PgConnection,
    e: &EventView,
    l: &NewLaunch,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "INSERT INTO launches (id, event_id, rule, source, kind, ticket, template_kind, template_id,
             template_name, template_org, request, reply, report_outcome, max_concurrent,
             coalesce_key, coalesced_into, state, on_ignored_fields, controller)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)
         ON CONFLICT (event_id, rule) DO NOTHING",
    )
    .bind(l.id)
    .bind(EventId(e.id))
    .bind(&l.rule)
    .bind(&e.source)
    .bind(e.kind)
    .bind(Json(&e.ticket))
    .bind(l.template_kind)
    .bind(l.template_id)
    .bind(&l.template_name)
    .bind(&l.template_org)
    .bind(Json(&l.request))
    .bind(l.reply)
    .bind(l.report_outcome)
    .bind(l.max_concurrent)
    .bind(&l.coalesce_key)
    .bind(l.coalesced_into)
    .bind(l.state)
    .bind(l.on_ignored_fields.as_str())
    .bind(&l.controller)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Records why the bridge refused a launch it just planned `rejected`.
pub async fn refused(
    conn: &mut PgConnection,
    id: LaunchId,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let set =
        sqlx::query("UPDATE launches SET last_error = $2 WHERE id = $1 AND state = 'rejected'")
            .bind(id)
            .bind(reason)
            .execute(conn)
            .await?;
    Ok(set.rows_affected() == 1)
}

/// Locks the coalescing keys of a dispatch batch until its transaction ends, all in one
/// statement and in one global order (sorted lock ids), so two replicas never deadlock.
pub async fn lock_coalesce_keys(
    conn: &mut PgConnection,
    keys: &[String],
) -> Result<(), sqlx::Error> {
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(k) FROM (
             SELECT DISTINCT hashtextextended('aap-bridge:coalesce:' || key, 0) AS k
             FROM unnest($1::text[]) AS key ORDER BY k) AS sorted",
    )
    .bind(keys)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The launch a new one with this key should attach to, if one was planned within the window.
/// The caller holds the key's lock (`lock_coalesce_keys`).
pub async fn coalesce_target(
    conn: &mut PgConnection,
    key: &str,
    window_secs: i64,
) -> Result<Option<LaunchId>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM launches
         WHERE coalesce_key = $1 AND coalesced_into IS NULL
           AND state NOT IN ('rejected', 'coalesced', 'dropped')
           AND created_at >= now() - make_interval(secs => $2)
         ORDER BY created_at LIMIT 1",
    )
    .bind(key)
    .bind(window_secs as f64)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Tracked {
    pub id: LaunchId,
    pub job_id: i64,
    pub job_status: Option<JobStatus>,
    pub missing_polls: i32,
}

pub async fn launched(
    pool: &PgPool,
    limit: i64,
    controller: &str,
) -> Result<Vec<Tracked>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, job_id, job_status, missing_polls FROM launches
         WHERE state = 'launched' AND job_id IS NOT NULL AND controller = $2
         ORDER BY launched_at LIMIT $1",
    )
    .bind(limit)
    .bind(controller)
    .fetch_all(pool)
    .await
}

pub async fn get(conn: &mut PgConnection, id: LaunchId) -> Result<LaunchRow, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM launches WHERE id = $1"))
        .bind(id)
        .fetch_one(conn)
        .await
}

pub struct Progress {
    pub status: JobStatus,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub elapsed: Option<f64>,
    pub terminal: bool,
}

/// Records a status change; a terminal status moves the row to `finished`. False if not `launched`.
pub async fn progress(
    conn: &mut PgConnection,
    id: LaunchId,
    p: &Progress,
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

/// Status changes short of the end (`pending` → `running`, say) for many launched rows in one
/// statement: (launch id, status, started).
pub async fn progress_many(
    pool: &PgPool,
    rows: &[(LaunchId, JobStatus, Option<DateTime<Utc>>)],
) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0 .0).collect();
    let statuses: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let started: Vec<Option<DateTime<Utc>>> = rows.iter().map(|r| r.2).collect();
    sqlx::query(
        "UPDATE launches l SET job_status = p.status,
             started_at = COALESCE(l.started_at, p.started), finished_at = NULL,
             elapsed_secs = NULL, updated_at = now()
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS p(id, status, started)
         WHERE l.id = p.id AND l.state = 'launched'",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&started)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// Counts one more poll without the job (or resets the count); returns the new count.
pub async fn set_missing(pool: &PgPool, id: LaunchId, missing: bool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE launches SET missing_polls = CASE WHEN $2 THEN missing_polls + 1 ELSE 0 END
         WHERE id = $1 RETURNING missing_polls",
    )
    .bind(id)
    .bind(missing)
    .fetch_one(pool)
    .await
}

/// The facts about one open launch that decide why it waits (`wait::why`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenLaunch {
    pub id: LaunchId,
    pub state: LaunchState,
    /// The controller it goes to.
    pub controller: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub launching_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    pub owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub held_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub max_concurrent: Option<i32>,
    /// Launches of the same rule `launching` or `launched`.
    pub running: i64,
    pub paused_at: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    /// Awaiting approval until then.
    pub approval_expires_at: Option<DateTime<Utc>>,
    pub db_now: DateTime<Utc>,
}

/// The open launches of some events (one event's page, a page of the events list), with what
/// decides why each waits.
pub async fn open_of_events(
    pool: &PgPool,
    events: &[EventId],
) -> Result<Vec<OpenLaunch>, sqlx::Error> {
    sqlx::query_as(
        "SELECT l.id, l.state, l.controller, l.created_at, l.next_attempt_at, l.launching_at, l.sent_at,
                l.owner, l.lease_until, l.held_at, l.last_error, l.max_concurrent,
                (SELECT count(*) FROM launches r WHERE r.rule = l.rule
                   AND r.state IN ('launching', 'launched')) AS running,
                p.paused_at, p.reason AS pause_reason, l.approval_expires_at, now() AS db_now
         FROM launches l LEFT JOIN rule_pauses p ON p.rule = l.rule AND p.paused_at IS NOT NULL
         WHERE l.event_id = ANY($1)
           AND l.state IN ('planned', 'launching', 'held', 'awaiting_approval')",
    )
    .bind(events)
    .fetch_all(pool)
    .await
}
