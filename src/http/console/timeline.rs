//! One event's story, from what was stored: received, decided, each launch and its job, each
//! post-back.

use crate::domain::LaunchState;
use crate::launch::wait::Waiting;
use crate::store::admin::{CallbackView, EventDetail, LaunchView};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct Step {
    pub at: Option<DateTime<Utc>>,
    pub title: String,
    /// ok, bad, wait or info: the colour of the step.
    pub tone: &'static str,
    pub lines: Vec<String>,
    /// The controller's job page (only http(s) links are shown).
    pub job_url: Option<String>,
}

/// One rule's verdict, from the decision stored on the event.
#[derive(Debug, Serialize)]
pub struct Verdict {
    pub rule: String,
    /// matched, refused, failed or skipped.
    pub verdict: &'static str,
    pub detail: String,
}

pub fn decision(d: &Value) -> Vec<Verdict> {
    let mut out = Vec::new();
    let list = |key: &str| {
        d.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    for p in list("planned") {
        out.push(Verdict {
            rule: text(&p["rule"]),
            verdict: "matched",
            detail: template(&p["template"]),
        });
    }
    for r in list("refused") {
        out.push(Verdict {
            rule: text(&r["launch"]["rule"]),
            verdict: "refused",
            detail: text(&r["reason"]),
        });
    }
    for (key, verdict) in [("failed", "failed"), ("skipped", "skipped")] {
        for pair in list(key) {
            out.push(Verdict {
                rule: text(&pair[0]),
                verdict,
                detail: text(&pair[1]),
            });
        }
    }
    out
}

/// A stored `TemplateRef` (`{"Id": {"kind": "job", "id": 15}}`) as `job template 15`.
fn template(t: &Value) -> String {
    if let Some(t) = t.get("Id") {
        return format!(
            "{} template {}",
            t["kind"].as_str().unwrap_or("job"),
            t["id"]
        );
    }
    if let Some(t) = t.get("Name") {
        let org = t["organization"]
            .as_str()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        return format!(
            "{} template `{}`{org}",
            t["kind"].as_str().unwrap_or("job"),
            t["name"].as_str().unwrap_or("?")
        );
    }
    t.to_string()
}

pub fn of(e: &EventDetail) -> Vec<Step> {
    let s = &e.summary;
    let mut steps = vec![Step {
        at: Some(s.received_at),
        title: format!("received from {} ({})", s.source, s.event_type),
        tone: "info",
        lines: [
            Some(format!("delivery {}", s.delivery_id)),
            s.replay_of.map(|r| format!("a replay of event {r}")),
        ]
        .into_iter()
        .flatten()
        .collect(),
        job_url: None,
    }];
    if s.state.as_str() != "pending" {
        let tone = match s.state.as_str() {
            "dispatched" => "ok",
            "failed" => "bad",
            _ => "info",
        };
        let verdicts = decision(&e.decision)
            .into_iter()
            .map(|v| format!("{} {}: {}", v.verdict, v.rule, v.detail));
        steps.push(Step {
            at: Some(e.updated_at),
            title: format!("decided: {}", s.state),
            tone,
            lines: s.state_reason.iter().cloned().chain(verdicts).collect(),
            job_url: None,
        });
    }
    for l in &e.launches {
        steps.extend(launch_steps(l));
    }
    for c in &e.callbacks {
        steps.push(callback_step(c));
    }
    // Stable: steps without a time keep their place after the timed ones.
    steps.sort_by_key(|s| (s.at.is_none(), s.at));
    steps
}

fn launch_template(l: &LaunchView) -> String {
    let template = match (&l.template_id, &l.template_name) {
        (Some(id), _) => format!("{} template {id}", l.template_kind),
        (None, Some(name)) => match &l.template_org {
            Some(org) => format!("{} template `{name}` ({org})", l.template_kind),
            None => format!("{} template `{name}`", l.template_kind),
        },
        (None, None) => format!("{} template", l.template_kind),
    };
    match l.controller.as_str() {
        crate::config::DEFAULT_CONTROLLER => template,
        c => format!("{template} on controller `{c}`"),
    }
}

/// "waiting: controller unreachable since 2026-12-07 03:12:00 UTC — could not connect …"
fn waiting_line(w: &Waiting) -> String {
    let reason = serde_json::to_value(w.reason)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default();
    let at = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let mut line = format!("waiting: {reason}");
    if let Some(t) = w.since {
        line.push_str(&format!(" since {}", at(t)));
    }
    if let Some(t) = w.until {
        line.push_str(&format!(" until {}", at(t)));
    }
    if !w.detail.is_empty() {
        line.push_str(&format!(" — {}", w.detail));
    }
    line
}

fn launch_steps(l: &LaunchView) -> Vec<Step> {
    let tone = match l.state {
        LaunchState::Rejected | LaunchState::Unknown | LaunchState::Dropped => "bad",
        LaunchState::Planned | LaunchState::Launching | LaunchState::Held => "wait",
        _ => "info",
    };
    let mut lines = vec![
        format!("{} — now {}", launch_template(l), l.state),
        format!("sent {} time(s), {} claim(s)", l.sends, l.attempts),
    ];
    if let Some(w) = &l.waiting {
        lines.push(waiting_line(w));
    }
    if let Some(e) = &l.last_error {
        lines.push(format!("error: {e}"));
    }
    if let Some(into) = l.coalesced_into {
        lines.push(format!("coalesced into launch {into}"));
    }
    let mut steps = vec![Step {
        at: Some(l.created_at),
        title: format!("launch planned: rule {}", l.rule),
        tone,
        lines,
        job_url: None,
    }];
    if let Some(at) = l.held_at {
        steps.push(Step {
            at: Some(at),
            title: format!("held: rule {} is paused", l.rule),
            tone: "wait",
            lines: vec!["not sent; released or dropped when an operator resumes the rule".into()],
            job_url: None,
        });
    }
    let job = l.job_id.map(|j| format!("job {j}")).unwrap_or("job".into());
    if let Some(at) = l.launched_at {
        let mut lines = Vec::new();
        if let Some(fields) = &l.ignored_fields {
            lines.push(format!("the controller ignored: {}", fields.0));
        }
        steps.push(Step {
            at: Some(at),
            title: format!("launched: {job}"),
            tone: "ok",
            lines,
            job_url: l.job_url.clone(),
        });
    }
    if let Some(at) = l.started_at {
        steps.push(Step {
            at: Some(at),
            title: format!("{job} running"),
            tone: "info",
            lines: Vec::new(),
            job_url: None,
        });
    }
    if let Some(at) = l.finished_at {
        let status = l.job_status.clone().unwrap_or_else(|| "finished".into());
        steps.push(Step {
            at: Some(at),
            tone: if status == "successful" { "ok" } else { "bad" },
            title: format!("{job} {status}"),
            lines: l
                .elapsed_secs
                .map(|s| format!("ran {s:.1} s"))
                .into_iter()
                .collect(),
            job_url: l.job_url.clone(),
        });
    }
    steps
}

fn callback_step(c: &CallbackView) -> Step {
    let tone = match c.state.as_str() {
        "sent" => "ok",
        "dead" => "bad",
        _ => "wait",
    };
    let mut lines = vec![format!("attempts: {}", c.attempts)];
    if let Some(status) = c.last_status {
        lines.push(format!("last answer: HTTP {status}"));
    }
    if let Some(e) = &c.last_error {
        lines.push(format!("error: {e}"));
    }
    if let Some(at) = c.sent_at {
        lines.push(format!("sent at {}", at.format("%Y-%m-%d %H:%M:%S")));
    }
    Step {
        at: Some(c.created_at),
        title: format!("post-back `{}` to {}: {}", c.phase, c.source, c.state),
        tone,
        lines,
        job_url: None,
    }
}
