//! The routers: webhook intake, health, admin and metrics, and JSON errors for everything else.

pub mod admin;
mod body;
pub mod client;
pub mod console;
mod health;
pub(crate) mod hooks;
pub mod openapi;

use crate::error::ApiError;
use crate::ingest::Inbox;
use crate::sources::Sources;
use axum::error_handling::HandleErrorLayer;
use axum::extract::Request;
use axum::routing::get;
use axum::Router;
pub use body::HookLimits;
use sqlx::PgPool;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Cloned for every request (axum's `State`), so it is one reference count, not a dozen.
#[derive(Clone)]
pub struct AppState(Arc<AppStateData>);

impl AppState {
    pub fn new(data: AppStateData) -> Self {
        Self(Arc::new(data))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppStateData;
    fn deref(&self) -> &AppStateData {
        &self.0
    }
}

pub struct AppStateData {
    /// Every admin call of the API and the console.
    pub admin: crate::admin::Admin,
    /// `dev_mode`: the console's cookie goes without `Secure`, for plain HTTP on loopback.
    pub dev_mode: bool,
    pub sources: Arc<Sources>,
    pub inbox: Inbox,
    /// `/metrics`, `/readyz` and the admin API use this pool, never the ingest one.
    pub admin_pool: PgPool,
    /// Body budget, body deadline and the cap on concurrent `/hooks` requests.
    pub hook_limits: HookLimits,
    /// The rules in force, for the admin `simulate` call.
    pub mappings: crate::mapping::SharedMappings,
    /// Console logins: the admin token, controller accounts, roles and limits.
    pub login: crate::operators::login::LoginPolicy,
    /// `admin.token`; None disables the admin API.
    pub admin_token: Option<secrecy::SecretString>,
    /// None in dry-run (no controller configured).
    /// The live controllers and their health (`/readyz` shows each).
    pub fleet: crate::controller::Fleet,
    /// Every `/hooks` request, refused ones included.
    pub deliveries: crate::deliveries::DeliveryLog,
    /// `server.client_address_header`.
    pub client_header: Option<axum::http::HeaderName>,
    /// Cancelled on SIGTERM: `/readyz` turns 503 while the listener still serves (the drain).
    pub stopping: tokio_util::sync::CancellationToken,
}

/// The main router and, when `separate_admin`, the admin one (admin API, console and
/// `/metrics`, which the main router then leaves out). Health routes are on both.
pub fn routers(state: AppState, separate_admin: bool) -> (Router, Option<Router>) {
    let (main, mut doc) = main_routes(&state).split_for_parts();
    let (admin, admin_doc) = admin_routes(&state).split_for_parts();
    doc.merge(admin_doc);
    openapi::publish(&doc);
    let admin = admin.merge(console::routes(&state));
    if separate_admin {
        let admin = admin
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz));
        (finish(main, state.clone()), Some(finish(admin, state)))
    } else {
        (finish(main.merge(admin), state), None)
    }
}

/// Hooks and health. Every route is registered with its OpenAPI operation.
fn main_routes(state: &AppState) -> OpenApiRouter<AppState> {
    // Past the cap a delivery is refused at once rather than queued: it holds a socket and memory.
    let (schemas, paths, hooks) = routes!(hooks::receive);
    let hooks = hooks.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                hooks::record,
            ))
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                metrics::counter!("aap_bridge_requests_shed_total", "reason" => "concurrency")
                    .increment(1);
                ApiError::unavailable(
                    "too many deliveries in progress (server.max_concurrent_hooks); retry",
                )
            }))
            .load_shed()
            .concurrency_limit(state.hook_limits.max_concurrent),
    );
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes((schemas, paths, hooks))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The admin API and `/metrics`.
fn admin_routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .nest("/api/v1", admin::routes(state))
        .routes(routes!(health::metrics))
}

fn finish(router: Router<AppState>, state: AppState) -> Router {
    let client_header = state.client_header.clone();
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Each source enforces its own limit while reading the body.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(
            // Method, path and the client's address only: headers carry signatures and tokens.
            TraceLayer::new_for_http().make_span_with(move |req: &Request| {
                let client =
                    client::address(client_header.as_ref(), req.headers(), req.extensions());
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(),
                    client = client.as_deref().unwrap_or("-"))
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

async fn method_not_allowed(req: Request) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    let message = format!("{} is not allowed on {}", req.method(), req.uri().path());
    // The console answers in HTML, the rest in JSON.
    if req.uri().path().starts_with("/ui/") {
        return console::fallback_page(status, &message).await;
    }
    ApiError::new(status, message).into_response()
}

#[cfg(test)]
mod tests {
    /// A route added with axum's plain `route` instead of `.routes(routes!(…))` would be missing
    /// from the OpenAPI document. Only the console (HTML, not an API) and the health routes
    /// repeated on the admin listener (documented once) may do that.
    #[test]
    fn every_api_route_goes_through_the_document() {
        let plain = concat!(".rou", "te(");
        let count = |text: &str| text.matches(plain).count();
        assert_eq!(
            count(include_str!("mod.rs")),
            2,
            "only /healthz and /readyz"
        );
        assert_eq!(count(include_str!("admin/mod.rs")), 0);
        assert_eq!(count(include_str!("health.rs")), 0);
        assert_eq!(count(include_str!("hooks.rs")), 0);
    }
}
