//! The `events` inbox table.

use crate::event::Event;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

crate::text_enum! {
    /// `pending` until the dispatcher decides; `ignored` at ingest (pings, own notes).
    pub enum EventState {
        Pending => "pending",
        Dispatched => "dispatched",
        Unmapped => "unmapped",
        Ignored => "ignored",
        Failed => "failed",
    }
}

crate::text_enum! {
    /// How an event reached the bridge.
    pub enum Arrival {
        /// Sent by the sender on its own.
        Delivered => "delivered",
        /// A GitHub delivery this bridge asked GitHub to send again (catch-up).
        Redelivered => "redelivered",
        /// Read from the ServiceNow Table API by a catch-up pass.
        CaughtUp => "caught_up",
    }
}

/// What happened to one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    New,
    /// The same (source, dedupe key) was seen before, first as this event (maybe since pruned).
    Existing(Uuid),
}

/// Inserts events whose (source, dedupe_key) are distinct, in one statement (one commit); a key
/// seen before, on a stored event or a pruned one, makes the event `Existing`.
/// The group-commit insert (public so `bench explain` shows the plan of this very statement).
pub const INSERT_EVENTS: &str = "WITH t AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                  $11::text[], $12::text[], $13::text[])
                  AS t(id, source, kind, delivery_id, dedupe_key, event_type, category, ticket,
                       headers, payload, state, state_reason, arrival))
         INSERT INTO events (id, source, kind, delivery_id, dedupe_key, event_type, category,
                             ticket, headers, payload, state, state_reason, arrival)
         SELECT t.id, source, kind, delivery_id, dedupe_key, event_type, category, ticket::jsonb,
                headers::jsonb, payload::json, state, state_reason,
                CASE WHEN t.kind = 'github' AND t.arrival = 'delivered'
                      AND EXISTS (SELECT 1 FROM catch_up_redeliveries r
                                  WHERE r.source = t.source AND r.delivery_id = t.delivery_id)
                     THEN 'redelivered' ELSE t.arrival END
         FROM t
         WHERE NOT EXISTS (SELECT 1 FROM dedupe d
                           WHERE d.source = t.source AND d.dedupe_key = t.dedupe_key)
         ON CONFLICT (source, dedupe_key) DO NOTHING
         RETURNING id";

pub async fn insert_batch(
    pool: &PgPool,
    items: &[(Uuid, &Event)],
) -> Result<Vec<Insert>, sqlx::Error> {
    let n = items.len();
    let ids: Vec<Uuid> = items.iter().map(|(id, _)| *id).collect();
    let col = |f: fn(&Event) -> Option<&str>| -> Vec<Option<&str>> {
        items.iter().map(|(_, e)| f(e)).collect()
    };
    let source = col(|e| Some(&e.source));
    let kind = col(|e| Some(e.kind.as_str()));
    let delivery = col(|e| Some(&e.delivery_id));
    let dedupe = col(|e| Some(&e.dedupe_key));
    let etype = col(|e| Some(&e.event_type));
    let category = col(|e| e.category.as_deref());
    let payload = col(|e| Some(&e.payload_text));
    let state = col(|e| {
        Some(if e.ignored.is_some() {
            EventState::Ignored.as_str()
        } else {
            EventState::Pending.as_str()
        })
    });
    let reason = col(|e| e.ignored.as_deref());
    let arrival = col(|e| Some(e.arrival.as_str()));
    let ticket: Vec<String> = items
        .iter()
        .map(|(_, e)| serde_json::to_string(&e.ticket).unwrap_or_else(|_| "{}".into()))
        .collect();
    let headers: Vec<String> = items
        .iter()
        .map(|(_, e)| serde_json::Value::Object(e.headers.clone()).to_string())
        .collect();
    // A key already on a stored event conflicts on `events_dedupe`; a key of a pruned event is
    // in `dedupe` (retention copies it there as it deletes the event, under a table lock that
    // waits for this statement, so the two cannot interleave). A GitHub delivery whose id a
    // catch-up pass asked GitHub to redeliver arrived by that redelivery.
    let inserted: Vec<Uuid> = sqlx::query_scalar(INSERT_EVENTS)
        .bind(&ids)
        .bind(&source)
        .bind(&kind)
        .bind(&delivery)
        .bind(&dedupe)
        .bind(&etype)
        .bind(&category)
        .bind(&ticket)
        .bind(&headers)
        .bind(&payload)
        .bind(&state)
        .bind(&reason)
        .bind(&arrival)
        .fetch_all(pool)
        .await?;

    if inserted.len() == n {
        return Ok(vec![Insert::New; n]);
    }
    // Some were seen before: look up their first events (a new statement sees rows other
    // writers committed meanwhile).
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    let (dup_sources, dup_keys): (Vec<String>, Vec<String>) = items
        .iter()
        .filter(|(id, _)| !inserted.contains(id))
        .map(|(_, e)| (e.source.clone(), e.dedupe_key.clone()))
        .unzip();
    let rows: Vec<(String, String, Uuid)> = sqlx::query_as(
        "SELECT e.source, e.dedupe_key, e.id FROM events e
         JOIN UNNEST($1::text[], $2::text[]) AS k(source, dedupe_key)
           ON e.source = k.source AND e.dedupe_key = k.dedupe_key
         UNION ALL
         SELECT d.source, d.dedupe_key, d.event_id FROM dedupe d
         JOIN UNNEST($1::text[], $2::text[]) AS k(source, dedupe_key)
           ON d.source = k.source AND d.dedupe_key = k.dedupe_key",
    )
    .bind(&dup_sources)
    .bind(&dup_keys)
    .fetch_all(pool)
    .await?;
    let existing: HashMap<(String, String), Uuid> =
        rows.into_iter().map(|(s, k, id)| ((s, k), id)).collect();
    items
        .iter()
        .map(|(id, e)| {
            if inserted.contains(id) {
                return Ok(Insert::New);
            }
            existing
                .get(&(e.source.clone(), e.dedupe_key.clone()))
                .map(|eid| Insert::Existing(*eid))
                .ok_or_else(|| sqlx::Error::RowNotFound)
        })
        .collect()
}
