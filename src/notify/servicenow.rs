//! ServiceNow: a work note or an additional comment on the record, through the Table API.

use super::{checked_field, Message, Prepared, Quote};
use crate::domain::ticket::{valid_sys_id, valid_table};
use crate::domain::Reply;
use serde_json::{json, Value};

/// `PATCH /api/now/table/{table}/{sys_id}` with `{"work_notes": text}` or `{"comments": text}`.
pub(super) fn prepare(reply: Reply, ticket: &Value, msg: &Message) -> Result<Prepared, String> {
    let field = match reply {
        Reply::WorkNotes => "work_notes",
        Reply::Comments => "comments",
        other => return Err(format!("servicenow cannot reply with `{}`", other.as_str())),
    };
    let table = checked_field(ticket, "table", "a table name ([a-z0-9_]+)", valid_table)?;
    let sys_id = checked_field(ticket, "sys_id", "a sys_id (32 hex digits)", valid_sys_id)?;
    Ok(Prepared {
        method: "PATCH".into(),
        path: format!("/api/now/table/{table}/{sys_id}"),
        body: json!({ field: msg.text(Quote::Plain) }),
    })
}
