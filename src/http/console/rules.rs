//! The Rules page, and its Pause and Resume forms (the circuit breaker per rule).

use super::session::Session;
use super::{redirect, view, PageError};
use crate::admin::{self, Held};
use crate::http::AppState;
use crate::operators::Actor;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use minijinja::context;
use serde::Deserialize;

/// Set after a form, to say what it did.
#[derive(Deserialize)]
pub struct Done {
    paused: Option<String>,
    resumed: Option<String>,
    released: Option<u64>,
    dropped: Option<u64>,
}

pub async fn page(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let rules = app
        .admin
        .rules()
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let actions = app
        .admin
        .audit_of_rules()
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(view::page(
        "rules.html",
        context! {
            nav => "rules",
            csrf => session.csrf,
            actions => actions,
            r => rules,
            paused => done.paused,
            resumed => done.resumed,
            released => done.released.unwrap_or(0),
            dropped => done.dropped.unwrap_or(0),
        },
    ))
}

#[derive(Deserialize)]
pub struct PauseForm {
    rule: String,
    #[serde(default)]
    reason: String,
}

pub async fn pause(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(actor): Extension<Actor>,
    Form(f): Form<PauseForm>,
) -> Result<Response, PageError> {
    let r = app
        .admin
        .pause_rule(&f.rule, Some(&f.reason), &actor)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(redirect(&format!(
        "/ui/rules?{}",
        query(&[("paused", &r.rule)])
    )))
}

#[derive(Deserialize)]
pub struct ResumeForm {
    rule: String,
    /// `release` or `drop`: the button pressed.
    #[serde(default)]
    held: String,
    /// `yes` from the confirmation page: dropping cannot be undone, so it asks first.
    #[serde(default)]
    confirm: String,
}

pub async fn resume(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(actor): Extension<Actor>,
    Form(f): Form<ResumeForm>,
) -> Result<Response, PageError> {
    let held = match f.held.as_str() {
        "release" => Held::Release,
        "drop" => Held::Drop,
        other => {
            let e =
                admin::Error::Invalid(format!("`held` must be `release` or `drop`, got `{other}`"));
            return Err(PageError::new(e, &session));
        }
    };
    if held == Held::Drop && f.confirm != "yes" {
        let state = app
            .admin
            .rule_state(&f.rule)
            .await
            .map_err(|e| PageError::new(e, &session))?;
        let question = format!(
            "Resume rule {} and drop its {} held launch(es)? They will never run, and each \
             ticket is told so. This cannot be undone.",
            state.rule, state.held
        );
        return Ok(view::page(
            "confirm.html",
            context! {
                nav => "rules",
                csrf => session.csrf,
                title => "Drop held launches",
                question => question,
                action => "/ui/rules/resume",
                fields => vec![("rule", f.rule.as_str()), ("held", "drop"), ("confirm", "yes")],
                button => "Resume and drop",
                back => "/ui/rules",
            },
        ));
    }
    let r = app
        .admin
        .resume_rule(&f.rule, held, &actor)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let (released, dropped) = (r.released.to_string(), r.dropped.to_string());
    Ok(redirect(&format!(
        "/ui/rules?{}",
        query(&[
            ("resumed", &r.rule.rule),
            ("released", &released),
            ("dropped", &dropped)
        ])
    )))
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}
