//! The admin API under `/api/v1/`: look at events, launches and post-backs, replay an event,
//! retry a dead post-back, simulate a delivery against the current rules, pause or resume a
//! rule (its circuit breaker), and approve or deny a launch awaiting approval.
//!
//! Every route except `openapi.json` needs `Authorization: Bearer <admin.token>`; without a
//! configured token the whole API answers 401.

mod audit;
mod callbacks;
mod catch_up;
mod deliveries;
mod events;
mod launches;
mod rules;
mod simulate;

use super::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes, to be nested under `/api/v1`; each is in the OpenAPI document.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .routes(routes!(events::list))
        .routes(routes!(deliveries::list))
        .routes(routes!(audit::list))
        .routes(routes!(events::detail))
        .routes(routes!(events::replay))
        .routes(routes!(launches::approve))
        .routes(routes!(launches::deny))
        .routes(routes!(callbacks::list))
        .routes(routes!(callbacks::retry))
        .routes(routes!(simulate::simulate))
        .routes(routes!(rules::list))
        .routes(routes!(rules::pause))
        .routes(routes!(rules::resume))
        .routes(routes!(catch_up::run))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    OpenApiRouter::new()
        .routes(routes!(crate::http::openapi::serve))
        .merge(protected)
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
    let client =
        crate::http::client::address(app.client_header.as_ref(), req.headers(), req.extensions());
    if presented.is_some_and(|p| crate::signature::token_matches(std::slice::from_ref(token), p)) {
        let mut req = req;
        req.extensions_mut()
            .insert(crate::operators::Actor::token(client));
        return next.run(req).await;
    }
    tracing::warn!(
        client = client.as_deref(),
        "admin request refused: missing or wrong bearer token"
    );
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
}
