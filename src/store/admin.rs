//! Read and repair queries for the admin API and the `events` / `replay` commands.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use super::events::{Arrival, EventState};
use crate::domain::CallbackState;
use crate::domain::LaunchState;

/// One event as listed: no payload, headers or decision.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EventSummary {
    pub id: Uuid,
    pub source: String,
    pub kind: String,
    pub delivery_id: String,
    pub event_type: String,
    pub category: Option<String>,
    pub state: EventState,
    pub state_reason: Option<String>,
    pub received_at: DateTime<Utc>,
    /// The ticket fields of the normalized event (see README).
    #[schema(value_type = Object)]
    pub ticket: Json<Value>,
    /// The event this one is a replay of.
    pub replay_of: Option<Uuid>,
    /// `delivered` by the sender, `redelivered` (a GitHub redelivery a catch-up pass asked
    /// for) or `caught_up` (read from the ServiceNow Table API by a catch-up pass).
    pub arrival: Arrival,
    /// Did it run? Each launch's state, why an open one waits, and its job (list only; the
    /// event's own page has the full launches).
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launches: Option<Vec<LaunchBrief>>,
}

/// A launch as the events list shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LaunchBrief {
    pub id: Uuid,
    #[serde(skip)]
    pub event_id: Uuid,
    pub rule: String,
    /// The configured name of the controller it goes to.
    pub controller: String,
    pub state: LaunchState,
    pub job_id: Option<i64>,
    pub job_status: Option<String>,
    pub job_url: Option<String>,
    /// Why an open launch waits; null for the others.
    #[sqlx(skip)]
    pub waiting: Option<crate::launch::wait::Waiting>,
}

/// The launches of these events, oldest first.
pub async fn launches_of(pool: &PgPool, events: &[Uuid]) -> Result<Vec<LaunchBrief>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT id, event_id, rule, controller, state, job_id, job_status, job_url FROM launches
         WHERE event_id = ANY($1) ORDER BY created_at, id",
    )
    .bind(events)
    .fetch_all(pool)
    .await
}

pub(super) const SUMMARY: &str =
    "id, source, kind, delivery_id, event_type, category, state, state_reason, \
    received_at, ticket, replay_of, arrival";

/// One event with everything the bridge recorded about it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub summary: EventSummary,
    #[schema(value_type = Object)]
    pub headers: Value,
    /// The JSON document as sent.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// What the rules made of it (null while pending or when ignored).
    #[schema(value_type = Option<Object>)]
    pub decision: Value,
    /// The rules that decided it (`GET /api/v1/rules` shows the version in force); null while
    /// pending or when ignored.
    pub rules_version: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub launches: Vec<LaunchView>,
    pub callbacks: Vec<CallbackView>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LaunchView {
    pub id: Uuid,
    pub rule: String,
    /// The configured name of the controller it goes to (`default` with one controller).
    pub controller: String,
    pub state: LaunchState,
    pub template_kind: crate::domain::TemplateKind,
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    pub template_org: Option<String>,
    /// The launch body sent (or, in dry-run, that would have been sent) to the controller.
    #[schema(value_type = Object)]
    pub request: Json<Value>,
    pub job_id: Option<i64>,
    pub job_status: Option<String>,
    pub job_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub ignored_fields: Option<Json<Value>>,
    /// Claims so far (the fencing token; the reconciler's reads count too).
    pub attempts: i32,
    /// POSTs confirmed for sending.
    pub sends: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub launched_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub elapsed_secs: Option<f64>,
    pub coalesced_into: Option<Uuid>,
    /// When it was held because its rule was paused (kept after a release).
    pub held_at: Option<DateTime<Utc>>,
    /// Its rule needs approval: the request stands until then.
    pub approval_expires_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub denied_by: Option<String>,
    /// Why an open launch (`planned`, `launching`, `held`, `awaiting_approval`) waits; null for
    /// the others.
    #[sqlx(skip)]
    pub waiting: Option<crate::launch::wait::Waiting>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CallbackView {
    pub id: Uuid,
    pub launch_id: Uuid,
    pub event_id: Uuid,
    pub source: String,
    pub phase: crate::domain::Phase,
    pub state: CallbackState,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// What is posted to the ticket system.
    #[schema(value_type = Object)]
    pub request: Json<Value>,
    /// The ticket's number (ServiceNow `INC…`, GitHub issue, PagerDuty incident), for the list.
    pub ticket: Option<String>,
}

pub(super) const CALLBACK: &str =
    "id, launch_id, event_id, source, phase, state, attempts, next_attempt_at, \
    last_status, last_error, created_at, sent_at, request, \
    (SELECT e.ticket ->> 'number' FROM events e WHERE e.id = callbacks.event_id) AS ticket";

/// Every dead letter back to the outbox, due now, attempts reset; how many.
pub async fn retry_dead(pool: &PgPool) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE callbacks SET state = 'pending', attempts = 0, next_attempt_at = now(),
             lease_until = NULL
         WHERE state = 'dead'",
    )
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

