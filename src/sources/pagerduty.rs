//! PagerDuty webhooks v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` over the raw body.

use super::{header, is_json_media, keep_headers, media_type, parse_object, Delivery, Receiver};
use crate::config::{SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::{text_at, Event, Ticket};
use crate::signature;
use secrecy::SecretString;

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
        let payload = parse_object(d.body)?;
        let event_type = text_at(&payload, "/event/event_type").ok_or_else(|| {
            ApiError::bad_request("body has no `event.event_type`: is this a v3 webhook?")
        })?;
        // `event.id` is signed and kept across PagerDuty's retries; X-Webhook-Id is not signed.
        let dedupe_key = text_at(&payload, "/event/id")
            .ok_or_else(|| ApiError::bad_request("body has no `event.id` to deduplicate on"))?;
        let delivery_id = header(d.headers, "x-webhook-id")
            .map(str::to_string)
            .unwrap_or_else(|| dedupe_key.clone());
        // Incident events carry the incident as `data`; annotations and others refer to it.
        let incident = match text_at(&payload, "/event/data/type").as_deref() {
            Some("incident") => "/event/data",
            _ => "/event/data/incident",
        };
        let at = |suffix: &str| text_at(&payload, &format!("{incident}{suffix}"));
        let ignored = match event_type.as_str() {
            "pagey.ping" => Some("PagerDuty ping".to_string()),
            "incident.annotated" if super::starts_with_marker(&payload, "/event/data/content") => {
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
            category: at("/service/summary"),
            ticket: Ticket {
                incident_id: at("/id"),
                number: at("/number"),
                url: at("/html_url"),
                ..Ticket::default()
            },
            event_type,
            ignored,
            headers: keep_headers(d.headers, KEPT_HEADERS),
            payload_text: super::body_text(d.body)?,
            payload,
        })
    }
}
