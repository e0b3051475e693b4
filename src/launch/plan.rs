//! The one planner: the launch row a rule's match makes. The commit writer stores it with its
//! event at ingest (`store::events`, one statement for a whole batch); the dispatcher stores it
//! here for events that need the database to plan (coalescing, a refused value, `on_ignored_fields:
//! fail`). Both build it with `planned_row`.

use super::sql::rows::{self, NewLaunch};
use crate::domain::{EventId, LaunchId, LaunchState};
use crate::mapping::{EventView, Planned, Refused};
use crate::postback::{self, PostbackNews};
use crate::runtime::Context;
use serde_json::{json, Value};
use sqlx::PgConnection;

/// The launch row for rule `p`'s match of `e`, in `state` (`planned`, `dry_run`, `coalesced`
/// or `rejected`), with the markers that find its job after a crash.
pub fn planned_row(e: &EventView, p: &Planned, state: LaunchState) -> NewLaunch {
    let id = LaunchId::new();
    let (template_id, name, org) = p.template.columns();
    NewLaunch {
        id,
        rule: p.rule.clone(),
        controller: p.controller.clone(),
        template_kind: p.template.kind(),
        template_id,
        template_name: name.map(str::to_string),
        template_org: org.map(str::to_string),
        request: with_marker(&p.request, EventId(e.id), id),
        reply: p.reply,
        report_outcome: p.report_outcome,
        max_concurrent: p.max_concurrent.map(|n| n as i32),
        on_ignored_fields: p.on_ignored_fields,
        coalesce_key: None,
        coalesced_into: None,
        state,
    }
}

/// Adds the markers that let a launch be found on the controller after a crash.
pub fn with_marker(request: &Value, event_id: EventId, launch_id: LaunchId) -> Value {
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

/// Plans `p` in the dispatcher's transaction: attached to an earlier launch of the same ticket
/// within the rule's coalescing window, else `planned` (`dry_run` without a controller,
/// `awaiting_approval` when its rule needs approval: its id is returned, for the request). The
/// caller holds the coalescing key's lock (`sql::rows::lock_coalesce_keys`). A paused rule's
/// launch is planned all the same: the claim holds it under the claim lock, which orders it
/// against pauses and resumes.
pub async fn plan(
    conn: &mut PgConnection,
    ctx: &Context,
    e: &EventView,
    p: &Planned,
) -> anyhow::Result<Option<LaunchId>> {
    let key = coalesce_key(e, p);
    let target = match (&key, p.coalesce_secs) {
        (Some(key), Some(secs)) => rows::coalesce_target(conn, key, secs as i64).await?,
        _ => None,
    };
    let sends = ctx.controller.is_some() && !ctx.dry_controllers.contains(&p.controller);
    let state = match (target, sends) {
        (Some(_), _) => LaunchState::Coalesced,
        (None, true) if p.approval.is_some() => LaunchState::AwaitingApproval,
        (None, true) => LaunchState::Planned,
        (None, false) => LaunchState::DryRun,
    };
    let mut row = planned_row(e, p, state);
    (row.coalesce_key, row.coalesced_into) = (key, target);
    if rows::insert(conn, e, &row).await? {
        tracing::info!(event_id = %e.id, launch_id = %row.id, rule = %p.rule, %state, "launch planned");
        return Ok((state == LaunchState::AwaitingApproval).then_some(row.id));
    }
    Ok(None)
}

/// A launch the bridge itself refused because of a rendered value (see `mapping::guard`):
/// recorded `rejected` with the reason, and the ticket told, in the dispatcher's transaction,
/// so nobody waits for a job that is not coming.
pub async fn plan_refused(
    conn: &mut PgConnection,
    ctx: &Context,
    e: &EventView,
    r: &Refused,
) -> anyhow::Result<()> {
    let row = planned_row(e, &r.launch, LaunchState::Rejected);
    // Nothing written: this event's rule already has a launch (a replay); tell nobody twice.
    if !rows::insert(conn, e, &row).await? || !rows::refused(conn, row.id, &r.reason).await? {
        return Ok(());
    }
    tracing::warn!(event_id = %e.id, launch_id = %row.id, rule = %r.launch.rule, reason = %r.reason,
        "launch refused: a rendered value is not safe to send");
    let controller = r.launch.controller.clone();
    metrics::counter!("aap_bridge_launches_total", "controller" => controller, "result" => "rejected")
        .increment(1);
    // Dry-run posts nothing back.
    if ctx.controller.is_none() || ctx.dry_controllers.contains(&r.launch.controller) {
        return Ok(());
    }
    let stored = rows::get(conn, row.id).await?;
    let news = PostbackNews::NoJob {
        state: LaunchState::Rejected,
        problem: format!("the bridge refused it: {}", r.reason),
        job: None,
    };
    postback::enqueue(conn, ctx, &stored.target(), news).await?;
    Ok(())
}

/// Two events are "the same ticket" for coalescing when this key matches.
pub fn coalesce_key(e: &EventView, p: &Planned) -> Option<String> {
    p.coalesce_secs
        .map(|_| format!("{}|{}", p.rule, ticket_key(&e.ticket)))
}

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
