//! ServiceNow: records of the table updated since the checkpoint (less the overlap), read with
//! `GET /api/now/table/{table}` in `sys_updated_on` order, each stored through the source's own
//! normalizer, so its dedupe key is the one a business-rule delivery of that record version
//! has. A late business-rule call is then a duplicate, and two passes cannot store it twice.
//!
//! Paging: ServiceNow has only limit/offset, and a record updated while a pass pages moves to
//! the end, shifting every later offset. So each page starts at the last `sys_updated_on` seen
//! (`>=`), and the offset only skips the records of that same second already read.

use super::{db, describe, Summary};
use crate::config::{ServiceNowPlan, SnAuth, Versions};
use crate::event::{text_at, Event};
use crate::sources::Source;
use crate::store::catch_up as store;
use crate::store::events::{insert_batch, Arrival, Insert, NewEvent};
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

const PAGE: u32 = 100;
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
/// Always read, whatever `fields` says: the record's identity, its category and who updated it.
const NEEDED: &[&str] = &[
    "sys_id",
    "sys_updated_on",
    "sys_mod_count",
    "sys_updated_by",
    "sys_class_name",
    "number",
    "category",
];

type Record = Map<String, Value>;

pub struct ServiceNow {
    plan: ServiceNowPlan,
    http: reqwest::Client,
    auth: HeaderValue,
    source: Arc<Source>,
    /// `field=value` conditions of the query, checked on every record read.
    guard: Vec<(String, String)>,
    fields: Option<String>,
}

impl ServiceNow {
    pub fn new(plan: ServiceNowPlan, source: Arc<Source>) -> Result<Self, String> {
        let http = super::http_client(&plan.pace)?;
        let auth = match &plan.auth {
            SnAuth::Bearer(t) => format!("Bearer {}", t.expose_secret()),
            SnAuth::Basic { username, password } => {
                let pair = format!("{username}:{}", password.expose_secret());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        };
        let mut auth = HeaderValue::from_str(&auth)
            .map_err(|_| "catch_up credentials are not a valid header value".to_string())?;
        auth.set_sensitive(true);
        let guard = plan
            .query
            .as_deref()
            .map(super::query::equalities)
            .unwrap_or_default();
        let fields = plan.fields.as_ref().map(|f| {
            let mut all: Vec<String> = NEEDED.iter().map(|s| s.to_string()).collect();
            all.extend(guard.iter().map(|(f, _)| f.clone()));
            all.extend(f.iter().cloned());
            let mut seen = std::collections::HashSet::new();
            all.retain(|f| seen.insert(f.clone()));
            all.join(",")
        });
        Ok(ServiceNow {
            plan,
            http,
            auth,
            source,
            guard,
            fields,
        })
    }

    pub async fn pass(
        &self,
        pool: &PgPool,
        name: &str,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let scope = format!("table {}", self.plan.table);
        let overlap = chrono::Duration::seconds(self.plan.pace.overlap_secs as i64);
        let lookback = chrono::Duration::seconds(self.plan.lookback_secs as i64);
        let checkpoint = store::checkpoint(pool, name, &scope).await.map_err(db)?;
        let from = since
            .or(checkpoint.map(|c| c - overlap))
            .unwrap_or_else(|| Utc::now() - lookback);
        summary.since = from;
        let (mut cursor, mut ties) = (from.naive_utc(), 0u32);
        let mut newest: Option<NaiveDateTime> = None;
        let max = self.plan.pace.max_per_run;
        loop {
            let left = max.saturating_sub(summary.examined);
            if left == 0 {
                summary.stop(format!(
                    "max_per_run ({max}) records read; the next pass continues from {}",
                    cursor.format(TIME_FORMAT)
                ));
                break;
            }
            let limit = left.min(PAGE);
            let records = self.page(cursor, limit, ties).await?;
            summary.pages += 1;
            summary.examined += records.len() as u32;
            let Some(last) = records.last() else {
                break;
            };
            self.check(&records)?;
            let last = updated_on(last)?;
            let same = records
                .iter()
                .filter(|r| updated_on(r).ok() == Some(last))
                .count() as u32;
            ties = if last == cursor { ties + same } else { same };
            cursor = last;
            newest = newest.max(Some(last));
            let full = records.len() as u32 == limit;
            self.store(pool, name, records, summary).await?;
            if !full {
                break;
            }
        }
        if let Some(n) = newest {
            store::advance(pool, name, &scope, n.and_utc())
                .await
                .map_err(db)?;
        }
        Ok(())
    }

    /// The records updated at or after `from`, in time order, skipping `skip` of them.
    async fn page(
        &self,
        from: NaiveDateTime,
        limit: u32,
        skip: u32,
    ) -> Result<Vec<Record>, String> {
        let mut query = format!("sys_updated_on>={}", from.format(TIME_FORMAT));
        if let Some(q) = &self.plan.query {
            query.push('^');
            query.push_str(q);
        }
        // Without ORDERBY the Table API returns rows in no particular order.
        query.push_str("^ORDERBYsys_updated_on^ORDERBYsys_id");
        let url = format!(
            "{}/api/now/table/{}",
            self.plan.instance_url, self.plan.table
        );
        let mut params = vec![
            ("sysparm_query", query),
            ("sysparm_limit", limit.to_string()),
            ("sysparm_offset", skip.to_string()),
            ("sysparm_exclude_reference_link", "true".into()),
            ("sysparm_display_value", "false".into()),
        ];
        if let Some(f) = &self.fields {
            params.push(("sysparm_fields", f.clone()));
        }
        let resp = self
            .http
            .get(&url)
            .query(&params)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(describe)?;
        let status = resp.status().as_u16();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("HTTP {status}: unreadable answer: {}", describe(e)))?;
        if !(200..300).contains(&status) {
            let message = text_at(&body, "/error/message").unwrap_or_else(|| "no message".into());
            return Err(format!("HTTP {status} from the Table API: {message}"));
        }
        let Some(Value::Array(rows)) = body.get("result").cloned() else {
            return Err("the Table API answer has no `result` list".into());
        };
        rows.into_iter()
            .map(|r| match r {
                Value::Object(o) => Ok(o),
                _ => Err("the Table API returned a row that is not an object".to_string()),
            })
            .collect()
    }

