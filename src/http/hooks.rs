//! `POST /hooks/{source}`: read within the limit, verify, normalize, commit, then answer.

use super::AppState;
use crate::error::ApiError;
use crate::ingest::Stored;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

/// A delivery from a sender, verified on its raw bytes and committed before the answer.
#[utoipa::path(
    post,
    path = "/hooks/{source}",
    tag = "hooks",
    summary = "Receive a signed delivery",
    params(("source" = String, Path, description = "A configured source name")),
    request_body(content = Object, description = "The sender's JSON document (GitHub also form-encoded)"),
    responses(
        (status = 202, description = "Committed: `{\"event_id\", \"status\": \"accepted\"}`", body = Object),
        (status = 200, description = "`duplicate` (seen before) or `ignored` (authentic but not for us)", body = Object),
        (status = 400, description = "Malformed JSON, missing header, nothing to dedupe on", body = crate::error::ErrorBody),
        (status = 401, description = "Bad or missing signature, token or timestamp", body = crate::error::ErrorBody),
        (status = 404, description = "Unknown source", body = crate::error::ErrorBody),
        (status = 408, description = "The body did not arrive in time", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over the source's limit", body = crate::error::ErrorBody),
        (status = 415, description = "Unsupported content type", body = crate::error::ErrorBody),
        (status = 503, description = "Not committed in time, or shed; retry (`Retry-After`)", body = crate::error::ErrorBody)
    )
)]
// The path is the client's: escaped, so no control character or newline reaches a log line.
#[tracing::instrument(name = "hook", skip_all, fields(source = %source.escape_debug(), delivery_id))]
pub async fn receive(
    State(app): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = handle(&app, &source, &headers, body).await;
    let label = crate::metrics::source_label(app.sources.contains_key(&source), &source);
    let outcome = match &result {
        Ok((status, body)) => {
            // An accepted event's own line (its decision, with this delivery id) comes from the
            // commit writer; one line per event is what info costs at full rate.
            if *status == StatusCode::ACCEPTED {
                tracing::debug!(status = status.as_u16(), "delivery handled");
            } else {
                tracing::info!(status = status.as_u16(), "delivery handled");
            }
            body.get("status")
                .and_then(Value::as_str)
                .unwrap_or("accepted")
                .to_string()
        }
        Err(e) => {
            tracing::warn!(status = e.status.as_u16(), error = %e.message, "delivery refused");
            if e.status == StatusCode::UNAUTHORIZED {
                metrics::counter!("aap_bridge_signature_failures_total", "source" => label.clone())
                    .increment(1);
            }
            "rejected".to_string()
        }
    };
    metrics::counter!("aap_bridge_events_received_total", "source" => label, "outcome" => outcome)
        .increment(1);
    result
}

async fn handle(
    app: &AppState,
    source: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let src = app.sources.get(source).ok_or_else(|| {
        ApiError::not_found(format!("unknown source `{}`", source.escape_debug()))
    })?;
    let received = super::body::read(&app.hook_limits, headers, body, src.body_limit).await?;
    let event = src.accept(headers, &received.bytes)?;
    let delivery = tracing::field::display(event.delivery_id.escape_debug());
    tracing::Span::current().record("delivery_id", delivery);
    let ignored = event.ignored.clone();
    let answer = match (app.inbox.store(event).await?, ignored) {
        (Stored::Accepted(id), Some(reason)) => (
            StatusCode::OK,
            json!({"event_id": id, "status": "ignored", "reason": reason}),
        ),
        (Stored::Accepted(id), None) => (
            StatusCode::ACCEPTED,
            json!({"event_id": id, "status": "accepted"}),
        ),
        (Stored::Duplicate(id), _) => (
            StatusCode::OK,
            json!({"event_id": id, "status": "duplicate"}),
        ),
    };
    Ok((answer.0, Json(answer.1)))
}

pub(crate) fn is_length_limit(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}
