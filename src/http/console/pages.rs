//! Overview and dead letters.

use super::session::Session;
use super::{redirect, view, PageError};
use crate::admin::query::CallbackQuery;
use crate::admin::uuid_param;
use crate::domain::CallbackState;
use crate::http::AppState;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use minijinja::context;
use serde::Deserialize;

/// How many dead letters the page lists.
const DEAD_PAGE: i64 = 200;

pub async fn overview(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let overview = app
        .admin
        .overview()
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(view::page(
        "overview.html",
        context! { nav => "overview", csrf => session.csrf, o => overview },
    ))
}

#[derive(Deserialize)]
pub struct DeadQuery {
    /// Set after a retry, to say so.
    retried: Option<String>,
}

pub async fn dead(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<DeadQuery>,
) -> Result<Response, PageError> {
    let query = CallbackQuery {
        state: Some(CallbackState::Dead),
        limit: Some(DEAD_PAGE),
    };
    let dead = app
        .admin
        .callbacks(&query)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let retried = q.retried.and_then(|id| uuid_param("retried", &id).ok());
    Ok(view::page(
        "dead.html",
        context! { nav => "dead", csrf => session.csrf, dead => dead, retried => retried },
    ))
}

pub async fn retry(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = uuid_param("id", &id).map_err(|e| PageError::new(e, &session))?;
    app.admin
        .retry_callback(id)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(redirect(&format!("/ui/dead?retried={id}")))
}