#[derive(sqlx::FromRow)]
struct DetailRow {
    #[sqlx(flatten)]
    summary: EventSummary,
    headers: Json<Value>,
    payload: Json<Value>,
    decision: Option<Json<Value>>,
    rules_version: Option<String>,
    updated_at: DateTime<Utc>,
}

/// The event with its launches and callbacks; None if there is no such event.
pub async fn event_detail(pool: &PgPool, id: Uuid) -> Result<Option<EventDetail>, sqlx::Error> {
    let row: Option<DetailRow> = sqlx::query_as(&format!(
        "SELECT {SUMMARY}, headers, payload, decision, rules_version, updated_at
         FROM events WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let launches: Vec<LaunchView> = sqlx::query_as(
        "SELECT id, rule, controller, state, template_kind, template_id, template_name,
                template_org, request, job_id, job_status, job_url, ignored_fields, attempts, sends, last_error, created_at,
                launched_at, started_at, finished_at, elapsed_secs, coalesced_into, held_at,
                approval_expires_at, approved_by, approved_at, denied_by
         FROM launches WHERE event_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let callbacks: Vec<CallbackView> = sqlx::query_as(&format!(
        "SELECT {CALLBACK} FROM callbacks WHERE event_id = $1 ORDER BY created_at, id"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(Some(EventDetail {
        summary: row.summary,
        headers: row.headers.0,
        payload: row.payload.0,
        decision: row.decision.map(|d| d.0).unwrap_or(Value::Null),
        rules_version: row.rules_version,
        updated_at: row.updated_at,
        launches,
        callbacks,
    }))
}

/// A replay that was stored.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub event_id: Uuid,
    pub replay_of: Uuid,
    pub delivery_id: String,
    /// The form was submitted before: this is the copy it made then, and nothing new was stored.
    #[serde(skip)]
    pub again: bool,
}

/// Copies an event into a new pending row (`<delivery_id>#replay-<n>`); the dispatcher then
/// treats it like any delivery. None if there is no such event. `once` (the console form's
/// single-use key) makes a second submission of the same form find the first copy instead of
/// storing another: it is the copy's dedupe key, under the same unique index as deliveries.
pub async fn replay(
    pool: &PgPool,
    id: Uuid,
    once: Option<&str>,
) -> Result<Option<Replayed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Locking the original serializes concurrent replays of it, so each gets its own number.
    let original: Option<String> =
        sqlx::query_scalar("SELECT delivery_id FROM events WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(delivery) = original else {
        return Ok(None);
    };
    let earlier: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE replay_of = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    // Deliberate copies skip the dedupe table; the delivery id is information only.
    let new_id = Uuid::now_v7();
    let delivery_id = format!("{delivery}#replay-{}", earlier + 1);
    let key = once.map(|k| format!("replay:{k}"));
    let stored = sqlx::query(
        "INSERT INTO events (id, source, kind, delivery_id, event_type, category, ticket,
                             headers, payload, state, replay_of, dedupe_key)
         SELECT $1, source, kind, $2, event_type, category, ticket, headers, payload,
                'pending', id, $4
         FROM events WHERE id = $3
         ON CONFLICT (source, dedupe_key) DO NOTHING",
    )
    .bind(new_id)
    .bind(&delivery_id)
    .bind(id)
    .bind(&key)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if stored == 0 {
        // The same form again: the copy it made the first time.
        let first: Option<(Uuid, String)> = sqlx::query_as(
            "SELECT c.id, c.delivery_id FROM events c JOIN events o ON o.source = c.source
             WHERE o.id = $1 AND c.dedupe_key = $2",
        )
        .bind(id)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(first.map(|(event_id, delivery_id)| Replayed {
            event_id,
            replay_of: id,
            delivery_id,
            again: true,
        }));
    }
    tx.commit().await?;
    Ok(Some(Replayed {
        event_id: new_id,
        replay_of: id,
        delivery_id,
        again: false,
    }))
}

/// Callbacks, newest first, optionally in one state.
pub async fn list_callbacks(
    pool: &PgPool,
    state: Option<CallbackState>,
    limit: i64,
) -> Result<Vec<CallbackView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CALLBACK} FROM callbacks WHERE ($1::text IS NULL OR state = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(state)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub enum Retry {
    Queued(CallbackView),
    /// Not dead: its current state.
    NotDead(String),
    NotFound,
}

/// A dead callback goes back to `pending`, due now, with its attempts reset.
pub async fn retry_callback(pool: &PgPool, id: Uuid) -> Result<Retry, sqlx::Error> {
    let row: Option<CallbackView> = sqlx::query_as(&format!(
        "UPDATE callbacks SET state = 'pending', attempts = 0, next_attempt_at = now(),
             lease_until = NULL
         WHERE id = $1 AND state = 'dead' RETURNING {CALLBACK}"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = row {
        return Ok(Retry::Queued(row));
    }
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM callbacks WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(state.map_or(Retry::NotFound, Retry::NotDead))
}
