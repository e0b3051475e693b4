//! `GET /audit`: who did what, when and from where.

use super::ApiQuery;
use crate::admin::query::AuditQuery;
use crate::admin::AuditPage;
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use axum::extract::State;
use axum::Json;

/// The audit trail, newest first: logins (failed ones too), pauses, resumes, replays, retries
/// and catch-up passes, each with its actor, role and client address.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "admin",
    summary = "List operator actions, newest first",
    params(AuditQuery),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "A page of the audit trail", body = AuditPage),
        (status = 400, description = "A bad parameter, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn list(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(app.admin.audit(&query).await?))
}
