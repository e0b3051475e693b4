//! ServiceNow: a work note or an additional comment on the record, through the Table API.

use super::{Message, Prepared, Quote};
use crate::domain::Reply;
use serde_json::json;

/// `PATCH /api/now/table/{table}/{sys_id}` with `{"work_notes": text}` or `{"comments": text}`.
pub(super) fn prepare(
    reply: Reply,
    table: &str,
    sys_id: &str,
    msg: &Message,
) -> Result<Prepared, String> {
    let field = match reply {
        Reply::WorkNotes => "work_notes",
        Reply::Comments => "comments",
        other => return Err(format!("servicenow cannot reply with `{}`", other.as_str())),
    };
    Ok(Prepared {
        method: "PATCH".into(),
        path: format!("/api/now/table/{table}/{sys_id}"),
        body: json!({ field: msg.text(Quote::Plain) }),
    })
}
