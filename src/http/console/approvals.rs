//! Approve or deny a launch awaiting approval from its event page (asks first).

use super::session::Session;
use super::{redirect, view, PageError};
use crate::admin::uuid_param;
use crate::approval::Verb;
use crate::http::AppState;
use crate::operators::Actor;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, Form};
use minijinja::context;

#[derive(serde::Deserialize)]
pub struct DecideForm {
    /// The event page to return to.
    event: String,
    /// `yes` from the confirmation page; anything else shows that page first.
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/launches/{id}/approve` and `…/deny`.
pub async fn decide(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(actor): Extension<Actor>,
    Path((id, verb)): Path<(String, String)>,
    Form(f): Form<DecideForm>,
) -> Result<Response, PageError> {
    let verb = match verb.as_str() {
        "approve" => Verb::Approve,
        "deny" => Verb::Deny,
        _ => {
            let e = crate::admin::Error::NotFound(format!("no action `{verb}` on a launch"));
            return Err(PageError::new(e, &session));
        }
    };
    let id = uuid_param("id", &id).map_err(|e| PageError::new(e, &session))?;
    let event = uuid_param("event", &f.event).map_err(|e| PageError::new(e, &session))?;
    if f.confirm != "yes" {
        let (title, question, button) = match verb {
            Verb::Approve => (
                "Approve this launch",
                "Approve launch {id}? It goes to the launcher at once and its job runs; the \
                 approval is recorded with your name.",
                "Approve",
            ),
            Verb::Deny => (
                "Deny this launch",
                "Deny launch {id}? It never runs, and the ticket is told it was denied by you.",
                "Deny",
            ),
        };
        let event = event.to_string();
        return Ok(view::page(
            "confirm.html",
            context! {
                nav => "events",
                csrf => session.csrf,
                title => title,
                question => question.replace("{id}", &id.to_string()),
                action => format!("/ui/launches/{id}/{}", verb.as_str()),
                fields => vec![("event", event.as_str()), ("confirm", "yes")],
                button => button,
                back => format!("/ui/events/{event}"),
            },
        ));
    }
    app.admin
        .decide_launch(id, verb, &actor)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(redirect(&format!("/ui/events/{event}")))
}
