//! `GET /callbacks`, `POST /callbacks/{id}/retry`.

use super::ApiQuery;
use crate::admin::query::CallbackQuery;
use crate::admin::uuid_param;
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::operators::Actor;
use crate::store::admin::CallbackView;
use axum::extract::{Path, State};
use axum::Extension;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackList {
    pub callbacks: Vec<CallbackView>,
}

/// Post-backs, newest first, optionally in one state (`?state=dead` for the dead letters).
#[utoipa::path(
    get,
    path = "/callbacks",
    tag = "admin",
    summary = "List post-backs, newest first",
    params(CallbackQuery),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Post-backs", body = CallbackList),
        (status = 400, description = "A bad parameter or id, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Result<Json<CallbackList>, ApiError> {
    let callbacks = app.admin.callbacks(&query).await?;
    Ok(Json(CallbackList { callbacks }))
}

/// A dead post-back goes back to the outbox, due now, attempts reset.
#[utoipa::path(
    post,
    path = "/callbacks/{id}/retry",
    tag = "admin",
    summary = "Retry a dead post-back",
    params(("id" = uuid::Uuid, Path, description = "The post-back id")),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Queued again, due now", body = CallbackView),
        (status = 404, description = "No such post-back", body = ErrorBody),
        (status = 409, description = "The post-back is not dead", body = ErrorBody),
        (status = 400, description = "A bad parameter or id, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn retry(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<CallbackView>, ApiError> {
    let id = uuid_param("id", &id)?;
    Ok(Json(app.admin.retry_callback(id, &actor).await?))
}
