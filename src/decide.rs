//! Deciding an event: the rules' verdict, the state it settles in, and whether the commit
//! writer can store it final at ingest (README "Decide at ingest").
//!
//! Most events are decided before their commit and written once, with their launches. Those
//! whose planning needs the database (a coalescing rule, a refused value that tells the ticket,
//! `on_ignored_fields: fail`, a rule with `approval:`) and those that may carry an approval
//! command (a new GitHub comment, a PagerDuty note) are stored `pending`, and the dispatcher
//! plans them.

use crate::domain::ticket::ReplyTarget;
use crate::domain::{EventState, LaunchState, Reply};
use crate::event::Event;
use crate::launch::planned_row;
use crate::mapping::{Decision, EventView, Mappings, OnIgnored, Planned};
use crate::store::events::Decided;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How the commit writer decides.
#[derive(Clone)]
pub struct Decider {
    pub mappings: crate::mapping::SharedMappings,
    /// No controller: launches are recorded `dry_run`.
    pub dry_run: bool,
    /// Controllers marked `dry_run: true`: their launches are recorded `dry_run` too.
    pub dry_controllers: std::collections::BTreeSet<String>,
    /// `mappings.record_skipped`.
    pub record_skipped: bool,
}

impl Decider {
    /// The event's final state, decision and launches under `m`, or None when the dispatcher
    /// must plan it.
    pub fn decide(
        &self,
        m: &Mappings,
        id: Uuid,
        event: &Event,
        received_at: DateTime<Utc>,
    ) -> Option<Decided> {
        if event.ignored.is_some() {
            return None;
        }
        let fields = m.approval_fields(&event.source);
        if crate::domain::approval::may_be_command(event.kind, &event.event_type, fields) {
            return None;
        }
        let view = EventView::from_event(id, event, received_at);
        let decision = m.evaluate(&view);
        let needs_db = |p: &Planned| {
            p.coalesce_secs.is_some()
                || p.on_ignored_fields != OnIgnored::Warn
                || p.approval.is_some()
        };
        if !decision.refused.is_empty() || decision.planned.iter().any(needs_db) {
            return None;
        }
        let (state, reason) = outcome(&view, &decision);
        let state_of =
            |p: &Planned| match self.dry_run || self.dry_controllers.contains(&p.controller) {
                true => LaunchState::DryRun,
                false => LaunchState::Planned,
            };
        let launches = decision
            .planned
            .iter()
            .map(|p| planned_row(&view, p, state_of(p)))
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

/// The state an event settles in after `d`, and its reason: `dispatched` when anything was
/// planned (the reason then names refused or failed rules, and launches whose ticket cannot
/// take their reply: they run, and nothing will be posted back), else `failed` or `unmapped`.
/// `simulate` shows the same.
pub fn outcome(e: &EventView, d: &Decision) -> (EventState, Option<String>) {
    match (d.planned.is_empty(), d.problems()) {
        (false, problems) => {
            let unusable = d
                .planned
                .iter()
                .filter(|p| p.reply != Reply::None)
                .filter_map(|p| {
                    ReplyTarget::check(e.kind, p.reply, &e.ticket)
                        .err()
                        .map(|why| format!("rule {}: nothing can be posted back: {why}", p.rule))
                });
            let all: Vec<String> = problems.into_iter().chain(unusable).collect();
            (
                EventState::Dispatched,
                (!all.is_empty()).then(|| all.join("; ")),
            )
        }
        (true, Some(problems)) => (EventState::Failed, Some(problems)),
        (true, None) => (EventState::Unmapped, Some(d.reason())),
    }
}
