//! The one event shape every sender is normalized into. Mapping rules are written against it.

use crate::config::SourceKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every post-back the bridge writes starts with this, so the webhook it provokes
/// (GitHub `issue_comment`, PagerDuty `incident.annotated`, a ServiceNow update) is ignored.
pub const POSTBACK_MARKER: &str = "[aap-bridge]";

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Source name from config (the `{source}` in `/hooks/{source}`).
    pub source: String,
    pub kind: SourceKind,
    /// The sender's delivery id (a header, unsigned): information, not a dedupe key.
    pub delivery_id: String,
    /// Unique per source, taken from what the signature covers (body hash, `event.id`, record
    /// identity, a signed delivery header), so a replay with fresh headers is a duplicate.
    pub dedupe_key: String,
    /// e.g. `issues.opened`, `incident.triggered`, `incident.insert`.
    pub event_type: String,
    /// What mapping rules key on: ServiceNow `category`, GitHub label or branch, PagerDuty service.
    pub category: Option<String>,
    pub ticket: Ticket,
    /// Non-secret headers worth keeping (content type, user agent, event and delivery ids).
    pub headers: serde_json::Map<String, Value>,
    /// The sender's JSON document as sent (for form-encoded GitHub deliveries, the `payload` field).
    #[serde(skip)]
    pub payload_text: String,
    #[serde(skip)]
    pub payload: Value,
    /// Set when the event is authentic but not for us (ping, our own post-back).
    pub ignored: Option<String>,
    /// Delivered by the sender, unless a catch-up pass brought it.
    pub arrival: crate::domain::Arrival,
}

/// Where to post back. Fields a sender does not have stay empty.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    /// ServiceNow table, e.g. `incident`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// ServiceNow record sys_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sys_id: Option<String>,
    /// ServiceNow number (`INC0010001`), GitHub issue/PR number, PagerDuty incident number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// GitHub `owner/repo`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// GitHub commit sha (push head, PR head), for commit statuses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
    /// PagerDuty incident id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// Human link to the ticket (GitHub / PagerDuty `html_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// A string at a JSON pointer, accepting numbers too and ServiceNow's
/// `{"value": …, "display_value": …}` objects.
pub fn text_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => match o.get("value") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// True when any string in the document holds a NUL, which Postgres text and jsonb refuse.
pub fn contains_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(contains_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}
