//! `GET/POST /ui/login` and `POST /ui/logout`.

use super::{keys, now, redirect, session, view};
use crate::http::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The login form only carries the token.
const LOGIN_LIMIT: usize = 16 * 1024;

pub async fn form(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let Some(keys) = keys(&app) else {
        return disabled();
    };
    if session::cookie(&headers).is_some_and(|v| keys.verify(v, now()).is_some()) {
        return redirect("/ui/");
    }
    view::page("login.html", minijinja::context! {})
}

pub async fn login(State(app): State<AppState>, body: Body) -> Response {
    let Some(keys) = keys(&app) else {
        return disabled();
    };
    let Ok(bytes) = axum::body::to_bytes(body, LOGIN_LIMIT).await else {
        return view::error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large", None);
    };
    let presented = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let token = app.admin_token.as_ref().expect("keys() checked it");
    if presented.is_empty()
        || !crate::signature::token_matches(std::slice::from_ref(token), &presented)
    {
        tracing::warn!("console login refused: wrong admin token");
        return view::page_with(
            StatusCode::UNAUTHORIZED,
            "login.html",
            minijinja::context! { error => "That is not the admin token." },
        );
    }
    let (value, _) = keys.issue(now());
    tracing::info!("console login");
    let mut resp = redirect("/ui/");
    resp.headers_mut()
        .insert(SET_COOKIE, session::set_cookie(&value, !app.dev_mode));
    resp
}

/// The session cookie is dropped; see README ("Console") on what that does and does not end.
pub async fn logout(State(app): State<AppState>) -> Response {
    let mut resp = redirect("/ui/login");
    resp.headers_mut()
        .insert(SET_COOKIE, session::clear_cookie(!app.dev_mode));
    resp
}

fn disabled() -> Response {
    view::error_page(
        StatusCode::UNAUTHORIZED,
        "The console is disabled: set admin.token to use it.",
        None,
    )
    .into_response()
}
