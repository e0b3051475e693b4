//! ServiceNow: base64 (or hex) HMAC-SHA256 from `GlideCertificateEncryption.generateMac` in a
//! configurable header, over `{body}`, `{timestamp}.{body}` or `{timestamp}.{delivery}.{body}`;
//! or a bearer token.

use super::pick::{Fields, Picked};
use super::{header, is_json_media, keep_headers, media_type, Delivery, Receiver};
use crate::config::{SignatureScheme, SourceAuth, SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::{Event, Payload, Ticket, POSTBACK_MARKER};
use crate::signature;
use secrecy::SecretString;
use std::sync::LazyLock;

/// The record's fields normalization reads (each may be `{"value", "display_value"}`).
pub(super) const FIELD_NAMES: &[&str] = &[
    "table",
    "sys_class_name",
    "sys_id",
    "sys_updated_on",
    "sys_mod_count",
    "event_type",
    "operation",
    "category",
    "number",
    "work_notes",
    "comments",
];

static FIELDS: LazyLock<Fields> = LazyLock::new(|| {
    let pointers: Vec<String> = FIELD_NAMES.iter().map(|k| format!("/{k}")).collect();
    Fields::new(&pointers.iter().map(String::as_str).collect::<Vec<_>>())
});

/// The text of a top-level field of the record.
fn field(p: &Picked, name: &str) -> Option<String> {
    let i = FIELD_NAMES.iter().position(|k| *k == name)?;
    p.text(i)
}

pub const DEFAULT_SIGNATURE_HEADER: &str = "x-servicenow-signature";

pub struct ServiceNow {
    name: String,
    auth: SourceAuth,
    secrets: Vec<SecretString>,
    tokens: Vec<SecretString>,
    signature_header: String,
    timestamp_header: Option<String>,
    delivery_header: Option<String>,
    scheme: SignatureScheme,
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
            scheme: s.scheme(),
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
        if !signature::token_matches(&self.tokens, presented.trim()) {
            return Err(ApiError::unauthorized(format!(
                "bearer token does not match any token configured for source `{}`",
                self.name
            )));
        }
        // Not signed here, but it still bounds how long a captured request can be replayed.
        self.timestamp(d).map(|_| ())
    }

    /// True when the delivery header is covered by the MAC, so it may serve as the dedupe key.
    fn delivery_signed(&self) -> bool {
        self.auth == SourceAuth::Hmac && self.scheme == SignatureScheme::TimestampDeliveryBody
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
        let ts = self.timestamp(d)?.unwrap_or_default().as_bytes();
        let ok = match (self.scheme, &self.delivery_header) {
            (SignatureScheme::TimestampDeliveryBody, Some(h)) => {
                let delivery = header(d.headers, h).ok_or_else(|| {
                    ApiError::unauthorized(format!("missing {h} header (it is signed)"))
                })?;
                // No `.` in it, so the signed string splits one way only.
                if delivery.contains('.') {
                    return Err(ApiError::unauthorized(format!("{h} must not contain `.`")));
                }
                let parts: [&[u8]; 5] = [ts, b".", delivery.as_bytes(), b".", d.body];
                signature::matches_any(&self.secrets, &parts, &[sig])
            }
            (SignatureScheme::TimestampBody, _) => {
                signature::matches_any(&self.secrets, &[ts, b".", d.body], &[sig])
            }
            _ => signature::matches_any(&self.secrets, &[d.body], &[sig]),
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
        let p = super::pick(&FIELDS, d.body)?;
        let field = |k: &str| field(&p, k);
        let table = field("table")
            .or_else(|| field("sys_class_name"))
            .unwrap_or_else(|| "incident".into());
        let sys_id = field("sys_id");
        let from_header = self
            .delivery_header
            .as_deref()
            .and_then(|h| header(d.headers, h))
            .map(str::to_string);
        let dedupe_key = match (&from_header, self.delivery_signed()) {
            (Some(h), true) => format!("delivery:{h}"),
            _ => record_key(&p)?,
        };
        let delivery_id = from_header.unwrap_or_else(|| dedupe_key.clone());
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
            arrival: crate::store::events::Arrival::Delivered,
            source: d.source.to_string(),
            kind: SourceKind::Servicenow,
            delivery_id,
            dedupe_key,
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
            payload: Payload::from_text(super::body_text(d.body)?),
        })
    }
}

/// The record's identity from the (signed) body: `sys_id`, then `@sys_updated_on` and
/// `#sys_mod_count` for whichever is present. An unsigned delivery header cannot count.
fn record_key(p: &Picked) -> Result<String, ApiError> {
    let field = |k: &str| field(p, k);
    let (updated, count) = (field("sys_updated_on"), field("sys_mod_count"));
    match field("sys_id") {
        Some(id) if updated.is_some() || count.is_some() => {
            let mut key = id;
            if let Some(u) = updated {
                key = format!("{key}@{u}");
            }
            if let Some(c) = count {
                key = format!("{key}#{c}");
            }
            Ok(key)
        }
        _ => Err(ApiError::bad_request(
            "cannot deduplicate: send `sys_id` with `sys_updated_on` or `sys_mod_count` \
             (or sign a delivery header: signature_scheme `{timestamp}.{delivery}.{body}`)",
        )),
    }
}
