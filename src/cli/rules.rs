//! `rules list | pause | resume`: the circuit breaker per rule from a shell, over the admin
//! service (the same calls as `/api/v1/rules`). Changes go to the database, so every running
//! replica sees them on its next poll.

use super::admin::{out, pool};
use crate::admin::{Admin, Held, RuleState};
use crate::config::Settings;
use clap::{ArgGroup, Args, Subcommand};
use std::sync::Arc;

/// `aap-bridge rules --help`.
pub const RULES_HELP: &str = "The circuit breaker of each mapping rule. A rule with \
`pause_after_failures: N` pauses itself after N jobs in a row end `failed` or `error`; any rule \
can be paused by hand (a kill switch). While a rule is paused, its matching events are recorded \
with a `held` launch (never sent) and each ticket is told once. Resuming releases the held \
launches (back to `planned`, oldest first, through storm control) or drops them (each ticket \
told).\n\n\
Reads database.url and the mapping files from the configuration and applies migrations first. \
Every replica reads the pause from the database.\n\n\
Examples:\n  aap-bridge rules list\n  aap-bridge rules pause snow-remediation --reason 'change freeze'\n  \
aap-bridge rules resume snow-remediation --release\n  aap-bridge rules resume snow-remediation --drop";

#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Each rule: paused or active, by whom, why, since when, failures in a row, held launches.
    List,
    /// Pause a rule on every replica: its launches are held, never sent, until it is resumed.
    Pause(PauseArgs),
    /// Resume a paused rule: release its held launches (--release) or drop them (--drop).
    Resume(ResumeArgs),
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    /// The rule's name (see `aap-bridge rules list`).
    pub name: String,
    /// Why; quoted on the tickets of the launches it holds.
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Args, Debug)]
#[command(group = ArgGroup::new("held").required(true).args(["release", "drop"]))]
pub struct ResumeArgs {
    pub name: String,
    /// Held launches go back to `planned`, oldest first, through storm control.
    #[arg(long)]
    pub release: bool,
    /// Held launches are dropped (final); each ticket is told.
    #[arg(long)]
    pub drop: bool,
}

pub async fn run(settings: &Settings, command: &RulesCommand) -> anyhow::Result<()> {
    let admin = admin(settings).await?;
    match command {
        RulesCommand::List => out(table(&admin.rule_states().await?).trim_end()),
        RulesCommand::Pause(args) => {
            let r = admin
                .pause_rule(
                    &args.name,
                    args.reason.as_deref(),
                    &crate::operators::Actor::cli(),
                )
                .await?;
            eprintln!("rule {} is paused on every replica", r.rule);
            out(table(&[r]).trim_end())
        }
        RulesCommand::Resume(args) => {
            let held = if args.drop { Held::Drop } else { Held::Release };
            let r = admin
                .resume_rule(&args.name, held, &crate::operators::Actor::cli())
                .await?;
            eprintln!(
                "rule {} resumed: {} held launch(es) released, {} dropped",
                r.rule.rule, r.released, r.dropped
            );
            out(table(&[r.rule]).trim_end())
        }
    }
}

/// The database, the rules as configured (to list and check names) and the ticket clients
/// (to tell the tickets of dropped launches).
async fn admin(settings: &Settings) -> anyhow::Result<Admin> {
    let pool = pool(settings).await?;
    let mappings = match super::load_mappings(settings) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("aap-bridge: {e}; listing only what the database knows");
            crate::mapping::Mappings::empty()
        }
    };
    let notifier = crate::notify::Notifier::new(&settings.sources).map_err(anyhow::Error::msg)?;
    Ok(Admin::with_mappings(pool, mappings).with_notifier(Arc::new(notifier), None))
}

/// RULE, STATE, SINCE, BY, FAILURES, HELD, REASON; the reason is not padded.
fn table(rules: &[RuleState]) -> String {
    let rows: Vec<[String; 7]> = rules
        .iter()
        .map(|r| {
            let failures = match r.pause_after_failures {
                Some(n) => format!("{}/{n}", r.failures),
                None => r.failures.to_string(),
            };
            let name = if r.loaded {
                r.rule.clone()
            } else {
                format!("{} (not loaded)", r.rule)
            };
            [
                name,
                if r.paused { "paused" } else { "active" }.to_string(),
                r.paused_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".into()),
                r.paused_by.map_or("-".into(), |b| b.to_string()),
                failures,
                r.held.to_string(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let head = ["RULE", "STATE", "SINCE", "BY", "FAILURES", "HELD", "REASON"].map(String::from);
    let mut width = head.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            match i {
                6 => line.push_str(cell),
                _ => line.push_str(&format!("{cell:<w$}  ", w = width[i])),
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    if rows.is_empty() {
        text.push_str("(no rules)\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_says_paused_and_counts_failures_against_the_threshold() {
        let r = RuleState {
            rule: "snow".into(),
            loaded: true,
            paused: true,
            paused_at: Some(chrono::Utc::now()),
            paused_by: Some(crate::domain::PausedBy::Auto),
            reason: Some("2 jobs in a row".into()),
            failures: 2,
            pause_after_failures: Some(2),
            held: 3,
        };
        let t = table(&[r]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("RULE  STATE"), "{t}");
        assert!(lines[1].contains("paused"), "{t}");
        assert!(
            lines[1].contains("auto  2/2       3     2 jobs in a row"),
            "{t}"
        );
    }
}
