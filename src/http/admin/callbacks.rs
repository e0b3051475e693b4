//! `GET /callbacks`, `POST /callbacks/{id}/retry`.

use super::ApiQuery;
use crate::admin::query::CallbackQuery;
use crate::admin::uuid_param;
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::admin::CallbackView;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

/// Post-backs, newest first, optionally in one state (`?state=dead` for the dead letters).
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Result<Json<Value>, ApiError> {
    let callbacks = app.admin.callbacks(&query).await?;
    Ok(Json(json!({ "callbacks": callbacks })))
}

/// A dead post-back goes back to the outbox, due now, attempts reset.
pub async fn retry(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CallbackView>, ApiError> {
    let id = uuid_param("id", &id)?;
    Ok(Json(app.admin.retry_callback(id).await?))
}
