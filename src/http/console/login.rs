//! `GET/POST /ui/login` and `POST /ui/logout`.

use super::{redirect, session, view};
use crate::http::AppState;
use crate::operators::login::{self, Credentials, Refused};
use crate::operators::{audit, sessions, Actor};
use axum::extract::{Request, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The login form carries a user name and password, or the token.
const LOGIN_LIMIT: usize = 16 * 1024;

fn form_page(app: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let p = &app.login;
    view::page_with(
        status,
        "login.html",
        minijinja::context! {
            error => error,
            accounts => p.controller.is_some(),
            controller => p.controller.as_ref().map(|c| c.base_url().to_string()),
            teams => p.roles.teams,
            token => p.token.is_some(),
            hours => p.ttl.as_secs() / 3600,
        },
    )
}

pub async fn form(State(app): State<AppState>, req: Request) -> Response {
    if !app.login.enabled() {
        return disabled();
    }
    if let Some(c) = session::cookie(req.headers()) {
        if let Ok(Some(_)) = sessions::find(&app.admin_pool, c).await {
            return redirect("/ui/");
        }
    }
    form_page(&app, StatusCode::OK, None)
}

pub async fn login(State(app): State<AppState>, req: Request) -> Response {
    if !app.login.enabled() {
        return disabled();
    }
    let client =
        crate::http::client::address(app.client_header.as_ref(), req.headers(), req.extensions());
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), LOGIN_LIMIT).await else {
        return view::error_page(StatusCode::PAYLOAD_TOO_LARGE, "the form is too large", None);
    };
    let field = |name: &str| {
        form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (user, token) = (field("username"), field("token"));
    let creds = if !user.is_empty() {
        Credentials::Account {
            user,
            password: form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "password")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default(),
        }
    } else if !token.is_empty() {
        Credentials::Token(token)
    } else {
        return form_page(
            &app,
            StatusCode::BAD_REQUEST,
            Some("Enter a user name and password, or the admin token."),
        );
    };
    match login::log_in(&app.admin_pool, &app.login, creds, client.as_deref()).await {
        Ok((cookie, _)) => {
            let mut resp = redirect("/ui/");
            resp.headers_mut().insert(
                SET_COOKIE,
                session::set_cookie(&cookie, app.login.ttl.as_secs(), !app.dev_mode),
            );
            resp
        }
        Err(Refused::Wrong(why)) => form_page(&app, StatusCode::UNAUTHORIZED, Some(&why)),
        Err(e @ Refused::Limited(secs)) => {
            let mut resp = form_page(&app, StatusCode::TOO_MANY_REQUESTS, Some(&e.to_string()));
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
            resp
        }
        Err(Refused::Unavailable(why)) => {
            form_page(&app, StatusCode::SERVICE_UNAVAILABLE, Some(&why))
        }
        Err(Refused::Disabled(why)) => form_page(&app, StatusCode::BAD_REQUEST, Some(&why)),
    }
}

/// Ends the session on every replica (its row), and drops the cookie.
pub async fn logout(State(app): State<AppState>, req: Request) -> Response {
    let client =
        crate::http::client::address(app.client_header.as_ref(), req.headers(), req.extensions());
    if let Some(c) = session::cookie(req.headers()) {
        if let Ok(Some(s)) = sessions::find(&app.admin_pool, c).await {
            if sessions::end(&app.admin_pool, c).await.is_ok() {
                let actor = Actor {
                    name: s.user.clone(),
                    role: s.role,
                    client: client.clone(),
                };
                audit::record(
                    &app.admin_pool,
                    &actor,
                    crate::domain::AuditAction::Logout,
                    None,
                    serde_json::json!({}),
                )
                .await;
                tracing::info!(client = client.as_deref(), user = %s.user.escape_debug(), "console logout");
            }
        }
    }
    let mut resp = redirect("/ui/login");
    resp.headers_mut()
        .insert(SET_COOKIE, session::clear_cookie(!app.dev_mode));
    resp
}

fn disabled() -> Response {
    view::error_page(
        StatusCode::UNAUTHORIZED,
        "The console is disabled: set admin.token, or configure a controller to log in with its accounts.",
        None,
    )
    .into_response()
}
