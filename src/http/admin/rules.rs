//! `GET /rules`, `POST /rules/{name}/pause`, `POST /rules/{name}/resume`: the circuit breaker
//! per rule (README "Circuit breaker").

use crate::admin::{Held, Resumed, RuleState};
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::operators::Actor;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Extension;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    /// The version of the rules in force (a digest of the mapping files, the same on every
    /// replica that loaded the same files); each decided event records the version that
    /// decided it (`rules_version`).
    pub version: String,
    pub rules: Vec<RuleState>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, quoted on the tickets of the launches it holds (at most 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// What happens to the launches held while the rule was paused.
    pub held: Held,
}

/// A JSON body; an empty one is `T::default()` when `empty` is given.
fn body<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    empty: Option<T>,
    shape: &str,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if let Some(v) = empty {
            return Ok(v);
        }
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("request body must be {shape}: {e}")))
}

/// Every loaded rule's breaker (paused or not, why, since when, failures in a row, held
/// launches), then other rules the database still knows.
#[utoipa::path(
    get,
    path = "/rules",
    tag = "admin",
    summary = "The circuit breaker of every rule",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Each rule's breaker", body = RuleList),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn list(State(app): State<AppState>) -> Result<Json<RuleList>, ApiError> {
    let rules = app.admin.rule_states().await?;
    let version = app.mappings.current().version().to_string();
    Ok(Json(RuleList { version, rules }))
}

/// Pauses the rule on every replica (a kill switch; any rule): its launches are held, never
/// sent, and each ticket is told once. Pausing a paused rule changes nothing.
#[utoipa::path(
    post,
    path = "/rules/{name}/pause",
    tag = "admin",
    summary = "Pause a rule",
    params(("name" = String, Path, description = "The rule's name")),
    request_body(content = Option<PauseRequest>, description = "Optional; `{}` or no body pauses without a reason"),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "The rule, paused", body = RuleState),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 400, description = "A bad body, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn pause(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Json<RuleState>, ApiError> {
    let req: PauseRequest = body(&bytes, Some(PauseRequest::default()), "{\"reason\": …}")?;
    Ok(Json(
        app.admin
            .pause_rule(&name, req.reason.as_deref(), &actor)
            .await?,
    ))
}

/// Lifts the pause and resets the failure count. `release` puts held launches back to
/// `planned` (oldest first, through storm control); `drop` settles them `dropped` and tells
/// each ticket.
#[utoipa::path(
    post,
    path = "/rules/{name}/resume",
    tag = "admin",
    summary = "Resume a paused rule, releasing or dropping its held launches",
    params(("name" = String, Path, description = "The rule's name")),
    request_body = ResumeRequest,
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "The rule, resumed, and what became of its held launches", body = Resumed),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 409, description = "The rule is not paused", body = ErrorBody),
        (status = 400, description = "A bad body, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn resume(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Json<Resumed>, ApiError> {
    let req: ResumeRequest = body(&bytes, None, "{\"held\": \"release\" | \"drop\"}")?;
    Ok(Json(app.admin.resume_rule(&name, req.held, &actor).await?))
}
