//! The router: webhook intake, health, and JSON errors for everything else.

pub mod admin;
mod health;
pub(crate) mod hooks;

use crate::error::ApiError;
use crate::ingest::Inbox;
use crate::sources::Sources;
use axum::extract::Request;
use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub sources: Arc<Sources>,
    pub inbox: Inbox,
    pub pool: PgPool,
    /// The rules in force, for the admin `simulate` call.
    pub mappings: crate::mapping::SharedMappings,
    /// `admin.token`; None disables the admin API.
    pub admin_token: Option<secrecy::SecretString>,
    /// None in dry-run (no controller configured).
    pub controller_health: Option<Arc<crate::controller::ControllerHealth>>,
    /// Cancelled on SIGTERM: `/readyz` turns 503 while the listener still serves (the drain).
    pub stopping: tokio_util::sync::CancellationToken,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/hooks/{source}", post(hooks::receive))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", admin::routes(&state))
        .route("/metrics", get(health::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Each source enforces its own limit while reading the body.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(
            // Method and path only: headers carry signatures and tokens.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
            }),
        )
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}
