//! The `events` inbox table.

pub use crate::domain::{Arrival, EventState};
use crate::event::Event;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

/// What happened to one event of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    New,
    /// The same (source, dedupe key) was seen before, first as this event (maybe since pruned).
    Existing(Uuid),
}

/// An event as the commit writer stores it.
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub event: &'a Event,
    /// Decided at ingest (`decide`): stored final, with its launches. None: `pending` (or
    /// `ignored`), for the dispatcher.
    pub decided: Option<&'a Decided>,
}

impl<'a> NewEvent<'a> {
    pub fn pending(id: Uuid, event: &'a Event) -> Self {
        NewEvent {
            id,
            event,
            decided: None,
        }
    }
}

/// An event's final state and decision, and its launches, settled before its commit.
#[derive(Debug, Clone)]
pub struct Decided {
    /// When the event arrived, as the rules saw it (`event.received_at`).
    pub received_at: DateTime<Utc>,
    pub state: EventState,
    pub reason: Option<String>,
    /// The stored form (`Decision::stored`).
    pub decision: Value,
    /// The rules that decided it (`Mappings::version`).
    pub rules_version: String,
    pub launches: Vec<crate::launch::NewLaunch>,
}

/// Inserts events whose (source, dedupe_key) are distinct, in one statement (one commit), with
/// the launches of those decided at ingest; a key seen before, on a stored event or a pruned
/// one, makes the event `Existing` (and its launches are not inserted).
/// The group-commit insert (public so `bench explain` shows the plan of this very statement).
pub const INSERT_EVENTS: &str = "WITH t AS (
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                                  $11::text[], $12::text[], $13::text[], $14::timestamptz[],
                                  $15::text[], $16::text[])
                  AS t(id, source, kind, delivery_id, dedupe_key, event_type, category, ticket,
                       headers, payload, state, state_reason, arrival, received_at, decision,
                       rules_version)
         ), ins AS (
         INSERT INTO events (id, source, kind, delivery_id, dedupe_key, event_type, category,
                             ticket, headers, payload, state, state_reason, arrival, received_at,
                             decision, rules_version)
         SELECT t.id, source, kind, delivery_id, dedupe_key, event_type, category, ticket::jsonb,
                headers::jsonb, payload::json, state, state_reason,
                CASE WHEN t.kind = 'github' AND t.arrival = 'delivered'
                      AND EXISTS (SELECT 1 FROM catch_up_redeliveries r
                                  WHERE r.source = t.source AND r.delivery_id = t.delivery_id)
                     THEN 'redelivered' ELSE t.arrival END,
                COALESCE(t.received_at, now()), decision::jsonb, rules_version
         FROM t
         WHERE NOT EXISTS (SELECT 1 FROM dedupe d
                           WHERE d.source = t.source AND d.dedupe_key = t.dedupe_key)
         ON CONFLICT (source, dedupe_key) DO NOTHING
         RETURNING id
         ), l AS (
         INSERT INTO launches (id, event_id, rule, source, kind, ticket, template_kind, template_id,
                               template_name, template_org, request, reply, report_outcome,
                               max_concurrent, state, controller)
         SELECT p.id, p.event_id, p.rule, e.source, e.kind, e.ticket::jsonb, p.template_kind,
                p.template_id, p.template_name, p.template_org, p.request::jsonb, p.reply,
                p.report_outcome, p.max_concurrent, p.state, p.controller
         FROM UNNEST($17::uuid[], $18::uuid[], $19::text[], $20::text[], $21::int8[],
                     $22::text[], $23::text[], $24::text[], $25::text[], $26::bool[],
                     $27::int4[], $28::text[], $29::text[])
              AS p(id, event_id, rule, template_kind, template_id, template_name, template_org,
                   request, reply, report_outcome, max_concurrent, state, controller)
         JOIN t e ON e.id = p.event_id
         WHERE p.event_id IN (SELECT id FROM ins)
         )
         SELECT id FROM ins";

