//! Listing, showing and replaying stored events.

use super::query::EventQuery;
use super::{Admin, Error, Result};
use crate::domain::AuditAction;
use crate::domain::EventId;
use crate::launch::wait;
use crate::operators::{audit, Actor};
use crate::store::admin::{self as store, EventDetail, EventSummary, LaunchBrief, Replayed};
use std::collections::HashMap;
use uuid::Uuid;

/// A page of events, newest first, and the cursor of the next page (None on the last).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    /// `before=` for the older page; null on the oldest.
    pub next_before: Option<Uuid>,
    /// `after=` for the newer page; null on the newest.
    pub prev_after: Option<Uuid>,
}

impl Admin {
    /// A page of events, each with its launches: their state, why an open one waits, their job.
    pub async fn events(&self, query: &EventQuery) -> Result<EventPage> {
        let (mut events, older, newer) =
            crate::store::event_list::list_events(&self.pool, &query.filter()).await?;
        let next_before = older.then(|| events.last().map(|e| e.id)).flatten();
        let prev_after = newer.then(|| events.first().map(|e| e.id)).flatten();
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let mut launches = store::launches_of(&self.pool, &ids).await?;
        if launches.iter().any(|l| l.state.is_open()) {
            let controller = self.fleet.as_ref().map(|f| f.health_by_name());
            let event_ids: Vec<EventId> = ids.iter().map(|id| EventId(*id)).collect();
            let mut waits = wait::of_events(&self.pool, &event_ids, &controller).await?;
            for l in &mut launches {
                l.waiting = waits.remove(&l.id.into());
            }
        }
        let mut by_event: HashMap<Uuid, Vec<LaunchBrief>> = HashMap::new();
        for l in launches {
            by_event.entry(l.event_id).or_default().push(l);
        }
        for e in &mut events {
            e.launches = Some(by_event.remove(&e.id).unwrap_or_default());
        }
        Ok(EventPage {
            events,
            next_before,
            prev_after,
        })
    }

    /// One event with its headers, payload, decision, launches and callbacks.
    /// Each open launch says why it waits.
    pub async fn event(&self, id: Uuid) -> Result<EventDetail> {
        let mut e = store::event_detail(&self.pool, id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
        if e.launches.iter().any(|l| l.state.is_open()) {
            let controller = self.fleet.as_ref().map(|f| f.health_by_name());
            let mut waits = wait::of_events(&self.pool, &[id.into()], &controller).await?;
            for l in &mut e.launches {
                l.waiting = waits.remove(&l.id.into());
            }
        }
        Ok(e)
    }

    /// Stores a copy of the event as a new pending event; the dispatcher treats it like a
    /// delivery, under the rules in force now.
    pub async fn replay(&self, id: Uuid, actor: &Actor) -> Result<Replayed> {
        self.replay_once(id, None, actor).await
    }

    /// A replay that a second submission of the same form (the same `once` key, 1 to 64
    /// letters, digits and `-`) cannot repeat: it answers with the first copy.
    pub async fn replay_once(
        &self,
        id: Uuid,
        once: Option<&str>,
        actor: &Actor,
    ) -> Result<Replayed> {
        let valid = |k: &str| {
            (1..=64).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if once.is_some_and(|k| !valid(k)) {
            return Err(Error::Invalid(
                "`once` must be 1 to 64 letters, digits and `-`".into(),
            ));
        }
        let r = store::replay(&self.pool, id, once)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no event {id}")))?;
        if r.again {
            tracing::info!(event_id = %r.event_id, replay_of = %id, "replay form submitted again; nothing new stored");
        } else {
            tracing::info!(event_id = %r.event_id, replay_of = %id, delivery_id = %r.delivery_id, user = %actor.name, "event replayed");
            let detail = serde_json::json!({ "copy": r.event_id });
            audit::record(
                &self.pool,
                actor,
                AuditAction::EventReplay,
                Some(&audit::event(id)),
                detail,
            )
            .await;
        }
        Ok(r)
    }
}
