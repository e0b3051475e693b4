//! What one catch-up pass did: the admin API's answer and the `catch-up` command's output.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Summary {
    pub source: String,
    /// `github` or `servicenow`.
    pub kind: String,
    pub started_at: DateTime<Utc>,
    /// The oldest delivery or record time the pass looked at.
    pub since: DateTime<Utc>,
    /// API pages read.
    pub pages: u32,
    /// Deliveries listed (github) or records read (servicenow).
    pub examined: u32,
    /// github: failed deliveries the bridge did not have, found and asked for in this pass.
    pub missing: u32,
    /// github: each redelivery requested, with GitHub's answer.
    pub redeliveries: Vec<Redelivery>,
    /// servicenow: records stored as new events (`arrival: caught_up`).
    pub stored: u32,
    /// servicenow: records the bridge already had (same record version).
    pub duplicates: u32,
    /// servicenow: records left out: last updated by the bridge's own user, or already known
    /// with the same category (`versions: category_change`).
    pub skipped: u32,
    /// servicenow: the events stored.
    pub events: Vec<Uuid>,
    /// False when the pass stopped early (`stopped`) or failed (`error`).
    pub complete: bool,
    /// Why the pass stopped early (a rate limit, `max_per_run`); the next pass continues.
    pub stopped: Option<String>,
    /// Why the pass failed; what it did before is listed all the same.
    pub error: Option<String>,
}

/// One GitHub delivery asked for again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Redelivery {
    /// `repo owner/name hook 12` or `org name hook 34`.
    pub hook: String,
    /// `X-GitHub-Delivery`.
    pub guid: String,
    /// GitHub's id of the delivery asked for.
    pub delivery: i64,
    pub event: String,
    pub delivered_at: DateTime<Utc>,
    /// The failed attempt's status code; 0 when the bridge did not answer at all.
    pub status_code: i64,
    /// `requested` (202), `too_old` (422: past GitHub's 3 days), `not_found`, `rate_limited`
    /// or `failed: …` (asked again by a later pass).
    pub result: String,
}

impl Summary {
    pub fn new(source: &str, kind: &str) -> Self {
        let now = Utc::now();
        Summary {
            source: source.to_string(),
            kind: kind.to_string(),
            started_at: now,
            since: now,
            pages: 0,
            examined: 0,
            missing: 0,
            redeliveries: Vec::new(),
            stored: 0,
            duplicates: 0,
            skipped: 0,
            events: Vec::new(),
            complete: true,
            stopped: None,
            error: None,
        }
    }

    pub fn stop(&mut self, why: String) {
        self.complete = false;
        self.stopped.get_or_insert(why);
    }

    /// `ok`, `partial` or `failed`: the pass metric's label.
    pub fn outcome(&self) -> &'static str {
        match (&self.error, self.complete) {
            (Some(_), _) => "failed",
            (None, false) => "partial",
            (None, true) => "ok",
        }
    }

    /// Whether the pass changed anything, for the log level.
    pub fn did_something(&self) -> bool {
        !self.redeliveries.is_empty() || self.stored > 0 || self.error.is_some()
    }

    /// Plain text, one fact per line.
    pub fn lines(&self) -> Vec<String> {
        let outcome = match self.outcome() {
            "ok" => "complete",
            "partial" => "stopped early",
            _ => "FAILED",
        };
        let what = if self.kind == "github" {
            "deliveries"
        } else {
            "records"
        };
        let mut out = vec![
            format!("catch-up {} ({}): {outcome}", self.source, self.kind),
            format!(
                "  looked back to {}: {} {what} on {} page(s)",
                self.since.format("%Y-%m-%d %H:%M:%S UTC"),
                self.examined,
                self.pages
            ),
        ];
        if self.kind == "github" {
            let asked = self
                .redeliveries
                .iter()
                .filter(|r| r.result == "requested")
                .count();
            out.push(format!(
                "  {} missing, {asked} redelivery(ies) requested",
                self.missing
            ));
            for r in &self.redeliveries {
                out.push(format!(
                    "  {} {} {} (delivered {}, status {}): {}",
                    r.hook,
                    r.guid,
                    r.event,
                    r.delivered_at.format("%Y-%m-%d %H:%M:%S"),
                    r.status_code,
                    r.result
                ));
            }
        } else {
            out.push(format!(
                "  stored {}, duplicates {}, skipped {}",
                self.stored, self.duplicates, self.skipped
            ));
            out.extend(self.events.iter().map(|id| format!("  event {id}")));
        }
        if let Some(s) = &self.stopped {
            out.push(format!("  stopped: {s}"));
        }
        if let Some(e) = &self.error {
            out.push(format!("  error: {e}"));
        }
        out
    }
}
