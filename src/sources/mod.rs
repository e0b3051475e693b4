//! Senders: each kind verifies a delivery on its raw bytes, then normalizes it into an [`Event`].

mod github;
mod pagerduty;
mod pick;
mod servicenow;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_pick;

use crate::config::{Settings, SourceKind, SourceSettings};
use crate::error::ApiError;
use crate::event::Event;
use axum::http::HeaderMap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// One HTTP delivery as received, before anything is trusted.
pub struct Delivery<'a> {
    pub source: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// A sender kind. `verify` must run first and look only at raw bytes and headers.
pub trait Receiver: Send + Sync {
    fn verify(&self, d: &Delivery) -> Result<(), ApiError>;
    fn normalize(&self, d: &Delivery) -> Result<Event, ApiError>;
}

pub struct Source {
    pub name: String,
    pub kind: SourceKind,
    pub body_limit: usize,
    receiver: Box<dyn Receiver>,
}

impl Source {
    pub fn new(name: &str, s: &SourceSettings, default_limit: usize) -> Self {
        let receiver: Box<dyn Receiver> = match s.kind {
            SourceKind::Github => Box::new(github::Github::new(name, s)),
            SourceKind::Pagerduty => Box::new(pagerduty::PagerDuty::new(name, s)),
            SourceKind::Servicenow => Box::new(servicenow::ServiceNow::new(name, s)),
        };
        Self {
            name: name.to_string(),
            kind: s.kind,
            body_limit: s.body_limit_bytes.unwrap_or(default_limit),
            receiver,
        }
    }

    /// Verifies, then normalizes. Nothing is parsed before the signature checks out.
    pub fn accept(&self, headers: &HeaderMap, body: &[u8]) -> Result<Event, ApiError> {
        let d = Delivery {
            source: &self.name,
            headers,
            body,
        };
        self.receiver.verify(&d)?;
        self.receiver.normalize(&d)
    }
}

impl Source {
    /// Normalizes WITHOUT checking the signature. Only for the admin `simulate` call (itself
    /// authenticated with the admin token), the `simulate` command and records a catch-up pass
    /// read itself from the sender's API; never for a delivery.
    pub fn normalize_unverified(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Event, ApiError> {
        let d = Delivery {
            source: &self.name,
            headers,
            body,
        };
        self.receiver.normalize(&d)
    }
}

pub type Sources = HashMap<String, Arc<Source>>;

pub fn build(settings: &Settings) -> Sources {
    settings
        .sources
        .iter()
        .map(|(name, s)| {
            let src = Source::new(name, s, settings.server.body_limit_bytes);
            (name.clone(), Arc::new(src))
        })
        .collect()
}

// Helpers shared by the kinds.

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(crate) fn required_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    header(headers, name).ok_or_else(|| ApiError::bad_request(format!("missing {name} header")))
}

/// Media type without parameters, lowercased; `None` when absent.
pub(crate) fn media_type(headers: &HeaderMap) -> Option<String> {
    header(headers, "content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    })
}

pub(crate) fn is_json_media(mt: Option<&str>) -> bool {
    match mt {
        None => true,
        Some(m) => m == "application/json" || m.ends_with("+json"),
    }
}

/// Reads `fields` out of a body that must be a JSON object with no NUL in it (Postgres refuses
/// NUL), with an error that says where it broke.
pub(crate) fn pick(fields: &pick::Fields, body: &[u8]) -> Result<pick::Picked, ApiError> {
    let picked = fields.pick(body).map_err(ApiError::bad_request)?;
    if picked.nul {
        return Err(ApiError::bad_request(
            "payload contains a NUL character (\\u0000), which cannot be stored",
        ));
    }
    Ok(picked)
}

pub(crate) fn body_text(bytes: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad_request("body is not valid UTF-8"))
}

pub(crate) fn keep_headers(headers: &HeaderMap, names: &[&str]) -> serde_json::Map<String, Value> {
    // One pass over the request's headers: looking each name up parses and hashes it.
    let mut kept = serde_json::Map::new();
    let mut seen = vec![false; names.len()];
    for (name, value) in headers {
        let Some(i) = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name.as_str()))
        else {
            continue;
        };
        // Only the first value counts, as `header` reads it.
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        if let Some(v) = value.to_str().ok().map(str::trim).filter(|v| !v.is_empty()) {
            kept.insert(names[i].to_string(), Value::from(v));
        }
    }
    kept
}

pub(crate) fn starts_with_marker(text: Option<String>) -> bool {
    text.is_some_and(|s| s.trim_start().starts_with(crate::event::POSTBACK_MARKER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// One pass keeps what a lookup per name kept: the first value, trimmed, when not empty.
    #[test]
    fn kept_headers_read_like_header() {
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static(" one "));
        h.append("x-a", HeaderValue::from_static("two"));
        h.append("x-b", HeaderValue::from_static(""));
        h.append("x-b", HeaderValue::from_static("late"));
        h.append("x-delivery", HeaderValue::from_static("d-1"));
        let names = ["x-a", "x-b", "X-Delivery", "x-missing"];
        let by_lookup: serde_json::Map<String, Value> = names
            .iter()
            .filter_map(|n| header(&h, n).map(|v| (n.to_string(), Value::from(v))))
            .collect();
        assert_eq!(keep_headers(&h, &names), by_lookup);
        assert_eq!(by_lookup.len(), 2);
    }
}
