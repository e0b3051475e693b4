//! Deciding an event: the rules' verdict, the state it settles in, and whether the commit
//! writer can store it final at ingest (README "Decide at ingest").
//!
//! Most events are decided before their commit and written once, with their launches. Those
//! whose planning needs the database (a coalescing rule, a refused value that tells the ticket,
//! `on_ignored_fields: fail`) are stored `pending`, and the dispatcher plans them as before.

use crate::event::Event;
use crate::mapping::{Decision, EventView, Mappings, OnIgnored, Planned};
use crate::store::events::{Decided, EventState, NewLaunchRow};
use crate::store::launches::LaunchState;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// How the commit writer decides.
#[derive(Clone)]
pub struct Decider {
    pub mappings: crate::mapping::SharedMappings,
    /// No controller: launches are recorded `dry_run`.
    pub dry_run: bool,
    /// `mappings.record_skipped`.
    pub record_skipped: bool,
}

impl Decider {
    /// The event's final state, decision and launches under `m`, or None when the dispatcher
    /// must plan it. Takes the event's parsed payload (the stored text stays): it is not needed
    /// after the decision, and moving it saves a deep copy.
    pub fn decide(
        &self,
        m: &Mappings,
        id: Uuid,
        event: &mut Event,
        received_at: DateTime<Utc>,
    ) -> Option<Decided> {
        if event.ignored.is_some() {
            return None;
        }
        let view = EventView::take(id, event, received_at);
        let decision = m.evaluate(&view);
        let needs_db =
            |p: &Planned| p.coalesce_secs.is_some() || p.on_ignored_fields != OnIgnored::Warn;
        if !decision.refused.is_empty() || decision.planned.iter().any(needs_db) {
            event.payload =
                std::sync::Arc::try_unwrap(view.payload).unwrap_or_else(|p| (*p).clone());
            return None;
        }
        let (state, reason) = outcome(&decision);
        let launches = decision
            .planned
            .iter()
            .map(|p| launch_row(&view, p, self.dry_run))
            .collect();
        Some(Decided {
            received_at,
            state,
            reason,
            decision: decision.stored(self.record_skipped),
            rules_version: m.version().to_string(),
            launches,
        })
    }
}

/// The launch row for `p`, as the dispatcher writes it for a planned or dry-run launch.
fn launch_row(e: &EventView, p: &Planned, dry_run: bool) -> NewLaunchRow {
    let id = Uuid::now_v7();
    let (template_id, name, org) = p.template.columns();
    NewLaunchRow {
        id,
        rule: p.rule.clone(),
        template_kind: p.template.kind(),
        template_id,
        template_name: name.map(str::to_string),
        template_org: org.map(str::to_string),
        request: with_marker(&p.request, e.id, id),
        reply: p.reply,
        report_outcome: p.report_outcome,
        max_concurrent: p.max_concurrent.map(|n| n as i32),
        state: if dry_run {
            LaunchState::DryRun
        } else {
            LaunchState::Planned
        },
    }
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