    /// ServiceNow drops a condition on a field it does not know and returns everything else;
    /// a record that does not satisfy `field=value` shows it happened. Nothing of the page is
    /// stored then.
    fn check(&self, records: &[Record]) -> Result<(), String> {
        let doc = |r: &Record| Value::Object(r.clone());
        for r in records {
            for (field, want) in &self.guard {
                let got = text_at(&doc(r), &format!("/{field}"));
                if !got.as_deref().is_some_and(|g| g.eq_ignore_ascii_case(want)) {
                    return Err(format!(
                        "record {} has {field} = {:?}, but catch_up.query asks for \
                         {field}={want}: the instance ignored that condition (is `{field}` a \
                         field of table {}?). Nothing of this page was stored",
                        text_at(&doc(r), "/sys_id").unwrap_or_default(),
                        got.unwrap_or_default(),
                        self.plan.table
                    ));
                }
            }
        }
        Ok(())
    }

    async fn store(
        &self,
        pool: &PgPool,
        name: &str,
        records: Vec<Record>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let count = |result: &'static str, n: usize| {
            metrics::counter!("aap_bridge_catch_up_records_total",
                "source" => name.to_string(), "result" => result)
            .increment(n as u64);
        };
        let mut events = Vec::new();
        for r in records {
            let by = r
                .get("sys_updated_by")
                .and_then(Value::as_str)
                .unwrap_or("");
            if self.plan.skip_updated_by.iter().any(|u| u == by) {
                summary.skipped += 1;
                count("skipped", 1);
                continue;
            }
            events.push(self.event(r)?);
        }
        let sys_ids: Vec<String> = events
            .iter()
            .filter_map(|e| e.ticket.sys_id.clone())
            .collect();
        let known = store::known_records(pool, name, &sys_ids)
            .await
            .map_err(db)?;
        let mut fresh: Vec<(Uuid, &Event)> = Vec::new();
        for e in &events {
            let same_key = known
                .iter()
                .any(|k| k.dedupe_key.as_deref() == Some(&e.dedupe_key));
            let same_category = known.iter().any(|k| {
                k.sys_id == e.ticket.sys_id.as_deref().unwrap_or("") && k.category == e.category
            });
            if same_key {
                summary.duplicates += 1;
                count("duplicate", 1);
            } else if same_category && self.plan.versions == Versions::CategoryChange {
                summary.skipped += 1;
                count("skipped", 1);
            } else {
                fresh.push((Uuid::now_v7(), e));
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let rows: Vec<NewEvent> = fresh
            .iter()
            .map(|(id, e)| NewEvent::pending(*id, e))
            .collect();
        let results = insert_batch(pool, &rows).await.map_err(db)?;
        for ((id, _), result) in fresh.iter().zip(results) {
            match result {
                Insert::New => {
                    summary.stored += 1;
                    summary.events.push(*id);
                    count("stored", 1);
                }
                Insert::Existing(_) => {
                    summary.duplicates += 1;
                    count("duplicate", 1);
                }
            }
        }
        Ok(())
    }

    /// The record as a business rule would send it (plus `table` and `operation`), normalized
    /// by the source. The bridge read it itself over an authenticated API: nothing to verify.
    fn event(&self, mut r: Record) -> Result<Event, String> {
        let operation = match r.get("sys_mod_count").and_then(Value::as_str) {
            Some("0") => "insert",
            _ => "update",
        };
        r.entry("table")
            .or_insert_with(|| Value::from(self.plan.table.clone()));
        r.entry("operation")
            .or_insert_with(|| Value::from(operation));
        let body = serde_json::to_vec(&Value::Object(r)).map_err(|e| e.to_string())?;
        let mut event = self
            .source
            .normalize_unverified(&axum::http::HeaderMap::new(), &body)
            .map_err(|e| format!("a record could not be stored: {}", e.message))?;
        event.arrival = Arrival::CaughtUp;
        Ok(event)
    }
}

/// `sys_updated_on` as the Table API gives it (UTC, `2026-11-22 10:00:00`).
fn updated_on(r: &Record) -> Result<NaiveDateTime, String> {
    let text = r
        .get("sys_updated_on")
        .and_then(Value::as_str)
        .unwrap_or("");
    NaiveDateTime::parse_from_str(text, TIME_FORMAT).map_err(|_| {
        format!(
            "record {} has no readable sys_updated_on (`{text}`)",
            r.get("sys_id").and_then(Value::as_str).unwrap_or("?")
        )
    })
}
