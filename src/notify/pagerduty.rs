//! PagerDuty: a note on the incident.

use super::{checked_field, Message, Prepared, Quote};
use serde_json::{json, Value};

/// `POST /incidents/{id}/notes` with `{"note": {"content": text}}`.
pub(super) fn prepare(ticket: &Value, msg: &Message) -> Result<Prepared, String> {
    let id = checked_field(
        ticket,
        "incident_id",
        "a PagerDuty incident id ([A-Z0-9]+)",
        |s| {
            (1..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        },
    )?;
    Ok(Prepared {
        method: "POST".into(),
        path: format!("/incidents/{id}/notes"),
        body: json!({ "note": { "content": msg.text(Quote::Plain) } }),
    })
}
