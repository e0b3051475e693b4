//! Claims pending events, evaluates the mapping rules, records the decision on the event and
//! plans one launch per matching rule, all in one transaction.

use super::{refusal, Context};
use crate::config::SourceKind;
use crate::decide::{outcome, with_marker};
use crate::mapping::{EventView, OnIgnored, Planned};
use crate::store::dispatch;
use crate::store::events::EventState;
use crate::store::launch_policy;
use crate::store::launches::{self, LaunchState};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

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
        let Ok(kind) = serde_json::from_value::<SourceKind>(Value::String(e.kind.clone())) else {
            dispatch::settle(
                &mut tx,
                e.id,
                EventState::Failed,
                Some("unknown source kind"),
                &Value::Null,
                version,
            )
            .await?;
            continue;
        };
        let view = EventView {
            id: e.id,
            source: e.source,
            kind,
            delivery_id: e.delivery_id,
            event_type: e.event_type,
            category: e.category,
            ticket: e.ticket.0,
            payload: Arc::new(e.payload.0),
            received_at: e.received_at,
        };
        let decision = mappings.evaluate(&view);
        decided.push((view, decision));
    }
    let keys: Vec<String> = decided
        .iter()
        .flat_map(|(view, d)| d.planned.iter().filter_map(|p| coalesce_key(view, p)))
        .collect();
    launches::lock_coalesce_keys(&mut tx, &keys).await?;
    let (mut planned_any, mut told) = (false, false);
    for (view, decision) in &decided {
        let recorded = decision.stored(skips);
        for r in &decision.refused {
            refusal::record(&mut tx, &ctx, view, r).await?;
            told = true;
        }
        let (state, reason) = outcome(decision);
        if state != EventState::Dispatched {
            let reason = reason.unwrap_or_default();
            tracing::info!(event_id = %view.id, %state, %reason, "event not launched");
            dispatch::settle(&mut tx, view.id, state, Some(&reason), &recorded, version).await?;
            continue;
        }
        for p in &decision.planned {
            plan(&mut tx, &ctx, view, p).await?;
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

/// The launch row for `p` (`state`: planned, dry_run, coalesced, or rejected for a refusal).
pub(super) async fn insert_launch(
    conn: &mut sqlx::PgConnection,
    e: &EventView,
    p: &Planned,
    id: Uuid,
    state: LaunchState,
    coalesce: (Option<&str>, Option<Uuid>),
) -> anyhow::Result<bool> {
    let (kind, (template_id, name, org)) = (p.template.kind(), p.template.columns());
    let request = with_marker(&p.request, e.id, id);
    let inserted = launches::insert(
        conn,
        &launches::NewLaunch {
            id,
            event_id: e.id,
            rule: &p.rule,
            source: &e.source,
            kind: e.kind,
            ticket: &e.ticket,
            template_kind: kind,
            template_id,
            template_name: name,
            template_org: org,
            request: &request,
            reply: p.reply,
            report_outcome: p.report_outcome,
            max_concurrent: p.max_concurrent.map(|n| n as i32),
            coalesce_key: coalesce.0,
            coalesced_into: coalesce.1,
            state,
        },
    )
    .await?;
    Ok(inserted)
}

async fn plan(
    conn: &mut sqlx::PgConnection,
    ctx: &Context,
    e: &EventView,
    p: &Planned,
) -> anyhow::Result<()> {
    let id = Uuid::now_v7();
    let coalesce_key = coalesce_key(e, p);
    let target = match (&coalesce_key, p.coalesce_secs) {
        (Some(key), Some(secs)) => launches::coalesce_target(conn, key, secs as i64).await?,
        _ => None,
    };
    // A paused rule's launch is planned all the same: the launcher holds it (and tells the
    // ticket) under the claim lock, which orders it against pauses and resumes.
    let state = match (target, ctx.controller.is_some()) {
        (Some(_), _) => LaunchState::Coalesced,
        (None, true) => LaunchState::Planned,
        (None, false) => LaunchState::DryRun,
    };
    let coalesce = (coalesce_key.as_deref(), target);
    if !insert_launch(conn, e, p, id, state, coalesce).await? {
        return Ok(());
    }
    if p.on_ignored_fields != OnIgnored::Warn {
        launch_policy::set_on_ignored_fields(conn, id, p.on_ignored_fields).await?;
    }
    tracing::info!(event_id = %e.id, launch_id = %id, rule = %p.rule, %state, "launch planned");
    Ok(())
}

fn coalesce_key(e: &EventView, p: &Planned) -> Option<String> {
    p.coalesce_secs
        .map(|_| format!("{}|{}", p.rule, ticket_key(&e.ticket)))
}

/// What makes two events "the same ticket" for coalescing.
fn ticket_key(t: &Value) -> String {
    let f = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}/{}/{}/{}/{}",
        f("table"),
        f("sys_id"),
        f("repo"),
        f("number"),
        f("incident_id")
    )
}
