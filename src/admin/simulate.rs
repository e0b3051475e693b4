//! The dry evaluation of a delivery against the current rules: what `POST /hooks/{source}` and
//! the dispatcher would do with it, without the signature check and without storing anything.

use super::{Error, Result};
use crate::mapping::{Decision, EventView, Mappings, Reply, TemplateRef};
use crate::sources::Sources;
use crate::store::events::EventState;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Stands in for the event and launch ids in a simulated request's markers.
pub const SIMULATED: &str = "<simulated>";

/// Turns `{"Name": "value", …}` pairs into a header map, naming the header that is invalid.
pub fn header_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| Error::Invalid(format!("`{name}` is not a valid header name")))?;
        let v = HeaderValue::from_str(value.trim())
            .map_err(|_| Error::Invalid(format!("the value of header `{name}` is not valid")))?;
        map.append(n, v);
    }
    Ok(map)
}

/// The answer of a simulation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Simulation {
    /// The normalized event, with `"<simulated>"` as its id.
    #[schema(value_type = Object)]
    pub event: Value,
    /// Why the event would be ignored at intake, or null.
    pub ignored: Option<String>,
    /// The state the event would reach: `ignored`, `dispatched`, `unmapped` or `failed`.
    pub state: EventState,
    pub reason: Option<String>,
    /// What the rules made of it (null when ignored: ignored events never reach the rules):
    /// `planned`, `refused`, `failed` and `skipped` (with why) rules.
    #[schema(value_type = Option<Object>)]
    pub decision: Option<Decision>,
    /// The launches that would be planned (or refused), each with its request.
    pub launches: Vec<SimulatedLaunch>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SimulatedLaunch {
    pub rule: String,
    /// `kind`, `id` or `name` (+ `organization`), and `text`.
    #[schema(value_type = Object)]
    pub template: Value,
    /// How the outcome would be posted back (`work_notes`, `comment`, …).
    #[schema(value_type = String)]
    pub reply: Reply,
    /// The body sent to the controller, the marker variables holding `"<simulated>"`.
    #[schema(value_type = Object)]
    pub request: Value,
    /// Why the rendered request was refused (never sent), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// Runs what `POST /hooks/{source}` and the dispatcher would do with this delivery.
pub fn simulate(
    sources: &Sources,
    mappings: &Mappings,
    source: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Simulation> {
    let src = sources.get(source).ok_or_else(|| {
        let mut names: Vec<&str> = sources.keys().map(String::as_str).collect();
        names.sort_unstable();
        Error::NotFound(format!(
            "unknown source `{source}` (configured: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })?;
    if body.len() > src.body_limit {
        return Err(Error::TooLarge(src.body_limit));
    }
    let event = src
        .normalize_unverified(headers, body)
        .map_err(|e| match e.status {
            StatusCode::PAYLOAD_TOO_LARGE => Error::TooLarge(src.body_limit),
            _ => Error::Invalid(e.message),
        })?;
    let received_at = chrono::Utc::now();
    let view = EventView::from_event(Uuid::nil(), &event, received_at);
    let shown = json!({
        "id": SIMULATED,
        "source": view.source,
        "kind": view.kind,
        "delivery_id": view.delivery_id,
        "event_type": view.event_type,
        "category": view.category,
        "ticket": view.ticket,
        "headers": event.headers,
        "received_at": received_at,
        "payload": view.payload.value(),
    });
    if let Some(reason) = &event.ignored {
        return Ok(Simulation {
            event: shown,
            ignored: Some(reason.clone()),
            state: EventState::Ignored,
            reason: Some(reason.clone()),
            decision: None,
            launches: Vec::new(),
        });
    }
    let decision = mappings.evaluate(&view);
    // The same function the dispatcher settles events with.
    let (state, reason) = crate::decide::outcome(&view, &decision);
    let launches = decision
        .planned
        .iter()
        .map(|p| (p, None))
        .chain(
            decision
                .refused
                .iter()
                .map(|r| (&r.launch, Some(r.reason.clone()))),
        )
        .map(|(p, refused)| SimulatedLaunch {
            rule: p.rule.clone(),
            template: template_json(&p.template),
            reply: p.reply,
            request: simulated_request(&p.request),
            refused,
        })
        .collect();
    Ok(Simulation {
        event: shown,
        ignored: None,
        state,
        reason,
        decision: Some(decision),
        launches,
    })
}

fn simulated_request(request: &Value) -> Value {
    let mut req = crate::launch::with_marker(request, Uuid::nil().into(), Uuid::nil().into());
    if let Some(vars) = req.get_mut("extra_vars").and_then(Value::as_object_mut) {
        for key in ["aap_bridge_event_id", "aap_bridge_launch_id"] {
            if vars.contains_key(key) {
                vars.insert(key.into(), json!(SIMULATED));
            }
        }
    }
    req
}

fn template_json(t: &TemplateRef) -> Value {
    match t {
        TemplateRef::Id { kind, id } => json!({
            "kind": kind, "id": id, "text": t.to_string(),
        }),
        TemplateRef::Name {
            kind,
            name,
            organization,
        } => json!({
            "kind": kind, "name": name, "organization": organization, "text": t.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_names_the_bad_header() {
        let err = header_map([("Bad Name", "x")]).unwrap_err();
        assert!(err.to_string().contains("Bad Name"), "{err}");
        let err = header_map([("X-Ok", "line\nbreak")]).unwrap_err();
        assert!(err.to_string().contains("X-Ok"), "{err}");
        let map = header_map([(" X-GitHub-Event ", " issues ")]).unwrap();
        assert_eq!(map["x-github-event"], "issues");
    }

    #[test]
    fn markers_are_placeholders() {
        let req = simulated_request(&json!({"extra_vars": {"a": 1}, "limit": "web"}));
        assert_eq!(req["extra_vars"]["a"], 1);
        assert_eq!(req["extra_vars"]["aap_bridge_event_id"], SIMULATED);
        assert_eq!(req["extra_vars"]["aap_bridge_launch_id"], SIMULATED);
        assert_eq!(req["limit"], "web");
    }
}
