//! `GET /events`, `GET /events/{id}`, `POST /events/{id}/replay`.

use super::ApiQuery;
use crate::admin::query::EventQuery;
use crate::admin::uuid_param;
use crate::error::ApiError;
use crate::http::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// Events, newest first. `next_before` is the cursor for the next page (null on the last).
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<crate::admin::EventPage>, ApiError> {
    Ok(Json(app.admin.events(&query).await?))
}

/// One event with its headers, payload, decision, launches and callbacks.
pub async fn detail(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::store::admin::EventDetail>, ApiError> {
    let id = uuid_param("id", &id)?;
    Ok(Json(app.admin.event(id).await?))
}

/// Stores a copy of the event as a new pending event; the dispatcher treats it like a delivery.
pub async fn replay(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = uuid_param("id", &id)?;
    let r = app.admin.replay(id).await?;
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
