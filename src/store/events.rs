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

/// What happened to one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    New,
    /// The same (source, delivery id) was already stored under this id.
    Existing(Uuid),
}

/// Inserts events whose (source, delivery_id) are distinct, in one statement (one commit).
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
    let ticket: Vec<String> = items
        .iter()
        .map(|(_, e)| serde_json::to_string(&e.ticket).unwrap_or_else(|_| "{}".into()))
        .collect();
    let headers: Vec<String> = items
        .iter()
        .map(|(_, e)| serde_json::Value::Object(e.headers.clone()).to_string())
        .collect();
    let inserted: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO events (id, source, kind, delivery_id, event_type, category, ticket, headers,
                             payload, state, state_reason)
         SELECT id, source, kind, delivery_id, event_type, category, ticket::jsonb, headers::jsonb,
                payload::json, state, state_reason
         FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
              AS t(id, source, kind, delivery_id, event_type, category, ticket, headers, payload,
                   state, state_reason)
         ON CONFLICT (source, delivery_id) DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .bind(&source)
    .bind(&kind)
    .bind(&delivery)
    .bind(&etype)
    .bind(&category)
    .bind(&ticket)
    .bind(&headers)
    .bind(&payload)
    .bind(&state)
    .bind(&reason)
    .fetch_all(pool)
    .await?;

    if inserted.len() == n {
        return Ok(vec![Insert::New; n]);
    }
    // Some were already there: look up their ids (a new statement sees rows other writers committed).
    let inserted: std::collections::HashSet<Uuid> = inserted.into_iter().collect();
    let (dup_sources, dup_deliveries): (Vec<String>, Vec<String>) = items
        .iter()
        .filter(|(id, _)| !inserted.contains(id))
        .map(|(_, e)| (e.source.clone(), e.delivery_id.clone()))
        .unzip();
    let rows: Vec<(String, String, Uuid)> = sqlx::query_as(
        "SELECT e.source, e.delivery_id, e.id FROM events e
         JOIN UNNEST($1::text[], $2::text[]) AS k(source, delivery_id)
           ON e.source = k.source AND e.delivery_id = k.delivery_id",
    )
    .bind(&dup_sources)
    .bind(&dup_deliveries)
    .fetch_all(pool)
    .await?;
    let existing: HashMap<(String, String), Uuid> =
        rows.into_iter().map(|(s, d, id)| ((s, d), id)).collect();
    items
        .iter()
        .map(|(id, e)| {
            if inserted.contains(id) {
                return Ok(Insert::New);
            }
            existing
                .get(&(e.source.clone(), e.delivery_id.clone()))
                .map(|eid| Insert::Existing(*eid))
                .ok_or_else(|| sqlx::Error::RowNotFound)
        })
        .collect()
}
