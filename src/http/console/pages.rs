//! Overview and dead letters.

use super::session::Session;
use super::{redirect, view, PageError};
use crate::admin::query::CallbackQuery;
use crate::admin::uuid_param;
use crate::domain::CallbackState;
use crate::http::AppState;
use crate::operators::Actor;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::Response;
use axum::{Extension, Form};
use minijinja::context;
use serde::Deserialize;

/// How many dead letters the page lists.
const DEAD_PAGE: i64 = 200;

pub async fn overview(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let refresh = match super::listing::parse::<NoQuery>(raw.as_deref()) {
        Ok((_, refresh)) => refresh,
        Err(message) => return Ok(super::listing::bad_query(&message, &session)),
    };
    let toggle = super::listing::toggle("/ui/", "", refresh);
    let overview = app
        .admin
        .overview()
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(view::page(
        "overview.html",
        context! {
            nav => "overview",
            csrf => session.csrf,
            attention => app.admin.attention(&overview),
            o => overview,
            toggle => toggle,
        },
    ))
}

/// The overview takes no parameters but `refresh`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoQuery {}

#[derive(Deserialize)]
pub struct DeadQuery {
    /// Set after a retry, to say so.
    retried: Option<String>,
    /// Set after "Retry all": how many went back.
    retried_all: Option<u64>,
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
        context! {
            nav => "dead",
            csrf => session.csrf,
            dead => dead,
            retried => retried,
            retried_all => q.retried_all,
        },
    ))
}

#[derive(Deserialize)]
pub struct RetryAllForm {
    /// `yes` from the confirmation page: a bulk action asks first.
    #[serde(default)]
    confirm: String,
}

/// "Retry all": every dead letter back to the outbox, after a confirmation page.
pub async fn retry_all(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(actor): Extension<Actor>,
    Form(f): Form<RetryAllForm>,
) -> Result<Response, PageError> {
    if f.confirm != "yes" {
        let query = CallbackQuery {
            state: Some(CallbackState::Dead),
            limit: Some(crate::admin::query::MAX_LIMIT),
        };
        let n = app
            .admin
            .callbacks(&query)
            .await
            .map_err(|e| PageError::new(e, &session))?
            .len();
        let question = format!(
            "Send every dead letter again ({n}{} of them)? Each ticket may get a note it was \
             refused before.",
            if n as i64 >= crate::admin::query::MAX_LIMIT {
                " or more"
            } else {
                ""
            }
        );
        return Ok(view::page(
            "confirm.html",
            context! {
                nav => "dead",
                csrf => session.csrf,
                title => "Retry every dead letter",
                question => question,
                action => "/ui/dead/retry-all",
                fields => vec![("confirm", "yes")],
                button => "Retry all",
                back => "/ui/dead",
            },
        ));
    }
    let n = app
        .admin
        .retry_dead(&actor)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(redirect(&format!("/ui/dead?retried_all={n}")))
}

pub async fn retry(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = uuid_param("id", &id).map_err(|e| PageError::new(e, &session))?;
    app.admin
        .retry_callback(id, &actor)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(redirect(&format!("/ui/dead?retried={id}")))
}
