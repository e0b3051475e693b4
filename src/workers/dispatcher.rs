//! Claims events stored `pending` (those whose planning needs the database, README "Decide at
//! ingest"), evaluates the mapping rules, records the decision on the event and plans one
//! launch per matching rule through `launch::plan`, all in one transaction.

use crate::decide::outcome;
use crate::domain::EventState;
use crate::launch::{self, coalesce_key};
use crate::mapping::EventView;
use crate::runtime::Context;
use crate::store::dispatch;
use std::sync::Arc;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let mappings = ctx.mappings.current();
    let version = Some(mappings.version());
    let skips = ctx.record_skipped;
    let batch = ctx.settings.dispatch_batch;
    let mut tx = ctx.pool.begin().await?;
    let events = dispatch::claim(&mut tx, batch).await?;
    if events.is_empty() {
        return Ok(false);
    }
    // Decide every event first (pure), then take all coalescing locks of the batch at once,
    // in one global order, so two replicas' batches can never deadlock.
    let claimed = events.len() as i64;
    let mut decided = Vec::with_capacity(events.len());
    for e in events {
        let view = EventView {
            id: e.id,
            source: e.source,
            kind: e.kind,
            delivery_id: e.delivery_id,
            event_type: e.event_type,
            category: e.category,
            ticket: e.ticket.0,
            payload: crate::event::Payload::from_value(e.payload.0),
            received_at: e.received_at,
        };
        // A command is only a command: no rule launches on it.
        let fields = mappings.approval_fields(&view.source);
        if let Some(cmd) = crate::approval::command_of(&view, fields) {
            crate::approval::record(&mut tx, &view, &cmd).await?;
            let reason = format!("approval command: /{} by {}", cmd.verb.as_str(), cmd.actor);
            let none = crate::mapping::Decision::default().stored(skips);
            dispatch::settle(
                &mut tx,
                view.id,
                EventState::Dispatched,
                Some(&reason),
                &none,
                version,
            )
            .await?;
            continue;
        }
        let decision = mappings.evaluate(&view);
        decided.push((view, decision));
    }
    let keys: Vec<String> = decided
        .iter()
        .flat_map(|(view, d)| d.planned.iter().filter_map(|p| coalesce_key(view, p)))
        .collect();
    launch::sql::rows::lock_coalesce_keys(&mut tx, &keys).await?;
    let (mut planned_any, mut told) = (false, false);
    for (view, decision) in &decided {
        let recorded = decision.stored(skips);
        for r in &decision.refused {
            launch::plan_refused(&mut tx, &ctx, view, r).await?;
            told = true;
        }
        let (state, reason) = outcome(view, decision);
        if state != EventState::Dispatched {
            let reason = reason.unwrap_or_default();
            tracing::info!(event_id = %view.id, %state, %reason, "event not launched");
            dispatch::settle(&mut tx, view.id, state, Some(&reason), &recorded, version).await?;
            continue;
        }
        for p in &decision.planned {
            if let Some(id) = launch::plan(&mut tx, &ctx, view, p).await? {
                crate::approval::request(&mut tx, &ctx, view, p, id).await?;
                told = true;
            }
        }
        dispatch::settle(
            &mut tx,
            view.id,
            state,
            reason.as_deref(),
            &recorded,
            version,
        )
        .await?;
        planned_any = true;
    }
    tx.commit().await?;
    if planned_any {
        ctx.wake_launch.notify_one();
    }
    if told {
        ctx.wake_notify.notify_one();
    }
    Ok(claimed == batch)
}
