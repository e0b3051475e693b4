//! `GET /events`, `GET /events/{id}`, `POST /events/{id}/replay`.

use super::ApiQuery;
use crate::admin::query::EventQuery;
use crate::admin::uuid_param;
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::operators::Actor;
use crate::store::admin::EventDetail;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Events, newest first. `next_before` is the cursor for the next page (null on the last).
#[utoipa::path(
    get,
    path = "/events",
    tag = "admin",
    summary = "List events, newest first",
    params(EventQuery),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "A page of events (no payloads)", body = crate::admin::EventPage),
        (status = 400, description = "A bad parameter or id, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<EventQuery>,
) -> Result<Json<crate::admin::EventPage>, ApiError> {
    Ok(Json(app.admin.events(&query).await?))
}

/// One event with its headers, payload, decision, launches and callbacks.
#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "admin",
    summary = "One event in full",
    params(("id" = uuid::Uuid, Path, description = "The event id")),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "The event with its launches and post-backs", body = EventDetail),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 400, description = "A bad parameter or id, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn detail(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventDetail>, ApiError> {
    let id = uuid_param("id", &id)?;
    Ok(Json(app.admin.event(id).await?))
}

/// The answer to a replay.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayAnswer {
    /// The new event.
    pub event_id: Uuid,
    /// Always `accepted`.
    pub status: &'static str,
    pub replay_of: Uuid,
    /// `<original delivery id>#replay-<n>`.
    pub delivery_id: String,
}

/// Stores a copy of the event as a new pending event; the dispatcher treats it like a delivery.
#[utoipa::path(
    post,
    path = "/events/{id}/replay",
    tag = "admin",
    summary = "Replay an event",
    params(("id" = uuid::Uuid, Path, description = "The event to copy")),
    security(("adminBearer" = [])),
    responses(
        (status = 202, description = "Stored as a new pending event", body = ReplayAnswer),
        (status = 404, description = "No such event", body = ErrorBody),
        (status = 400, description = "A bad parameter or id, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn replay(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ReplayAnswer>), ApiError> {
    let id = uuid_param("id", &id)?;
    let r = app.admin.replay(id, &actor).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayAnswer {
            event_id: r.event_id,
            status: "accepted",
            replay_of: id,
            delivery_id: r.delivery_id,
        }),
    ))
}
