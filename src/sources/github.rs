//! GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body; JSON or form-encoded bodies.

use super::{header, keep_headers, media_type, parse_object, required_header, Delivery, Receiver};
use crate::config::{SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::{text_at, Event, Ticket};
use crate::signature;
use secrecy::SecretString;
use serde_json::Value;

pub struct Github {
    name: String,
    secrets: Vec<SecretString>,
}

const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-github-hook-installation-target-type",
    "x-github-hook-installation-target-id",
];

impl Github {
    pub fn new(name: &str, s: &SourceSettings) -> Self {
        Self {
            name: name.to_string(),
            secrets: s.secrets.clone(),
        }
    }
}

impl Receiver for Github {
    fn verify(&self, d: &Delivery) -> Result<(), ApiError> {
        let value = header(d.headers, "x-hub-signature-256").ok_or_else(|| {
            ApiError::unauthorized(
                "missing X-Hub-Signature-256 header (set a secret on the GitHub webhook)",
            )
        })?;
        let sig = value
            .strip_prefix("sha256=")
            .filter(|h| h.len() == 64)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "X-Hub-Signature-256 must be `sha256=` followed by 64 hex digits",
                )
            })?;
        if signature::matches_any(&self.secrets, &[d.body], &[sig]) {
            Ok(())
        } else {
            Err(ApiError::unauthorized(format!(
                "X-Hub-Signature-256 does not match any secret configured for source `{}`",
                self.name
            )))
        }
    }

    fn normalize(&self, d: &Delivery) -> Result<Event, ApiError> {
        let event_name = required_header(d.headers, "x-github-event")?;
        let delivery = required_header(d.headers, "x-github-delivery")?;
        let payload_text = match media_type(d.headers).as_deref() {
            Some("application/json") | None => super::body_text(d.body)?,
            Some("application/x-www-form-urlencoded") => form_payload(d.body)?,
            Some(other) => {
                return Err(ApiError::unsupported_media(format!(
                "content type `{other}` is not supported: use application/json or application/x-www-form-urlencoded"
            )))
            }
        };
        let payload = parse_object(payload_text.as_bytes())?;
        // Information only: neither header is signed, so a replay can carry any values.
        let delivery_id = match header(d.headers, "x-github-hook-id") {
            Some(hook) => format!("{hook}:{delivery}"),
            None => delivery.to_string(),
        };
        let action = payload.get("action").and_then(Value::as_str);
        let event_type = match action {
            Some(a) => format!("{event_name}.{a}"),
            None => event_name.to_string(),
        };
        Ok(Event {
            arrival: crate::store::events::Arrival::Delivered,
            source: d.source.to_string(),
            kind: SourceKind::Github,
            delivery_id,
            dedupe_key: body_key(d.body),
            ignored: ignore_reason(event_name, &payload),
            category: category(event_name, &payload),
            ticket: ticket(&payload),
            event_type,
            headers: keep_headers(d.headers, KEPT_HEADERS),
            payload_text,
            payload,
        })
    }
}

/// The signature covers exactly the raw body, so its hash is what a replay cannot change.
/// (GitHub's Redeliver sends the same body, so it is a duplicate too.)
pub(crate) fn body_key(body: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
}

fn form_payload(body: &[u8]) -> Result<String, ApiError> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| ApiError::bad_request("form-encoded body has no `payload` field"))
}

fn ignore_reason(event: &str, p: &Value) -> Option<String> {
    match event {
        "ping" => Some("GitHub ping".into()),
        "issue_comment" | "pull_request_review_comment"
            if super::starts_with_marker(p, "/comment/body") =>
        {
            Some("comment posted by aap-bridge".into())
        }
        "status" if text_at(p, "/context").is_some_and(|c| c.starts_with("aap-bridge")) => {
            Some("commit status set by aap-bridge".into())
        }
        _ => None,
    }
}

/// The added label, else the first label of the issue or PR, else the pushed branch.
fn category(event: &str, p: &Value) -> Option<String> {
    if let Some(l) = text_at(p, "/label/name") {
        return Some(l);
    }
    for ptr in ["/issue/labels/0/name", "/pull_request/labels/0/name"] {
        if let Some(l) = text_at(p, ptr) {
            return Some(l);
        }
    }
    if event == "push" {
        return text_at(p, "/ref").map(|r| r.trim_start_matches("refs/heads/").to_string());
    }
    None
}

fn ticket(p: &Value) -> Ticket {
    let first = |ptrs: &[&str]| ptrs.iter().find_map(|ptr| text_at(p, ptr));
    let push_sha = text_at(p, "/after").filter(|s| s.chars().any(|c| c != '0'));
    Ticket {
        repo: text_at(p, "/repository/full_name"),
        number: first(&["/issue/number", "/pull_request/number", "/number"]),
        sha: first(&[
            "/pull_request/head/sha",
            "/check_suite/head_sha",
            "/check_run/head_sha",
            "/workflow_run/head_sha",
            "/sha",
        ])
        .or(push_sha),
        url: first(&[
            "/issue/html_url",
            "/pull_request/html_url",
            "/compare",
            "/repository/html_url",
        ]),
        ..Ticket::default()
    }
}
