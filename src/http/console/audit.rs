//! The audit page.

use super::session::Session;
use super::{listing, view, PageError};
use crate::admin::query::AuditQuery;
use crate::http::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Extension;
use minijinja::context;

pub async fn page(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (q, _): (AuditQuery, _) = match listing::parse(raw.as_deref()) {
        Ok(v) => v,
        Err(message) => return Ok(listing::bad_query(&message, &session)),
    };
    let page = app
        .admin
        .audit(&q)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let older = page.next_before.map(|id| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [("actor", &q.actor), ("target", &q.target)] {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        s.append_pair("before", &id.to_string());
        s.finish()
    });
    Ok(view::page(
        "audit.html",
        context! {
            nav => "audit",
            csrf => session.csrf,
            actions => page.entries,
            older => older,
            paged => q.before.is_some(),
            form => context! { actor => q.actor, target => q.target },
        },
    ))
}
