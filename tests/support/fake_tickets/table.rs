//! The read side of the ServiceNow Table API: `GET /api/now/table/{table}` with `sysparm_query`
//! (`field>=value`, `>`, `<=`, `<`, `=`, `!=`, `^` for AND, `ORDERBY` / `ORDERBYDESC`),
//! `sysparm_limit`, `sysparm_offset`, `sysparm_fields`, and `X-Total-Count`. As on a real
//! instance, a condition on a field the table does not have is silently dropped, and without
//! `ORDERBY` rows come back in no particular order (here: newest first).

use super::{resp, FakeTickets, Resp};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

type Row = Map<String, Value>;

#[derive(Default)]
pub struct Tables {
    rows: BTreeMap<String, Vec<Row>>,
    /// `sysparm_query` of each read.
    queries: Vec<String>,
}

impl FakeTickets {
    /// Inserts the record, or replaces the one with the same `sys_id`.
    pub fn servicenow_put_record(&self, table: &str, record: Value) {
        let Value::Object(row) = record else {
            panic!("a record is a JSON object")
        };
        let mut st = self.st();
        let rows = st.tables.rows.entry(table.to_string()).or_default();
        rows.retain(|r| r.get("sys_id") != row.get("sys_id"));
        rows.push(row);
    }

    /// The `sysparm_query` of every Table API read.
    pub fn servicenow_table_queries(&self) -> Vec<String> {
        self.st().tables.queries.clone()
    }
}

/// A field as text (`{"value": …}` objects too).
fn text(row: &Row, field: &str) -> String {
    match row.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o.get("value").and_then(Value::as_str).unwrap_or("").into(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn holds(row: &Row, field: &str, op: &str, want: &str) -> bool {
    let got = text(row, field);
    match op {
        "=" => got.eq_ignore_ascii_case(want),
        "!=" => !got.eq_ignore_ascii_case(want),
        ">=" => got.as_str() >= want,
        "<=" => got.as_str() <= want,
        ">" => got.as_str() > want,
        "<" => got.as_str() < want,
        _ => true,
    }
}

pub fn list(t: &mut Tables, table: &str, query: &str) -> Resp {
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let q = params.get("sysparm_query").cloned().unwrap_or_default();
    t.queries.push(q.clone());
    let rows = t.rows.get(table).cloned().unwrap_or_default();
    let known: BTreeSet<&String> = rows.iter().flat_map(|r| r.keys()).collect();
    let mut conditions = Vec::new();
    let mut order: Vec<(String, bool)> = Vec::new();
    for part in q.split('^').filter(|p| !p.is_empty()) {
        if let Some(f) = part.strip_prefix("ORDERBYDESC") {
            order.push((f.to_string(), true));
        } else if let Some(f) = part.strip_prefix("ORDERBY") {
            order.push((f.to_string(), false));
        } else if let Some(i) = part.find(['=', '!', '<', '>']) {
            let (field, rest) = part.split_at(i);
            let op = ["!=", ">=", "<=", "=", ">", "<"]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .unwrap_or("=");
            // Unknown fields are dropped, as ServiceNow does.
            if known.contains(&field.to_string()) {
                conditions.push((field.to_string(), op, rest[op.len()..].to_string()));
            }
        }
    }
    let mut hits: Vec<Row> = rows
        .into_iter()
        .filter(|r| conditions.iter().all(|(f, op, v)| holds(r, f, op, v)))
        .collect();
    if order.is_empty() {
        hits.reverse();
    }
    hits.sort_by(|a, b| {
        for (f, desc) in &order {
            let o = text(a, f).cmp(&text(b, f));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
    let total = hits.len();
    let num = |k: &str, d: usize| params.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (offset, limit) = (num("sysparm_offset", 0), num("sysparm_limit", 10_000));
    let fields: Option<Vec<String>> = params
        .get("sysparm_fields")
        .map(|f| f.split(',').map(str::to_string).collect());
    let page: Vec<Value> = hits
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| match &fields {
            Some(fs) => Value::Object(r.into_iter().filter(|(k, _)| fs.contains(k)).collect()),
            None => Value::Object(r),
        })
        .collect();
    let mut r = resp(200, json!({ "result": page }));
    r.headers.push(("x-total-count", total.to_string()));
    r
}
