//! `GET /callbacks`, `POST /callbacks/{id}/retry`.

use super::query::Query;
use super::{db_error, uuid_param};
use crate::error::ApiError;
use crate::http::AppState;
use crate::store::admin::{self as store, Retry};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// Post-backs, newest first, optionally in one state (`?state=dead` for the dead letters).
pub async fn list(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = Query::parse(raw.as_deref(), &["state", "limit"])?;
    let state = q.word::<crate::store::callbacks::CallbackState>("state")?;
    let limit = q.limit(
        "limit",
        super::events::DEFAULT_LIMIT,
        super::events::MAX_LIMIT,
    )?;
    let callbacks = store::list_callbacks(&app.admin_pool, state, limit)
        .await
        .map_err(db_error)?;
    Ok(Json(json!({"callbacks": callbacks})))
}

/// A dead post-back goes back to the outbox, due now, attempts reset.
pub async fn retry(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid_param("id", &id)?;
    match store::retry_callback(&app.admin_pool, id)
        .await
        .map_err(db_error)?
    {
        Retry::Queued(cb) => {
            tracing::info!(callback_id = %id, "dead callback queued again");
            Ok(Json(json!(cb)))
        }
        Retry::NotDead(state) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("callback is {state}, only dead callbacks can be retried"),
        )),
        Retry::NotFound => Err(ApiError::not_found(format!("no callback {id}"))),
    }
}
