//! GitHub: `X-Hub-Signature-256: sha256=<hex>` over the raw body; JSON or form-encoded bodies.

use super::pick::{Fields, Picked};
use super::{header, keep_headers, media_type, required_header, Delivery, Receiver};
use crate::config::{SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::{Event, Payload, Ticket};
use crate::signature;
use secrecy::SecretString;
use std::sync::LazyLock;

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
        let p = super::pick(&FIELDS, payload_text.as_bytes())?;
        // Information only: neither header is signed, so a replay can carry any values.
        let delivery_id = match header(d.headers, "x-github-hook-id") {
            Some(hook) => format!("{hook}:{delivery}"),
            None => delivery.to_string(),
        };
        let event_type = match p.str(f::ACTION) {
            Some(a) => format!("{event_name}.{a}"),
            None => event_name.to_string(),
        };
        Ok(Event {
            arrival: crate::store::events::Arrival::Delivered,
            source: d.source.to_string(),
            kind: SourceKind::Github,
            delivery_id,
            dedupe_key: body_key(d.body),
            ignored: ignore_reason(event_name, &p),
            category: category(event_name, &p),
            ticket: ticket(&p),
            event_type,
            headers: keep_headers(d.headers, KEPT_HEADERS),
            payload: Payload::from_text(payload_text),
        })
    }
}

/// The fields normalization reads, by their index in `POINTERS`.
mod f {
    pub const ACTION: usize = 0;
    pub const LABEL: usize = 1;
    pub const LABELS: [usize; 2] = [2, 3];
    pub const REF: usize = 4;
    pub const REPO: usize = 5;
    pub const NUMBER: [usize; 3] = [6, 7, 8];
    pub const SHA: [usize; 5] = [9, 10, 11, 12, 13];
    pub const AFTER: usize = 14;
    pub const URL: [usize; 4] = [15, 16, 17, 18];
    pub const COMMENT: usize = 19;
    pub const CONTEXT: usize = 20;
}

pub(super) const POINTERS: &[&str] = &[
    "/action",
    "/label/name",
    "/issue/labels/0/name",
    "/pull_request/labels/0/name",
    "/ref",
    "/repository/full_name",
    "/issue/number",
    "/pull_request/number",
    "/number",
    "/pull_request/head/sha",
    "/check_suite/head_sha",
    "/check_run/head_sha",
    "/workflow_run/head_sha",
    "/sha",
    "/after",
    "/issue/html_url",
    "/pull_request/html_url",
    "/compare",
    "/repository/html_url",
    "/comment/body",
    "/context",
];

static FIELDS: LazyLock<Fields> = LazyLock::new(|| Fields::new(POINTERS));

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

fn ignore_reason(event: &str, p: &Picked) -> Option<String> {
    match event {
        "ping" => Some("GitHub ping".into()),
        "issue_comment" | "pull_request_review_comment"
            if super::starts_with_marker(p.text(f::COMMENT)) =>
        {
            Some("comment posted by aap-bridge".into())
        }
        "status"
            if p.text(f::CONTEXT)
                .is_some_and(|c| c.starts_with("aap-bridge")) =>
        {
            Some("commit status set by aap-bridge".into())
        }
        _ => None,
    }
}

/// The added label, else the first label of the issue or PR, else the pushed branch.
fn category(event: &str, p: &Picked) -> Option<String> {
    if let Some(l) = p.text(f::LABEL) {
        return Some(l);
    }
    if let Some(l) = p.first(&f::LABELS) {
        return Some(l);
    }
    if event == "push" {
        return p
            .text(f::REF)
            .map(|r| r.trim_start_matches("refs/heads/").to_string());
    }
    None
}

fn ticket(p: &Picked) -> Ticket {
    let push_sha = p.text(f::AFTER).filter(|s| s.chars().any(|c| c != '0'));
    Ticket {
        repo: p.text(f::REPO),
        number: p.first(&f::NUMBER),
        sha: p.first(&f::SHA).or(push_sha),
        url: p.first(&f::URL),
        ..Ticket::default()
    }
}
