//! What needs a human now: the Overview's first section, worst first.

use super::overview::{Overview, Queue};
use super::Admin;
use crate::controller::Health;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// One thing to look at, and where.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Attention {
    /// `bad` (something is not happening) or `warn` (something needs a decision).
    pub level: &'static str,
    pub text: String,
    pub link: String,
}

fn depth(queues: &[Queue], name: &str) -> i64 {
    queues
        .iter()
        .find(|q| q.name == name)
        .map_or(0, |q| q.depth)
}

fn day(rows: &[crate::store::overview::StateCount], state: &str) -> i64 {
    rows.iter().find(|r| r.state == state).map_or(0, |r| r.day)
}

impl Admin {
    /// What in `o` needs a human now.
    pub fn attention(&self, o: &Overview) -> Vec<Attention> {
        of(o, self.health.as_ref().map(|h| h.get_since().1))
    }
}

/// `health_since`: when the controller's health last changed.
fn of(o: &Overview, health_since: Option<DateTime<Utc>>) -> Vec<Attention> {
    let mut out = Vec::new();
    let waiting = depth(&o.queues, "launches_planned") + depth(&o.queues, "launches_launching");
    if let Some(h) = &o.controller.health {
        let since = health_since
            .map(|t| format!(" since {}", t.format("%H:%M UTC")))
            .unwrap_or_default();
        match h {
            Health::Ok => {}
            Health::Unreachable { error } | Health::ConfigError { error } => out.push(Attention {
                level: "bad",
                text: format!(
                    "The controller is {}{since}: {waiting} launch(es) wait for it. Last error: {error}",
                    h.label().replace('_', " ")
                ),
                link: "/ui/events?state=dispatched".into(),
            }),
        }
    }
    for r in &o.paused {
        out.push(Attention {
            level: "warn",
            text: format!(
                "Rule {} is paused{}: {} launch(es) held until someone resumes it.",
                r.rule,
                r.reason
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default(),
                r.held
            ),
            link: "/ui/rules".into(),
        });
    }
    // Counts that need a look when they are not zero.
    let counts = [
        (
            depth(&o.queues, "callbacks_dead"),
            "post-back(s) to tickets failed for good (dead letters).",
            "/ui/dead",
        ),
        (
            day(&o.launches, "failed"),
            "launch(es) failed in the last day.",
            "#failures",
        ),
        (
            day(&o.events, "failed"),
            "event(s) could not be decided in the last day.",
            "/ui/events?state=failed",
        ),
    ];
    for (n, what, link) in counts.into_iter().filter(|c| c.0 > 0) {
        out.push(Attention {
            level: "bad",
            text: format!("{n} {what}"),
            link: link.into(),
        });
    }
    for s in o.deliveries.iter().filter(|s| s.refused > 0) {
        let what = if s.known {
            "check the sender's secret and content type"
        } else {
            "no such source is configured"
        };
        out.push(Attention {
            level: "warn",
            text: format!(
                "{} request(s) to /hooks/{} refused in the last day ({what}).",
                s.refused, s.source
            ),
            link: format!(
                "/ui/deliveries?source={}&outcome=refused",
                urlencode(&s.source)
            ),
        });
    }
    out
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
