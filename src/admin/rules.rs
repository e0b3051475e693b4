//! The rules in force, where each is defined, what it launched, and the last reload.

use super::{Admin, Result, RuleState};
use crate::mapping::{ReloadStatus, RuleInfo};
use crate::store::overview::{self as store, LaunchBrief};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct RulesPage {
    /// The version of the rules in force (a digest of the mapping files); each decided event
    /// records the version that decided it.
    pub version: String,
    pub rules: Vec<RuleRow>,
    /// The outcome of the last load or reload (None before the first, e.g. in the CLI).
    pub last_reload: Option<ReloadStatus>,
    /// Rules that launched in the past but are no longer loaded.
    pub retired: Vec<String>,
    /// Rules no longer loaded that are still paused or hold launches (to resume them).
    pub unloaded: Vec<RuleState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    #[serde(flatten)]
    pub rule: RuleInfo,
    /// Launches by state, over the retained events.
    pub counts: BTreeMap<String, i64>,
    pub total: i64,
    pub last_launch: Option<LaunchBrief>,
    /// The circuit breaker: paused or not, failures in a row, held launches.
    pub breaker: Option<RuleState>,
}

impl Admin {
    pub async fn rules(&self) -> Result<RulesPage> {
        let mut counts: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for c in store::rule_counts(&self.pool).await? {
            counts.entry(c.rule).or_default().insert(c.state, c.count);
        }
        let mut last: BTreeMap<String, LaunchBrief> = store::last_launches(&self.pool)
            .await?
            .into_iter()
            .map(|l| (l.rule.clone(), l))
            .collect();
        let mut breakers: BTreeMap<String, RuleState> = self
            .rule_states()
            .await?
            .into_iter()
            .map(|r| (r.rule.clone(), r))
            .collect();
        let current = self.mappings.current();
        let rules: Vec<RuleRow> = current
            .rules()
            .into_iter()
            .map(|rule| {
                let counts = counts.remove(&rule.name).unwrap_or_default();
                RuleRow {
                    total: counts.values().sum(),
                    last_launch: last.remove(&rule.name),
                    breaker: breakers.remove(&rule.name),
                    counts,
                    rule,
                }
            })
            .collect();
        Ok(RulesPage {
            version: current.version().to_string(),
            rules,
            last_reload: self.mappings.last_reload(),
            retired: counts.into_keys().collect(),
            unloaded: breakers
                .into_values()
                .filter(|b| b.paused || b.held > 0)
                .collect(),
        })
    }
}
