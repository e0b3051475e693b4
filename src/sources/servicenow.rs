//! ServiceNow: base64 (or hex) HMAC-SHA256 from `GlideCertificateEncryption.generateMac` in a
//! configurable header, optionally over `{timestamp}.{body}`; or a bearer token.

use super::{header, is_json_media, keep_headers, media_type, parse_object, Delivery, Receiver};
use crate::config::{SourceAuth, SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::{text_at, Event, Ticket, POSTBACK_MARKER};
use crate::signature;
use secrecy::SecretString;

pub const DEFAULT_SIGNATURE_HEADER: &str = "x-servicenow-signature";

pub struct ServiceNow {
    name: String,
    auth: SourceAuth,
    secrets: Vec<SecretString>,
    tokens: Vec<SecretString>,
    signature_header: String,
    timestamp_header: Option<String>,
    delivery_header: Option<String>,
    window: i64,
}

impl ServiceNow {
    pub fn new(name: &str, s: &SourceSettings) -> Self {
        Self {
            name: name.to_string(),
            auth: s.auth,
            secrets: s.secrets.clone(),
            tokens: s.bearer_tokens.clone(),
            signature_header: s
                .signature_header
                .as_deref()
                .unwrap_or(DEFAULT_SIGNATURE_HEADER)
                .to_ascii_lowercase(),
            timestamp_header: s.timestamp_header.as_ref().map(|h| h.to_ascii_lowercase()),
            delivery_header: s.delivery_header.as_ref().map(|h| h.to_ascii_lowercase()),
            window: s.replay_window_secs as i64,
        }
    }

    fn verify_bearer(&self, d: &Delivery) -> Result<(), ApiError> {
        let presented = header(d.headers, "authorization")
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer` header"))?;
        if signature::token_matches(&self.tokens, presented.trim()) {
            Ok(())
        } else {
            Err(ApiError::unauthorized(format!(
                "bearer token does not match any token configured for source `{}`",
                self.name
            )))
        }
    }

    /// Checks the timestamp is within the window and returns it for the signed string.
    fn timestamp<'a>(&self, d: &'a Delivery) -> Result<Option<&'a str>, ApiError> {
        let Some(name) = &self.timestamp_header else {
            return Ok(None);
        };
        let raw = header(d.headers, name)
            .ok_or_else(|| ApiError::unauthorized(format!("missing {name} header")))?;
        let ts: i64 = raw.parse().map_err(|_| {
            ApiError::unauthorized(format!("{name} must be a unix time in seconds"))
        })?;
        let now = chrono::Utc::now().timestamp();
        if (now - ts).abs() > self.window {
            return Err(ApiError::unauthorized(format!(
                "{name} is outside the ±{} s replay window (check the instance clock)",
                self.window
            )));
        }
        Ok(Some(raw))
    }
}

impl Receiver for ServiceNow {
    fn verify(&self, d: &Delivery) -> Result<(), ApiError> {
        if self.auth == SourceAuth::Bearer {
            return self.verify_bearer(d);
        }
        let name = &self.signature_header;
        let value = header(d.headers, name)
            .ok_or_else(|| ApiError::unauthorized(format!("missing {name} header")))?;
        let sig = signature::decode_hex_or_base64(value).ok_or_else(|| {
            ApiError::unauthorized(format!(
                "{name} must be a base64 (or hex) HMAC-SHA256 of the body"
            ))
        })?;
        let ok = match self.timestamp(d)? {
            Some(ts) => {
                signature::matches_any(&self.secrets, &[ts.as_bytes(), b".", d.body], &[sig])
            }
            None => signature::matches_any(&self.secrets, &[d.body], &[sig]),
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::unauthorized(format!(
                "{name} does not match any secret configured for source `{}`",
                self.name
            )))
        }
    }

    fn normalize(&self, d: &Delivery) -> Result<Event, ApiError> {
        let mt = media_type(d.headers);
        if !is_json_media(mt.as_deref()) {
            return Err(ApiError::unsupported_media(format!(
                "content type `{}` is not supported: send application/json",
                mt.unwrap_or_default()
            )));
        }
        let payload = parse_object(d.body)?;
        let field = |k: &str| text_at(&payload, &format!("/{k}"));
        let table = field("table")
            .or_else(|| field("sys_class_name"))
            .unwrap_or_else(|| "incident".into());
        let sys_id = field("sys_id");
        let from_header = self
            .delivery_header
            .as_deref()
            .and_then(|h| header(d.headers, h))
            .map(str::to_string);
        let delivery_id = match (from_header, &sys_id, field("sys_updated_on")) {
            (Some(h), _, _) => h,
            (None, Some(id), Some(updated)) => format!("{id}@{updated}"),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot deduplicate: send `sys_id` and `sys_updated_on`{}",
                    self.delivery_header
                        .as_deref()
                        .map(|h| format!(" or a {h} header"))
                        .unwrap_or_default()
                )))
            }
        };
        let event_type = field("event_type").unwrap_or_else(|| {
            format!(
                "{table}.{}",
                field("operation").unwrap_or_else(|| "update".into())
            )
        });
        let ours = ["work_notes", "comments"]
            .iter()
            .any(|k| field(k).is_some_and(|t| t.contains(POSTBACK_MARKER)));
        let mut kept = vec!["content-type", "user-agent"];
        if let Some(h) = self.delivery_header.as_deref() {
            kept.push(h);
        }
        Ok(Event {
            source: d.source.to_string(),
            kind: SourceKind::Servicenow,
            delivery_id,
            event_type,
            category: field("category"),
            ticket: Ticket {
                number: field("number"),
                table: Some(table),
                sys_id,
                ..Ticket::default()
            },
            ignored: ours.then(|| "update made by aap-bridge".to_string()),
            headers: keep_headers(d.headers, &kept),
            payload_text: super::body_text(d.body)?,
            payload,
        })
    }
}
