//! `POST /catch-up/{source}`: one catch-up pass now.

use super::ApiQuery;
use crate::admin::query::CatchUpQuery;
use crate::catch_up::Summary;
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::operators::Actor;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;

/// Runs one pass for the source now (after any pass still running) and answers what it did.
#[utoipa::path(
    post,
    path = "/catch-up/{source}",
    tag = "admin",
    summary = "Run one catch-up pass now",
    params(
        ("source" = String, Path, description = "A source with `catch_up:` configured"),
        CatchUpQuery
    ),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "The pass ran: what it found and did", body = Summary),
        (status = 502, description = "The pass failed part-way (`error`); what it did before", body = Summary),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 404, description = "Unknown source, or no catch_up: configured for it", body = ErrorBody),
        (status = 409, description = "Another pass for the source was still running after 30 s", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn run(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(source): Path<String>,
    ApiQuery(query): ApiQuery<CatchUpQuery>,
) -> Result<(StatusCode, Json<Summary>), ApiError> {
    let summary = app.admin.catch_up(&source, query.since, &actor).await?;
    let status = match summary.error {
        Some(_) => StatusCode::BAD_GATEWAY,
        None => StatusCode::OK,
    };
    Ok((status, Json(summary)))
}
