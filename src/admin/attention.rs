//! What needs a human now: the Overview's first section, worst first.

use super::overview::{Overview, Queue};
use super::Admin;
use crate::controller::Health;
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
        of(o)
    }
}

fn of(o: &Overview) -> Vec<Attention> {
    let mut out = Vec::new();
    for c in &o.controllers {
        let (Health::Unreachable { error } | Health::ConfigError { error }) = &c.health else {
            continue;
        };
        // With one controller it is "the controller", as the operator configured it.
        let who = match o.controllers.len() {
            1 => "The controller".to_string(),
            _ => format!("Controller {}", c.name),
        };
        out.push(Attention {
            level: "bad",
            text: format!(
                "{who} is {} since {}: {} launch(es) wait for it. Last error: {error}",
                c.health.label().replace('_', " "),
                c.health_since.format("%H:%M UTC"),
                c.waiting
            ),
            link: "/ui/events?state=dispatched".into(),
        });
    }
    for q in &o.unserved {
        out.push(Attention {
            level: "bad",
            text: format!(
                "{} launch(es) wait for controller {}, which is not live on this replica \
                 (not configured, or dry_run).",
                q.depth, q.name
            ),
            link: "/ui/events?state=dispatched".into(),
        });
    }
    let awaiting = depth(&o.queues, "launches_awaiting_approval");
    if awaiting > 0 {
        out.push(Attention {
            level: "warn",
            text: format!("{awaiting} launch(es) await approval on their ticket."),
            link: "/ui/events?launch_state=awaiting_approval".into(),
        });
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
