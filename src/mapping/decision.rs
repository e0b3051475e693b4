//! What the rules made of one event, and the compact form stored on it.

use super::{Planned, Refused};
use serde::Serialize;
use serde_json::{json, Value};

/// What the rules made of one event. Unmapped when `planned`, `refused` and `failed` are empty.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Decision {
    pub planned: Vec<Planned>,
    /// Rules whose rendered values were refused.
    pub refused: Vec<Refused>,
    /// Rules that matched but could not be rendered: (rule, error).
    pub failed: Vec<(String, String)>,
    /// Rules for the event's source that did not match: (rule, why).
    pub skipped: Vec<(String, String)>,
    /// "source `x`, event type `y`, category `z`", for `reason`.
    #[serde(skip)]
    pub(super) subject: String,
}

impl Decision {
    pub fn is_unmapped(&self) -> bool {
        self.planned.is_empty() && self.refused.is_empty() && self.failed.is_empty()
    }

    /// The refused and failed rules, one `rule NAME: …` each, or None.
    pub fn problems(&self) -> Option<String> {
        let refused = self
            .refused
            .iter()
            .map(|r| format!("rule {}: refused: {}", r.launch.rule, r.reason));
        let failed = self
            .failed
            .iter()
            .map(|(rule, err)| format!("rule {rule}: {err}"));
        let all: Vec<String> = refused.chain(failed).collect();
        (!all.is_empty()).then(|| all.join("; "))
    }

    /// One line on why nothing was launched (or what was).
    pub fn reason(&self) -> String {
        if !self.is_unmapped() {
            return format!(
                "{} rule(s) matched, {} refused, {} failed to render",
                self.planned.len() + self.refused.len() + self.failed.len(),
                self.refused.len(),
                self.failed.len()
            );
        }
        if self.skipped.is_empty() {
            return format!("no rule for {}", self.subject);
        }
        let why: Vec<String> = self
            .skipped
            .iter()
            .map(|(r, w)| format!("{r}: {w}"))
            .collect();
        format!("no rule matched {}; {}", self.subject, why.join("; "))
    }
}

impl Decision {
    /// The decision as stored on the event: each matched rule with its template (the request
    /// is on the launch row), refused and failed rules with why. Other rules' skip reasons
    /// only with `skips` (`mappings.record_skipped`; simulate always shows them, and an
    /// unmapped event's reason names them anyway).
    pub fn stored(&self, skips: bool) -> Value {
        let planned: Vec<Value> = self
            .planned
            .iter()
            .map(|p| json!({"rule": p.rule, "template": p.template}))
            .collect();
        let refused: Vec<Value> = self
            .refused
            .iter()
            .map(|r| {
                json!({
                    "launch": {"rule": r.launch.rule, "template": r.launch.template},
                    "reason": r.reason,
                })
            })
            .collect();
        let skipped = if skips { &self.skipped[..] } else { &[] };
        json!({
            "planned": planned,
            "refused": refused,
            "failed": self.failed,
            "skipped": skipped,
        })
    }
}
