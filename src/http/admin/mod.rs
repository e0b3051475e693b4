//! The admin API under `/api/v1/`: look at events, launches and post-backs, replay an event,
//! retry a dead post-back, and simulate a delivery against the current rules.
//!
//! Every route except `openapi.json` needs `Authorization: Bearer <admin.token>`; without a
//! configured token the whole API answers 401.

mod callbacks;
mod events;
mod simulate;

use super::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use secrecy::ExposeSecret;

/// The OpenAPI 3.0 description of the whole HTTP interface.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The routes, to be nested under `/api/v1`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/events", get(events::list))
        .route("/events/{id}", get(events::detail))
        .route("/events/{id}/replay", post(events::replay))
        .route("/callbacks", get(callbacks::list))
        .route("/callbacks/{id}/retry", post(callbacks::retry))
        .route("/simulate", post(simulate::simulate))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(protected)
}

async fn openapi() -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        OPENAPI,
    )
        .into_response()
}

async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = app
        .admin_token
        .as_ref()
        .filter(|t| !t.expose_secret().is_empty())
    else {
        tracing::warn!("admin request refused: the admin API is disabled");
        return ApiError::unauthorized("the admin API is disabled: set admin.token")
            .into_response();
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    if presented.is_some_and(|p| crate::signature::token_matches(std::slice::from_ref(token), p)) {
        return next.run(req).await;
    }
    tracing::warn!("admin request refused: missing or wrong bearer token");
    let mut resp = ApiError::unauthorized("missing or wrong admin bearer token").into_response();
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"aap-bridge admin\""),
    );
    resp
}

/// The credentials of `Bearer <token>` (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

impl From<crate::admin::Error> for ApiError {
    fn from(e: crate::admin::Error) -> Self {
        use crate::admin::Error;
        match e {
            Error::Invalid(m) => ApiError::bad_request(m),
            Error::NotFound(m) => ApiError::not_found(m),
            Error::Conflict(m) => ApiError::new(axum::http::StatusCode::CONFLICT, m),
            Error::TooLarge(limit) => ApiError::too_large(limit),
            // Logged where it happened; the body says only what to do.
            e @ Error::Database(_) => ApiError::unavailable(e.to_string()),
        }
    }
}

/// axum's `Query`, with a bad or unknown parameter answered as a JSON 400 that names it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S>
    for ApiQuery<T>
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(ApiQuery(q)),
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("Bearer"), None);
    }

    #[test]
    fn openapi_is_json() {
        let v: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert_eq!(v["openapi"].as_str().map(|s| &s[..2]), Some("3."));
    }
}
