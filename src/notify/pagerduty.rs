//! PagerDuty: a note on the incident.

use super::{Message, Prepared, Quote};
use serde_json::json;

/// `POST /incidents/{id}/notes` with `{"note": {"content": text}}`.
pub(super) fn prepare(incident_id: &str, msg: &Message) -> Result<Prepared, String> {
    Ok(Prepared {
        method: "POST".into(),
        path: format!("/incidents/{incident_id}/notes"),
        body: json!({ "note": { "content": msg.text(Quote::Plain) } }),
    })
}
