//! The console under `/ui/`: server-rendered pages over the admin service, behind `admin.token`.
//!
//! Login trades the admin token for a session cookie (see `session`). Every page but the login
//! page and the stylesheet needs a session; without one, the answer is a redirect to the login
//! page. Every POST must carry the session's CSRF token, checked here before any handler runs.
//! No page has script, and the Content-Security-Policy forbids it.

mod approvals;
mod audit;
mod deliveries;
mod events;
mod listing;
mod login;
mod pages;
mod rules;
pub mod session;
mod simulate;
mod timeline;
mod view;

use super::AppState;
use crate::admin;
use crate::operators::Actor;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use session::Session;

/// No script at all; styles from our own stylesheet only; forms post only to us.
pub const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The largest form body accepted (the simulate form carries a whole delivery).
const FORM_LIMIT: usize = 4 * 1024 * 1024;

pub fn routes(state: &AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/ui/", get(pages::overview))
        .route("/ui/events", get(events::list))
        .route("/ui/events/{id}", get(events::detail))
        .route("/ui/deliveries", get(deliveries::list))
        .route("/ui/audit", get(audit::page))
        .route("/ui/events/{id}/replay", post(events::replay))
        .route("/ui/launches/{id}/{verb}", post(approvals::decide))
        .route("/ui/rules", get(rules::page))
        .route("/ui/rules/pause", post(rules::pause))
        .route("/ui/rules/resume", post(rules::resume))
        .route("/ui/dead", get(pages::dead))
        .route("/ui/callbacks/{id}/retry", post(pages::retry))
        .route("/ui/dead/retry-all", post(pages::retry_all))
        .route("/ui/simulate", get(simulate::form).post(simulate::run))
        .route("/ui/logout", post(login::logout))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/", get(|| async { redirect("/ui/") }))
        .route("/ui", get(|| async { redirect("/ui/") }))
        .route("/ui/login", get(login::form).post(login::login))
        .route("/ui/static/console.css", get(stylesheet))
        .route("/ui/{*rest}", get(not_found))
        .merge(protected)
        .layer(middleware::map_response(security_headers))
}

/// A 303 to `to` (after a POST the browser follows it with a GET).
pub fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, HeaderValue::from_str(to).expect("a path"))],
    )
        .into_response()
}

/// Lets a request with a live session through, with its `Session` and `Actor` in the
/// extensions; checks the CSRF token of every POST, and refuses every POST but logout to a
/// read-only user. Pages render with the user's name and role (`view::WHO`).
async fn require_session(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(cookie) = session::cookie(req.headers()) else {
        return redirect("/ui/login");
    };
    let session = match crate::operators::sessions::find(&app.admin_pool, cookie).await {
        Ok(Some(s)) => s,
        Ok(None) => return redirect("/ui/login"),
        Err(e) => {
            tracing::warn!(error = %e, "console: session lookup failed");
            return view::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer; reload in a moment.",
                None,
            );
        }
    };
    let client =
        crate::http::client::address(app.client_header.as_ref(), req.headers(), req.extensions());
    let actor = Actor {
        name: session.user.clone(),
        role: session.role,
        client,
    };
    let mut req = if req.method() == Method::POST {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, FORM_LIMIT).await {
            Ok(b) => b,
            Err(_) => {
                return view::error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the form is larger than {FORM_LIMIT} bytes"),
                    Some(&session.csrf),
                )
            }
        };
        let presented = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !session.csrf_ok(&presented) {
            tracing::warn!(path = %parts.uri.path(), client = actor.client.as_deref(), "console form refused: missing or wrong CSRF token");
            return view::error_page(
                StatusCode::FORBIDDEN,
                "This form is out of date or did not come from this console (CSRF token missing or wrong). Go back, reload the page and try again.",
                Some(&session.csrf),
            );
        }
        if !session.can_act() && parts.uri.path() != "/ui/logout" {
            tracing::warn!(path = %parts.uri.path(), user = %actor.name.escape_debug(), client = actor.client.as_deref(),
                "console action refused: read-only user");
            return view::error_page(
                StatusCode::FORBIDDEN,
                &format!("{} may look but not act: the console is read-only for this account (admin.operators).", actor.name),
                Some(&session.csrf),
            );
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };
    let who = view::Who {
        user: session.user.clone(),
        can_act: session.can_act(),
    };
    req.extensions_mut().insert(session);
    req.extensions_mut().insert(actor);
    view::WHO.scope(who, next.run(req)).await
}

/// An HTML error page with the console's headers, for the routers' fallbacks under `/ui/`.
pub async fn fallback_page(status: StatusCode, message: &str) -> Response {
    security_headers(view::error_page(status, message, None)).await
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn stylesheet() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/css; charset=utf-8"),
        )],
        include_str!("console.css"),
    )
        .into_response()
}

async fn not_found() -> Response {
    view::error_page(
        StatusCode::NOT_FOUND,
        "There is no such console page.",
        None,
    )
}

/// An admin call that failed, as an HTML page.
pub struct PageError {
    error: admin::Error,
    csrf: String,
}

impl PageError {
    pub fn new(error: admin::Error, session: &Session) -> Self {
        PageError {
            error,
            csrf: session.csrf.clone(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self.error {
            admin::Error::Invalid(_) => StatusCode::BAD_REQUEST,
            admin::Error::NotFound(_) => StatusCode::NOT_FOUND,
            admin::Error::Conflict(_) => StatusCode::CONFLICT,
            admin::Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            admin::Error::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        view::error_page(status, &self.error.to_string(), Some(&self.csrf))
    }
}
