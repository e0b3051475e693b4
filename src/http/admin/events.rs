//! `GET /events`, `GET /events/{id}`, `POST /events/{id}/replay`.

use super::query::Query;
use super::{db_error, uuid_param};
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::admin::{self as store, EventFilter};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// Events, newest first. `next_before` is the cursor for the next page (null on the last).
pub async fn list(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(
        raw.as_deref(),
        &[
            "source",
            "state",
            "category",
            "event_type",
            "since",
            "until",
            "limit",
            "before",
        ],
    )?;
    let filter = EventFilter {
        source: q.text("source"),
        state: q.word("state")?,
        category: q.text("category"),
        event_type: q.text("event_type"),
        since: q.time("since")?,
        until: q.time("until")?,
        before: q.uuid("before")?,
        limit: q.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?,
    };
    let (events, next) = store::list_events(&app.admin_pool, &filter)
        .await
        .map_err(db_error)?;
    Ok(Json(json!({"events": events, "next_before": next})))
}

/// One event with its headers, payload, decision, launches and callbacks.
pub async fn detail(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid_param("id", &id)?;
    let event = store::event_detail(&app.admin_pool, id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    Ok(Json(json!(event)))
}

/// Stores a copy of the event as a new pending event; the dispatcher treats it like a delivery.
pub async fn replay(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = uuid_param("id", &id)?;
    let r = store::replay(&app.admin_pool, id)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    tracing::info!(event_id = %r.event_id, replay_of = %id, delivery_id = %r.delivery_id, "event replayed");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "event_id": r.event_id,
            "status": "accepted",
            "replay_of": id,
            "delivery_id": r.delivery_id,
        })),
    ))
}