pub async fn insert_batch(
    pool: &PgPool,
    items: &[NewEvent<'_>],
) -> Result<Vec<Insert>, sqlx::Error> {
    let n = items.len();
    let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
    let col = |f: fn(&Event) -> Option<&str>| -> Vec<Option<&str>> {
        items.iter().map(|i| f(i.event)).collect()
    };
    let source = col(|e| Some(&e.source));
    let kind = col(|e| Some(e.kind.as_str()));
    let delivery = col(|e| Some(&e.delivery_id));
    let dedupe = col(|e| Some(&e.dedupe_key));
    let etype = col(|e| Some(&e.event_type));
    let category = col(|e| e.category.as_deref());
    let payload = col(|e| Some(e.payload.text()));
    let state: Vec<&str> = items
        .iter()
        .map(|i| match (i.decided, &i.event.ignored) {
            (Some(d), _) => d.state.as_str(),
            (None, Some(_)) => EventState::Ignored.as_str(),
            (None, None) => EventState::Pending.as_str(),
        })
        .collect();
    let reason: Vec<Option<&str>> = items
        .iter()
        .map(|i| match i.decided {
            Some(d) => d.reason.as_deref(),
            None => i.event.ignored.as_deref(),
        })
        .collect();
    let arrival = col(|e| Some(e.arrival.as_str()));
    let ticket: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(&i.event.ticket).unwrap_or_else(|_| "{}".into()))
        .collect();
    let headers: Vec<String> = items
        .iter()
        .map(|i| serde_json::to_string(&i.event.headers).unwrap_or_else(|_| "{}".into()))
        .collect();
    let received: Vec<Option<DateTime<Utc>>> = items
        .iter()
        .map(|i| i.decided.map(|d| d.received_at))
        .collect();
    let decision: Vec<Option<String>> = items
        .iter()
        .map(|i| i.decided.map(|d| d.decision.to_string()))
        .collect();
    let version: Vec<Option<&str>> = items
        .iter()
        .map(|i| i.decided.map(|d| d.rules_version.as_str()))
        .collect();
    let l = LaunchColumns::of(items);
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
        .bind(&received)
        .bind(&decision)
        .bind(&version)
        .bind(&l.id)
        .bind(&l.event_id)
        .bind(&l.rule)
        .bind(&l.template_kind)
        .bind(&l.template_id)
        .bind(&l.template_name)
        .bind(&l.template_org)
        .bind(&l.request)
        .bind(&l.reply)
        .bind(&l.report_outcome)
        .bind(&l.max_concurrent)
        .bind(&l.state)
        .bind(&l.controller)
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
        .filter(|i| !inserted.contains(&i.id))
        .map(|i| (i.event.source.clone(), i.event.dedupe_key.clone()))
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
        .map(|i| {
            if inserted.contains(&i.id) {
                return Ok(Insert::New);
            }
            let e = i.event;
            existing
                .get(&(e.source.clone(), e.dedupe_key.clone()))
                .map(|eid| Insert::Existing(*eid))
                .ok_or_else(|| sqlx::Error::RowNotFound)
        })
        .collect()
}

/// The launches of a batch's decided events, column by column, for `UNNEST`.
#[derive(Default)]
struct LaunchColumns<'a> {
    id: Vec<Uuid>,
    event_id: Vec<Uuid>,
    rule: Vec<&'a str>,
    template_kind: Vec<&'a str>,
    template_id: Vec<Option<i64>>,
    template_name: Vec<Option<&'a str>>,
    template_org: Vec<Option<&'a str>>,
    request: Vec<String>,
    reply: Vec<&'a str>,
    report_outcome: Vec<bool>,
    max_concurrent: Vec<Option<i32>>,
    state: Vec<&'a str>,
    controller: Vec<&'a str>,
}

impl<'a> LaunchColumns<'a> {
    fn of(items: &'a [NewEvent<'a>]) -> Self {
        let mut c = LaunchColumns::default();
        for item in items {
            for l in item.decided.iter().flat_map(|d| &d.launches) {
                c.id.push(l.id.0);
                c.event_id.push(item.id);
                c.rule.push(&l.rule);
                c.template_kind.push(l.template_kind.as_str());
                c.template_id.push(l.template_id);
                c.template_name.push(l.template_name.as_deref());
                c.template_org.push(l.template_org.as_deref());
                c.request.push(l.request.to_string());
                c.reply.push(l.reply.as_str());
                c.report_outcome.push(l.report_outcome);
                c.max_concurrent.push(l.max_concurrent);
                c.state.push(l.state.as_str());
                c.controller.push(&l.controller);
            }
        }
        c
    }
}
