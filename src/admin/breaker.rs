//! The circuit breaker per rule (README "Circuit breaker"): each rule's state, pausing a rule by
//! hand (a kill switch, for any rule) and resuming it, releasing or dropping what it held. The
//! JSON API, the console and the `rules` commands all come here.

use super::{Admin, Error, Result};
use crate::domain::AuditAction;
use crate::launch as breaker;
use crate::launch::sql::held;
use crate::launch::sql::pauses::{self, Breaker, PausedBy};
use crate::operators::{audit, Actor};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Most characters of an operator's reason (it is quoted on tickets).
const MAX_REASON_CHARS: usize = 500;

/// One rule's breaker.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleState {
    pub rule: String,
    /// False: the rule is not in the loaded mapping files (it was renamed or removed).
    pub loaded: bool,
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_by: Option<PausedBy>,
    pub reason: Option<String>,
    /// Jobs in a row that ended `failed` or `error` (a `successful` one resets it).
    pub failures: i32,
    /// The rule's threshold; null: it never pauses itself (an operator still can).
    pub pause_after_failures: Option<u32>,
    /// Launches held while the rule is paused.
    pub held: i64,
}

/// What happens to a paused rule's held launches when it is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// Back to `planned`, oldest first, through storm control.
    Release,
    /// `dropped` (final); each one's ticket is told.
    Drop,
}

/// A resumed rule and what became of its held launches.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Resumed {
    pub rule: RuleState,
    pub released: u64,
    pub dropped: u64,
}

fn state(rule: String, loaded: bool, threshold: Option<u32>, b: Option<Breaker>) -> RuleState {
    let b = b.unwrap_or(Breaker {
        rule: rule.clone(),
        failures: 0,
        paused_at: None,
        paused_by: None,
        reason: None,
        held: 0,
    });
    RuleState {
        rule,
        loaded,
        paused: b.paused_at.is_some(),
        paused_at: b.paused_at,
        paused_by: b.paused_by,
        reason: b.reason,
        failures: b.failures,
        pause_after_failures: threshold,
        held: b.held,
    }
}

impl Admin {
    /// Every loaded rule in file order, then any other rule the database knows (paused, held
    /// launches or a failure count) by name.
    pub async fn rule_states(&self) -> Result<Vec<RuleState>> {
        let mut stored: BTreeMap<String, Breaker> = pauses::breakers(&self.pool)
            .await?
            .into_iter()
            .map(|b| (b.rule.clone(), b))
            .collect();
        let mut out: Vec<RuleState> = self
            .mappings
            .current()
            .rules()
            .into_iter()
            .map(|r| {
                let b = stored.remove(&r.name);
                state(r.name, true, r.pause_after_failures, b)
            })
            .collect();
        out.extend(
            stored
                .into_iter()
                .map(|(name, b)| state(name, false, None, Some(b))),
        );
        Ok(out)
    }

    pub async fn rule_state(&self, name: &str) -> Result<RuleState> {
        self.rule_states()
            .await?
            .into_iter()
            .find(|r| r.rule == name)
            .ok_or_else(|| unknown(name))
    }

    /// Pauses the rule on every replica: from the commit on, its launches are held, never sent.
    /// A rule already paused stays paused as it was.
    pub async fn pause_rule(
        &self,
        name: &str,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<RuleState> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(Error::Invalid(format!(
                "`reason` is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        self.check_known(name).await?;
        let mut tx = self.pool.begin().await?;
        let (pause, fresh) = pauses::pause(&mut tx, name, PausedBy::Operator, reason).await?;
        tx.commit().await?;
        if fresh {
            tracing::warn!(rule = %name, reason = %pause.why(), user = %actor.name, "rule paused by an operator");
        }
        let detail = serde_json::json!({ "reason": reason, "already_paused": !fresh });
        audit::record(
            &self.pool,
            actor,
            AuditAction::RulePause,
            Some(&audit::rule(name)),
            detail,
        )
        .await;
        self.rule_state(name).await
    }

    /// Lifts the pause and resets the failure count; held launches are released (back to
    /// `planned`, oldest first) or dropped (each ticket told).
    pub async fn resume_rule(&self, name: &str, choice: Held, actor: &Actor) -> Result<Resumed> {
        self.check_known(name).await?;
        let mut tx = self.pool.begin().await?;
        let Some(pause) = pauses::resume(&mut tx, name).await? else {
            return Err(Error::Conflict(format!("rule `{name}` is not paused")));
        };
        let (mut released, mut dropped, mut told) = (0, 0, false);
        match choice {
            Held::Release => released = held::release(&mut tx, name).await?,
            Held::Drop => {
                let why = format!(
                    "dropped by an operator ({}) on resume; the rule was {}",
                    actor.name,
                    pause.why()
                );
                let rows = held::drop_all(&mut tx, name, &why).await?;
                dropped = rows.len() as u64;
                for row in &rows {
                    told |= breaker::tell_dropped(&mut tx, &self.notifier, row, &pause).await?;
                }
            }
        }
        tx.commit().await?;
        tracing::warn!(rule = %name, released, dropped, user = %actor.name, "rule resumed by an operator");
        let detail =
            serde_json::json!({ "held": choice, "released": released, "dropped": dropped });
        audit::record(
            &self.pool,
            actor,
            AuditAction::RuleResume,
            Some(&audit::rule(name)),
            detail,
        )
        .await;
        if let Some(w) = &self.wake {
            if released > 0 {
                w.launch.notify_one();
            }
            if told {
                w.notify.notify_one();
            }
        }
        Ok(Resumed {
            rule: self.rule_state(name).await?,
            released,
            dropped,
        })
    }

    /// A rule that is loaded, or that the database knows.
    async fn check_known(&self, name: &str) -> Result<()> {
        let loaded = self
            .mappings
            .current()
            .rule_names()
            .iter()
            .any(|n| n == name);
        if loaded || pauses::known(&self.pool, name).await? {
            Ok(())
        } else {
            Err(unknown(name))
        }
    }
}

fn unknown(name: &str) -> Error {
    Error::NotFound(format!(
        "no rule `{name}`: it is not loaded, and nothing is stored for it"
    ))
}
