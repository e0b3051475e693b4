//! `GET/POST /ui/simulate`: paste a delivery, see the decision and the exact launch requests.

use super::session::Session;
use super::view;
use crate::http::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use minijinja::context;
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SimulateForm {
    #[serde(default)]
    source: String,
    /// `Name: value`, one a line.
    #[serde(default)]
    headers: String,
    #[serde(default)]
    payload: String,
}

pub async fn form(State(app): State<AppState>, Extension(session): Extension<Session>) -> Response {
    render(&app, &session, &SimulateForm::default(), None, None)
}

pub async fn run(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Form(f): Form<SimulateForm>,
) -> Response {
    let pairs: Result<Vec<(&str, &str)>, String> = f
        .headers
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once(':')
                .ok_or_else(|| format!("header line `{}` must look like `Name: value`", l.trim()))
        })
        .collect();
    let result = pairs
        .map_err(crate::admin::Error::Invalid)
        .and_then(crate::admin::header_map)
        .and_then(|headers| {
            app.admin
                .simulate(f.source.trim(), &headers, f.payload.trim().as_bytes())
        });
    match result {
        Ok(sim) => render(&app, &session, &f, Some(sim), None),
        Err(e) => render(&app, &session, &f, None, Some(e.to_string())),
    }
}

fn render(
    app: &AppState,
    session: &Session,
    f: &SimulateForm,
    sim: Option<crate::admin::Simulation>,
    error: Option<String>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let verdicts = sim
        .as_ref()
        .and_then(|s| s.decision.as_ref())
        .map(|d| super::timeline::decision(&serde_json::to_value(d).unwrap_or_default()));
    view::page_with(
        status,
        "simulate.html",
        context! {
            nav => "simulate",
            csrf => session.csrf,
            sources => app.admin.source_names(),
            form => f,
            sim => sim,
            verdicts => verdicts,
            error => error,
        },
    )
}
