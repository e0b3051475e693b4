//! What the list pages share: their query string, less the console's own `refresh`.

use super::session::Session;
use super::view;
use axum::http::StatusCode;
use axum::response::Response;
use serde::de::DeserializeOwned;

/// Seconds between reloads when auto-refresh is on (a `<meta http-equiv="refresh">`: the
/// console has no script).
pub const REFRESH_SECS: u32 = 30;

/// The page's query and whether it refreshes itself (`refresh=1`). The rest goes through the
/// API's own parser, so a bad value gets the same message as on the API.
pub fn parse<T: DeserializeOwned>(raw: Option<&str>) -> Result<(T, Option<u32>), String> {
    let mut refresh = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if k == "refresh" {
            refresh = (v == "1").then_some(REFRESH_SECS);
        } else {
            rest.append_pair(&k, &v);
        }
    }
    let uri: axum::http::Uri = format!("/?{}", rest.finish())
        .parse()
        .map_err(|_| "the query string is not valid".to_string())?;
    let axum::extract::Query(q) =
        axum::extract::Query::<T>::try_from_uri(&uri).map_err(|e| e.body_text())?;
    Ok((q, refresh))
}

pub fn bad_query(message: &str, session: &Session) -> Response {
    view::error_page(StatusCode::BAD_REQUEST, message, Some(&session.csrf))
}

/// The auto-refresh link of a list page: on, it leads to the same page without it.
#[derive(Debug, serde::Serialize)]
pub struct Toggle {
    pub on: bool,
    pub secs: u32,
    pub href: String,
}

/// `query` is the page's own query string (filters, no cursor: a refreshing page shows the
/// newest rows).
pub fn toggle(path: &str, query: &str, refresh: Option<u32>) -> Toggle {
    let on = refresh.is_some();
    let mut q = query.to_string();
    if !on {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str("refresh=1");
    }
    let href = if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    };
    Toggle {
        on,
        secs: REFRESH_SECS,
        href,
    }
}
