//! `POST /hooks/{source}`: read within the limit, verify, normalize, commit, then answer.

use super::AppState;
use crate::deliveries::Delivery;
use crate::domain::text::clip;
use crate::error::{ApiError, ErrorText};
use crate::ingest::Stored;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

/// What the handler learnt about a delivery, for the deliveries log (a response extension).
#[derive(Debug, Clone, Default)]
struct HookNote {
    event_id: Option<Uuid>,
    delivery_id: Option<String>,
    word: Option<&'static str>,
    reason: Option<String>,
    size: Option<i64>,
}

/// Headers that carry a delivery id before the body is read (PagerDuty's is in the body).
const DELIVERY_HEADERS: &[&str] = &["x-github-delivery", "x-delivery", "x-request-id"];

/// Outermost on `/hooks`: logs every request in the deliveries log, the shed ones included.
pub async fn record(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let at = chrono::Utc::now();
    let source = req
        .uri()
        .path()
        .strip_prefix("/hooks/")
        .unwrap_or_default()
        .to_string();
    let client =
        super::client::address(app.client_header.as_ref(), req.headers(), req.extensions());
    let header_id = DELIVERY_HEADERS
        .iter()
        .find_map(|h| req.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .map(clip);
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let resp = next.run(req).await;
    let note = resp
        .extensions()
        .get::<HookNote>()
        .cloned()
        .unwrap_or_default();
    let status = resp.status().as_u16();
    let reason = note
        .reason
        .or_else(|| resp.extensions().get::<ErrorText>().map(|e| clip(&e.0)));
    app.deliveries.record(Delivery {
        at,
        known: app.sources.contains_key(&source),
        source: clip(&source),
        client,
        delivery_id: note.delivery_id.or(header_id),
        status,
        outcome: Delivery::outcome_of(status, note.word),
        reason,
        size: note.size.or(declared),
        event_id: note.event_id,
    });
    resp
}

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
) -> Response {
    let mut note = HookNote::default();
    let result = handle(&app, &source, &headers, body, &mut note).await;
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
    let mut resp = result.into_response();
    resp.extensions_mut().insert(note);
    resp
}

async fn handle(
    app: &AppState,
    source: &str,
    headers: &HeaderMap,
    body: Body,
    note: &mut HookNote,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let src = app.sources.get(source).ok_or_else(|| {
        ApiError::not_found(format!("unknown source `{}`", source.escape_debug()))
    })?;
    let received = super::body::read(&app.hook_limits, headers, body, src.body_limit).await?;
    note.size = Some(received.bytes.len() as i64);
    let event = src.accept(headers, &received.bytes)?;
    let delivery = tracing::field::display(event.delivery_id.escape_debug());
    tracing::Span::current().record("delivery_id", delivery);
    note.delivery_id = Some(clip(&event.delivery_id));
    let ignored = event.ignored.clone();
    note.reason = ignored.as_deref().map(clip);
    let stored = app.inbox.store(event).await?;
    let (Stored::Accepted(id) | Stored::Duplicate(id)) = stored;
    note.event_id = Some(id);
    let (status, word, body) = match (stored, ignored) {
        (Stored::Accepted(_), Some(reason)) => (
            StatusCode::OK,
            Some("ignored"),
            json!({"event_id": id, "status": "ignored", "reason": reason}),
        ),
        (Stored::Accepted(_), None) => (
            StatusCode::ACCEPTED,
            None,
            json!({"event_id": id, "status": "accepted"}),
        ),
        (Stored::Duplicate(_), _) => (
            StatusCode::OK,
            Some("duplicate"),
            json!({"event_id": id, "status": "duplicate"}),
        ),
    };
    note.word = word;
    Ok((status, Json(body)))
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
