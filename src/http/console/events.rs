//! The event list (filters, cursor pages), one event's timeline, and replay.

use super::session::Session;
use super::{listing, redirect, timeline, view, PageError};
use crate::admin::query::EventQuery;
use crate::admin::uuid_param;
use crate::http::AppState;
use crate::operators::Actor;
use crate::store::events::EventState;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::Extension;
use axum::Form;
use chrono::{DateTime, Utc};
use minijinja::context;
use serde::Serialize;

/// The filter form as typed, to show it again.
#[derive(Serialize)]
struct FormValues {
    source: String,
    state: String,
    launch_state: String,
    category: String,
    event_type: String,
    ticket: String,
    q: String,
    since: String,
    until: String,
}

impl FormValues {
    fn of(q: &EventQuery) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let time = |t: Option<DateTime<Utc>>| {
            t.map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default()
        };
        FormValues {
            source: text(&q.source),
            state: q.state.map(|s| s.to_string()).unwrap_or_default(),
            launch_state: q.launch_state.map(|s| s.to_string()).unwrap_or_default(),
            category: text(&q.category),
            event_type: text(&q.event_type),
            ticket: text(&q.ticket),
            q: text(&q.q),
            since: time(q.since),
            until: time(q.until),
        }
    }
}

/// The query string of the filters, with `cursor` (`before` or `after`) when given.
fn page_link(q: &EventQuery, cursor: Option<(&str, uuid::Uuid)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let f = FormValues::of(q);
    for (k, v) in [
        ("source", f.source),
        ("state", f.state),
        ("launch_state", f.launch_state),
        ("category", f.category),
        ("event_type", f.event_type),
        ("ticket", f.ticket),
        ("q", f.q),
    ] {
        if !v.is_empty() {
            s.append_pair(k, &v);
        }
    }
    // Full RFC 3339, so the seconds of an API-style filter survive.
    for (k, t) in [("since", q.since), ("until", q.until)] {
        if let Some(t) = t {
            s.append_pair(k, &t.to_rfc3339());
        }
    }
    if let Some(limit) = q.limit {
        s.append_pair("limit", &limit.to_string());
    }
    if let Some((key, id)) = cursor {
        s.append_pair(key, &id.to_string());
    }
    s.finish()
}

pub async fn list(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (q, refresh): (EventQuery, _) = match listing::parse(raw.as_deref()) {
        Ok(v) => v,
        Err(message) => return Ok(listing::bad_query(&message, &session)),
    };
    let page = app
        .admin
        .events(&q)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let older = page
        .next_before
        .map(|id| page_link(&q, Some(("before", id))));
    let newer = page.prev_after.map(|id| page_link(&q, Some(("after", id))));
    let toggle = listing::toggle("/ui/events", &page_link(&q, None), refresh);
    Ok(view::page(
        "events.html",
        context! {
            nav => "events",
            csrf => session.csrf,
            events => page.events,
            older => older,
            newer => newer,
            toggle => toggle,
            search => q.q.clone(),
            form => FormValues::of(&q),
            sources => app.admin.source_names(),
            states => EventState::NAMES,
            paged => q.before.is_some() || q.after.is_some(),
        },
    ))
}

pub async fn detail(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = uuid_param("id", &id).map_err(|e| PageError::new(e, &session))?;
    let event = app
        .admin
        .event(id)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let steps = timeline::of(&event);
    let decision = timeline::decision(&event.decision);
    let actions = app
        .admin
        .audit_of(&crate::operators::audit::event(id))
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(view::page(
        "event.html",
        context! {
            nav => "events",
            csrf => session.csrf,
            e => event,
            steps => steps,
            decision => decision,
            actions => actions,
            once => uuid::Uuid::new_v4().to_string(),
        },
    ))
}

/// The replay form: `once` is a key made when the page was rendered, so a double click stores
/// one copy.
#[derive(serde::Deserialize)]
pub struct ReplayForm {
    once: Option<String>,
    /// `yes` from the confirmation page; anything else shows that page first.
    #[serde(default)]
    confirm: String,
}

pub async fn replay(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Form(f): Form<ReplayForm>,
) -> Result<Response, PageError> {
    let id = uuid_param("id", &id).map_err(|e| PageError::new(e, &session))?;
    if f.confirm != "yes" {
        let once = f.once.clone().unwrap_or_default();
        return Ok(view::page(
            "confirm.html",
            context! {
                nav => "events",
                csrf => session.csrf,
                title => "Replay this event",
                question => format!(
                    "Store a copy of event {id} as a new event? The rules in force now decide \
                     it, and a rule that matches launches its job again."
                ),
                action => format!("/ui/events/{id}/replay"),
                fields => vec![("once", once.as_str()), ("confirm", "yes")],
                button => "Replay",
                back => format!("/ui/events/{id}"),
            },
        ));
    }
    let r = app
        .admin
        .replay_once(id, f.once.as_deref().filter(|k| !k.is_empty()), &actor)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    Ok(redirect(&format!("/ui/events/{}", r.event_id)))
}
