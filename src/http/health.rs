use super::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// The process is alive and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", summary = "The process is up",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready to accept deliveries: the database answers (migrations ran before the listener opened).
/// Not ready once shutdown has begun, so load balancers stop sending during the drain.
/// The controllers' states are detail only: deliveries are stored durably while one is away.
/// `controller` is the first (`default`); `controllers` has each by name.
#[utoipa::path(get, path = "/readyz", tag = "health", summary = "The database answers within 1 s",
    responses(
        (status = 200, description = "`{\"status\": \"ready\", \"controller\": {\"state\": …}, \"controllers\": {\"default\": {\"state\": …}}}`", body = Object),
        (status = 503, description = "Database unreachable, or shutting down", body = crate::error::ErrorBody)
    ))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    if app.stopping.is_cancelled() {
        return Err(ApiError::unavailable("shutting down"));
    }
    if crate::store::ping(&app.admin_pool).await {
        let dry = json!({"state": "dry_run"});
        let health = |h: &crate::controller::ControllerHealth| {
            serde_json::to_value(h.get()).unwrap_or(Value::Null)
        };
        let first = app.fleet.first().map_or(dry.clone(), |l| health(&l.health));
        let mut each = serde_json::Map::new();
        for l in app.fleet.lanes() {
            each.insert(l.name.clone(), health(&l.health));
        }
        for name in app.fleet.dry() {
            each.insert(name.clone(), dry.clone());
        }
        Ok(Json(
            json!({"status": "ready", "controller": first, "controllers": each}),
        ))
    } else {
        Err(ApiError::unavailable("database unreachable"))
    }
}

/// Prometheus text format, from memory: the database gauges are refreshed in the background.
#[utoipa::path(get, path = "/metrics", tag = "health", summary = "Prometheus metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics() -> impl axum::response::IntoResponse {
    let handle = crate::metrics::install();
    let body = crate::metrics::render(&handle);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
