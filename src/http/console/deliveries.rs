//! The deliveries page: every request to `/hooks`, refused ones included.

use super::session::Session;
use super::{listing, view, PageError};
use crate::admin::query::DeliveryQuery;
use crate::domain::DeliveryOutcome;
use crate::http::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::Extension;
use minijinja::context;

pub async fn list(
    State(app): State<AppState>,
    Extension(session): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let (q, refresh): (DeliveryQuery, _) = match listing::parse(raw.as_deref()) {
        Ok(v) => v,
        Err(resp) => return Ok(listing::bad_query(&resp, &session)),
    };
    let page = app
        .admin
        .deliveries(&q)
        .await
        .map_err(|e| PageError::new(e, &session))?;
    let keep = |s: &mut form_urlencoded::Serializer<String>| {
        for (k, v) in [
            ("source", q.source.clone()),
            ("outcome", q.outcome.map(|o| o.to_string())),
            ("status", q.status.map(|s| s.to_string())),
            ("limit", q.limit.map(|l| l.to_string())),
        ] {
            if let Some(v) = v {
                s.append_pair(k, &v);
            }
        }
    };
    let link = |key: &str, id: i64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        keep(&mut s);
        s.append_pair(key, &id.to_string());
        s.finish()
    };
    let mut here = form_urlencoded::Serializer::new(String::new());
    keep(&mut here);
    let toggle = listing::toggle("/ui/deliveries", &here.finish(), refresh);
    Ok(view::page(
        "deliveries.html",
        context! {
            nav => "deliveries",
            csrf => session.csrf,
            toggle => toggle,
            rows => page.deliveries,
            older => page.next_before.map(|id| link("before", id)),
            newer => page.prev_after.map(|id| link("after", id)),
            paged => q.before.is_some() || q.after.is_some(),
            form => context! {
                source => q.source,
                outcome => q.outcome.map(|o| o.to_string()),
                status => q.status,
            },
            sources => app.admin.source_names(),
            outcomes => DeliveryOutcome::NAMES,
        },
    ))
}
