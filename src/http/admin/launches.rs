//! An operator approves or denies a launch awaiting approval.

use crate::admin::uuid_param;
use crate::approval::Verb;
use crate::domain::LaunchState;
use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use crate::operators::Actor;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Decided {
    pub launch_id: uuid::Uuid,
    /// `planned` (approved: the launcher sends it) or `denied`.
    pub state: LaunchState,
}

/// Approves a launch awaiting approval: it goes to the launcher like any planned launch.
#[utoipa::path(
    post,
    path = "/launches/{id}/approve",
    tag = "admin",
    summary = "Approve a launch awaiting approval",
    params(("id" = uuid::Uuid, Path, description = "The launch")),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Approved; recorded with the caller's name", body = Decided),
        (status = 404, description = "No such launch", body = ErrorBody),
        (status = 409, description = "The launch is not awaiting approval (already decided)", body = ErrorBody),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn approve(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Decided>, ApiError> {
    decide(app, actor, id, Verb::Approve).await
}

/// Denies a launch awaiting approval: it never runs, and the ticket is told.
#[utoipa::path(
    post,
    path = "/launches/{id}/deny",
    tag = "admin",
    summary = "Deny a launch awaiting approval",
    params(("id" = uuid::Uuid, Path, description = "The launch")),
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Denied; recorded with the caller's name", body = Decided),
        (status = 404, description = "No such launch", body = ErrorBody),
        (status = 409, description = "The launch is not awaiting approval (already decided)", body = ErrorBody),
        (status = 400, description = "A bad id", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn deny(
    State(app): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<Decided>, ApiError> {
    decide(app, actor, id, Verb::Deny).await
}

async fn decide(
    app: AppState,
    actor: Actor,
    id: String,
    verb: Verb,
) -> Result<Json<Decided>, ApiError> {
    let id = uuid_param("id", &id)?;
    let state = app.admin.decide_launch(id, verb, &actor).await?;
    Ok(Json(Decided {
        launch_id: id,
        state,
    }))
}
