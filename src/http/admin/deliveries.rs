//! `GET /deliveries`: every request to `/hooks`, refused ones included.

use super::ApiQuery;
use crate::admin::query::DeliveryQuery;
use crate::admin::DeliveryPage;
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use axum::extract::State;
use axum::Json;

/// The deliveries log, newest first: time, source, client, delivery id, status, outcome, reason
/// and size. Bodies are never kept.
#[utoipa::path(
    get,
    path = "/deliveries",
    tag = "admin",
    summary = "List requests to /hooks, newest first",
    params(DeliveryQuery),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    Ok(Json(app.admin.deliveries(&query).await?))
}
