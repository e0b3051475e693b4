//! What the admin API and the `simulate` / `events` / `replay` commands share: the dry
//! evaluation of a delivery against the current rules. Queries live in `store::admin`.

use crate::error::ApiError;
use crate::mapping::{Decision, EventView, Mappings, TemplateRef};
use crate::sources::Sources;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use uuid::Uuid;

/// Stands in for the event and launch ids in a simulated request's markers.
pub const SIMULATED: &str = "<simulated>";

/// Turns `{"Name": "value", …}` pairs into a header map, naming the header that is invalid.
pub fn header_map<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<HeaderMap, ApiError> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let n = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| ApiError::bad_request(format!("`{name}` is not a valid header name")))?;
        let v = HeaderValue::from_str(value.trim()).map_err(|_| {
            ApiError::bad_request(format!("the value of header `{name}` is not valid"))
        })?;
        map.append(n, v);
    }
    Ok(map)
}

/// Runs what `POST /hooks/{source}` and the dispatcher would do with this delivery, without the
/// signature check and without storing or launching anything.
///
/// The answer: the normalized `event`; `ignored` (the reason, or null); the `state` the event
/// would reach (`ignored`, `dispatched`, `unmapped` or `failed`) and its `reason`; the rules'
/// `decision` (null when ignored: ignored events never reach the rules); and the `launches`
/// that would be planned, each with its `request` as sent to the controller, the marker
/// variables holding `"<simulated>"`.
pub fn simulate(
    sources: &Sources,
    mappings: &Mappings,
    source: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, ApiError> {
    let src = sources.get(source).ok_or_else(|| {
        let mut names: Vec<&str> = sources.keys().map(String::as_str).collect();
        names.sort_unstable();
        ApiError::not_found(format!(
            "unknown source `{source}` (configured: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    })?;
    if body.len() > src.body_limit {
        return Err(ApiError::too_large(src.body_limit));
    }
    let event = src.normalize_unverified(headers, body)?;
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
        "payload": view.payload,
    });
    if let Some(reason) = &event.ignored {
        return Ok(json!({
            "event": shown,
            "ignored": reason,
            "state": "ignored",
            "reason": reason,
            "decision": null,
            "launches": [],
        }));
    }
    let decision = mappings.evaluate(&view);
    let (state, reason) = outcome(&decision);
    let launches: Vec<Value> = decision
        .planned
        .iter()
        .map(|p| {
            json!({
                "rule": p.rule,
                "template": template_json(&p.template),
                "reply": p.reply,
                "request": simulated_request(&p.request),
            })
        })
        .chain(decision.refused.iter().map(|r| {
            json!({
                "rule": r.launch.rule,
                "template": template_json(&r.launch.template),
                "reply": r.launch.reply,
                "request": simulated_request(&r.launch.request),
                "refused": r.reason,
            })
        }))
        .collect();
    Ok(json!({
        "event": shown,
        "ignored": null,
        "state": state,
        "reason": reason,
        "decision": decision,
        "launches": launches,
    }))
}

/// The state and reason the dispatcher would record (see `workers::dispatcher`).
fn outcome(d: &Decision) -> (&'static str, Option<String>) {
    match (d.planned.is_empty(), d.problems()) {
        (false, problems) => ("dispatched", problems),
        (true, Some(problems)) => ("failed", Some(problems)),
        (true, None) => ("unmapped", Some(d.reason())),
    }
}

fn simulated_request(request: &Value) -> Value {
    let mut req = crate::workers::with_marker(request, Uuid::nil(), Uuid::nil());
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
        assert!(err.message.contains("Bad Name"), "{err}");
        let err = header_map([("X-Ok", "line\nbreak")]).unwrap_err();
        assert!(err.message.contains("X-Ok"), "{err}");
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
