//! `POST /simulate`: what the current rules would do with a delivery. Nothing is stored or
//! launched, and the signature is not checked (the call itself needs the admin token).

use crate::error::{ApiError, ErrorBody};
use crate::http::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// A configured source name (the `{source}` of `/hooks/{source}`).
    pub source: String,
    /// Headers as the sender would send them, e.g. `X-GitHub-Event`; signatures are not needed.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The delivery body: a JSON document, or a string sent as is (e.g. a form-encoded body).
    #[schema(value_type = Object)]
    pub body: Value,
}

impl SimulateRequest {
    pub fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        }
    }
}

/// What the current rules would do with a delivery. Nothing is stored or launched.
#[utoipa::path(
    post,
    path = "/simulate",
    tag = "admin",
    summary = "What the current rules would do with a delivery",
    request_body = SimulateRequest,
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "The decision and the exact launch requests", body = crate::admin::Simulation),
        (status = 404, description = "Unknown source", body = ErrorBody),
        (status = 413, description = "The body is over the source's limit", body = ErrorBody),
        (status = 400, description = "A bad parameter or id, named in the message", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token, or the admin API is disabled", body = ErrorBody),
        (status = 503, description = "The database did not answer; retry", body = ErrorBody)
    )
)]
pub async fn simulate(
    State(app): State<AppState>,
    body: Body,
) -> Result<Json<crate::admin::Simulation>, ApiError> {
    let limit = envelope_limit(&app);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if crate::http::hooks::is_length_limit(&e) {
            ApiError::too_large(limit)
        } else {
            ApiError::bad_request(format!("could not read the request body: {e}"))
        }
    })?;
    let req: SimulateRequest = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "request body must be {{\"source\": …, \"headers\": {{…}}, \"body\": …}}: {e}"
        ))
    })?;
    let headers =
        crate::admin::header_map(req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(Json(app.admin.simulate(
        &req.source,
        &headers,
        &req.body_bytes(),
    )?))
}

/// The envelope may hold the largest body a source accepts, escaped in a JSON string.
pub(crate) fn envelope_limit(app: &AppState) -> usize {
    let largest = app
        .sources
        .values()
        .map(|s| s.body_limit)
        .max()
        .unwrap_or(0);
    largest.saturating_mul(2).saturating_add(64 * 1024)
}
