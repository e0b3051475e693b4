//! Claims pending events, evaluates the mapping rules, records the decision on the event and
//! plans one launch per matching rule, all in one transaction.

use super::{breaker, refusal, Context};
use crate::config::SourceKind;
use crate::mapping::{Decision, EventView, OnIgnored, Planned, TemplateRef};
use crate::store::dispatch;
use crate::store::events::EventState;
use crate::store::launch_policy;
use crate::store::launches::{self, LaunchState};
use crate::store::pauses::{self, Pause};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let mappings = ctx.mappings.current();
    let batch = ctx.settings.dispatch_batch;
    let mut tx = ctx.pool.begin().await?;
    let events = dispatch::claim(&mut tx, batch).await?;
    if events.is_empty() {
        return Ok(false);
    }
    // Decide every event first (pure), then take all coalescing locks of the batch at once,
    // in one global order, so two replicas' batches can never deadlock.
    let mut decided = Vec::with_capacity(events.len());
    for e in &events {
        let Ok(kind) = serde_json::from_value::<SourceKind>(Value::String(e.kind.clone())) else {
            dispatch::settle(
                &mut tx,
                e.id,
                EventState::Failed,
                Some("unknown source kind"),
                &Value::Null,
            )
            .await?;
            continue;
        };
        let view = EventView {
            id: e.id,
            source: e.source.clone(),
            kind,
            delivery_id: e.delivery_id.clone(),
            event_type: e.event_type.clone(),
            category: e.category.clone(),
            ticket: e.ticket.0.clone(),
            payload: e.payload.0.clone(),
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
    let paused = paused_rules(&mut tx, &ctx, &decided).await?;
    let (mut planned_any, mut told) = (false, false);
    for (view, decision) in &decided {
        let recorded = serde_json::to_value(decision).unwrap_or(Value::Null);
        for r in &decision.refused {
            refusal::record(&mut tx, &ctx, view, r).await?;
        }
        let (state, reason) = outcome(decision);
        if state != EventState::Dispatched {
            let reason = reason.unwrap_or_default();
            tracing::info!(event_id = %view.id, %state, %reason, "event not launched");
            dispatch::settle(&mut tx, view.id, state, Some(&reason), &recorded).await?;
            continue;
        }
        for p in &decision.planned {
            told |= plan(&mut tx, &ctx, view, p, paused.get(&p.rule)).await?;
        }
        dispatch::settle(&mut tx, view.id, state, reason.as_deref(), &recorded).await?;
        planned_any = true;
    }
    tx.commit().await?;
    if planned_any {
        ctx.wake_launch.notify_one();
    }
    if told {
        ctx.wake_notify.notify_one();
    }
    Ok(events.len() as i64 == batch)
}

/// The paused rules among those the batch plans for, their rows locked `FOR SHARE` until the
/// batch commits, so a resume cannot pass the launches held here. Dry-run holds nothing (nothing
/// is sent anyway).
async fn paused_rules(
    conn: &mut sqlx::PgConnection,
    ctx: &Context,
    decided: &[(EventView, Decision)],
) -> anyhow::Result<HashMap<String, Pause>> {
    if ctx.controller.is_none() {
        return Ok(HashMap::new());
    }
    let mut rules: Vec<String> = decided
        .iter()
        .flat_map(|(_, d)| d.planned.iter().map(|p| p.rule.clone()))
        .collect();
    rules.sort();
    rules.dedup();
    Ok(pauses::paused_among(conn, &rules, true)
        .await?
        .into_iter()
        .map(|p| (p.rule.clone(), p))
        .collect())
}

/// The state an event settles in after `d`, and its reason: `dispatched` when anything was
/// planned (the reason then names refused or failed rules), else `failed` or `unmapped`.
/// `simulate` shows the same.
pub fn outcome(d: &Decision) -> (EventState, Option<String>) {
    match (d.planned.is_empty(), d.problems()) {
        (false, problems) => (EventState::Dispatched, problems),
        (true, Some(problems)) => (EventState::Failed, Some(problems)),
        (true, None) => (EventState::Unmapped, Some(d.reason())),
    }
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
    let (kind, template_id, name, org) = match &p.template {
        TemplateRef::Id { kind, id } => (*kind, Some(*id), None, None),
        TemplateRef::Name {
            kind,
            name,
            organization,
        } => (*kind, None, Some(name.as_str()), organization.as_deref()),
    };
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
    pause: Option<&Pause>,
) -> anyhow::Result<bool> {
    let id = Uuid::now_v7();
    let coalesce_key = coalesce_key(e, p);
    let target = match (&coalesce_key, p.coalesce_secs) {
        (Some(key), Some(secs)) => launches::coalesce_target(conn, key, secs as i64).await?,
        _ => None,
    };
    let state = match (target, ctx.controller.is_some(), pause) {
        (Some(_), _, _) => LaunchState::Coalesced,
        (None, true, Some(_)) => LaunchState::Held,
        (None, true, None) => LaunchState::Planned,
        (None, false, _) => LaunchState::DryRun,
    };
    let coalesce = (coalesce_key.as_deref(), target);
    if !insert_launch(conn, e, p, id, state, coalesce).await? {
        return Ok(false);
    }
    if p.on_ignored_fields != OnIgnored::Warn {
        launch_policy::set_on_ignored_fields(conn, id, p.on_ignored_fields).await?;
    }
    let mut told = false;
    if let (LaunchState::Held, Some(pause)) = (state, pause) {
        let row = launches::get(conn, id).await?;
        told = breaker::tell_held(conn, &ctx.notifier, &row, pause).await?;
    }
    tracing::info!(event_id = %e.id, launch_id = %id, rule = %p.rule, %state, "launch planned");
    Ok(told)
}

/// Adds the markers that let a launch be found on the controller after a crash.
pub fn with_marker(request: &Value, event_id: Uuid, launch_id: Uuid) -> Value {
    let mut req = match request {
        Value::Object(_) => request.clone(),
        _ => json!({}),
    };
    let Some(obj) = req.as_object_mut() else {
        return req;
    };
    let vars = obj.entry("extra_vars").or_insert_with(|| json!({}));
    if let Some(vars) = vars.as_object_mut() {
        vars.insert("aap_bridge_event_id".into(), json!(event_id.to_string()));
        vars.insert("aap_bridge_launch_id".into(), json!(launch_id.to_string()));
    }
    req
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
