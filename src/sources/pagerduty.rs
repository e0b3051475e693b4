//! PagerDuty webhooks v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` over the raw body.

use super::pick::Fields;
use super::{header, is_json_media, keep_headers, media_type, Delivery, Receiver};
use crate::config::{SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::{Event, Payload, Ticket};
use crate::signature;
use secrecy::SecretString;
use std::sync::LazyLock;

pub struct PagerDuty {
    name: String,
    secrets: Vec<SecretString>,
}

const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-webhook-id",
    "x-webhook-subscription",
];

/// What normalization reads. An incident event carries the incident as `data`; annotations and
/// others refer to it as `data.incident`: each incident field is read at both places.
pub(super) const POINTERS: &[&str] = &[
    "/event/event_type",
    "/event/id",
    "/event/data/type",
    "/event/data/content",
    "/event/data/service/summary",
    "/event/data/id",
    "/event/data/number",
    "/event/data/html_url",
    "/event/data/incident/service/summary",
    "/event/data/incident/id",
    "/event/data/incident/number",
    "/event/data/incident/html_url",
];
const EVENT_TYPE: usize = 0;
const EVENT_ID: usize = 1;
const DATA_TYPE: usize = 2;
const CONTENT: usize = 3;
/// The incident's fields (service, id, number, link) start here, or 4 further on.
const INCIDENT: usize = 4;

static FIELDS: LazyLock<Fields> = LazyLock::new(|| Fields::new(POINTERS));

impl PagerDuty {
    pub fn new(name: &str, s: &SourceSettings) -> Self {
        Self {
            name: name.to_string(),
            secrets: s.secrets.clone(),
        }
    }
}

impl Receiver for PagerDuty {
    fn verify(&self, d: &Delivery) -> Result<(), ApiError> {
        let value = header(d.headers, "x-pagerduty-signature")
            .ok_or_else(|| ApiError::unauthorized("missing X-PagerDuty-Signature header"))?;
        // During secret rotation PagerDuty sends one signature per active secret.
        let candidates: Vec<Vec<u8>> = value
            .split(',')
            .filter_map(|part| part.trim().strip_prefix("v1="))
            .filter_map(|h| hex::decode(h).ok())
            .collect();
        if candidates.is_empty() {
            return Err(ApiError::unauthorized(
                "X-PagerDuty-Signature must hold `v1=<hex>` values separated by commas",
            ));
        }
        if signature::matches_any(&self.secrets, &[d.body], &candidates) {
            Ok(())
        } else {
            Err(ApiError::unauthorized(format!(
                "X-PagerDuty-Signature does not match any secret configured for source `{}`",
                self.name
            )))
        }
    }

    fn normalize(&self, d: &Delivery) -> Result<Event, ApiError> {
        let mt = media_type(d.headers);
        if !is_json_media(mt.as_deref()) {
            return Err(ApiError::unsupported_media(format!(
                "content type `{}` is not supported: PagerDuty sends application/json",
                mt.unwrap_or_default()
            )));
        }
        let p = super::pick(&FIELDS, d.body)?;
        let event_type = p.text(EVENT_TYPE).ok_or_else(|| {
            ApiError::bad_request("body has no `event.event_type`: is this a v3 webhook?")
        })?;
        // `event.id` is signed and kept across PagerDuty's retries; X-Webhook-Id is not signed.
        let dedupe_key = p
            .text(EVENT_ID)
            .ok_or_else(|| ApiError::bad_request("body has no `event.id` to deduplicate on"))?;
        let delivery_id = header(d.headers, "x-webhook-id")
            .map(str::to_string)
            .unwrap_or_else(|| dedupe_key.clone());
        let incident = match p.text(DATA_TYPE).as_deref() {
            Some("incident") => INCIDENT,
            _ => INCIDENT + 4,
        };
        let at = |field: usize| p.text(incident + field);
        let ignored = match event_type.as_str() {
            "pagey.ping" => Some("PagerDuty ping".to_string()),
            "incident.annotated" if super::starts_with_marker(p.text(CONTENT)) => {
                Some("note posted by aap-bridge".to_string())
            }
            _ => None,
        };
        Ok(Event {
            arrival: crate::store::events::Arrival::Delivered,
            source: d.source.to_string(),
            kind: SourceKind::Pagerduty,
            delivery_id,
            dedupe_key,
            category: at(0),
            ticket: Ticket {
                incident_id: at(1),
                number: at(2),
                url: at(3),
                ..Ticket::default()
            },
            event_type,
            ignored,
            headers: keep_headers(d.headers, KEPT_HEADERS),
            payload: Payload::from_text(super::body_text(d.body)?),
        })
    }
}
