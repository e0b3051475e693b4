//! The one event shape every sender is normalized into. Mapping rules are written against it.

use crate::config::SourceKind;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

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
    pub payload: Payload,
    /// Set when the event is authentic but not for us (ping, our own post-back).
    pub ignored: Option<String>,
    /// Delivered by the sender, unless a catch-up pass brought it.
    pub arrival: crate::domain::Arrival,
}

/// A sender's JSON document: its text as sent (what is stored) and its parsed form, each made
/// from the other only when first read. At ingest the text is all there is: the sources read
/// their few fields without parsing the document (`sources::pick`), and it is parsed only if a
/// rule's template reads it. Cheap to clone.
#[derive(Clone, Default)]
pub struct Payload(Arc<Forms>);

#[derive(Default)]
struct Forms {
    text: OnceLock<String>,
    value: OnceLock<Value>,
}

impl Payload {
    /// Text already checked to be a JSON object.
    pub fn from_text(text: String) -> Self {
        let forms = Forms::default();
        let _ = forms.text.set(text);
        Payload(Arc::new(forms))
    }

    pub fn from_value(value: Value) -> Self {
        let forms = Forms::default();
        let _ = forms.value.set(value);
        Payload(Arc::new(forms))
    }

    pub fn text(&self) -> &str {
        let forms = &self.0;
        forms
            .text
            .get_or_init(|| forms.value.get().map(Value::to_string).unwrap_or_default())
    }

    /// Whether the parsed form exists yet (tests show what does not parse it).
    pub fn is_parsed(&self) -> bool {
        self.0.value.get().is_some()
    }

    pub fn value(&self) -> &Value {
        let forms = &self.0;
        forms.value.get_or_init(|| {
            // The text was checked at normalization; Null only if that promise were broken.
            forms
                .text
                .get()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default()
        })
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Payload::from_value)
    }
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
