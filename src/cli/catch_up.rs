//! `catch-up`: one catch-up pass from a shell, as `POST /api/v1/catch-up/{source}` runs it.

use crate::admin::Admin;
use crate::catch_up::{parse_since, CatchUp};
use crate::config::Settings;
use clap::Args;
use std::sync::Arc;

/// `aap-bridge catch-up --help`.
pub const CATCH_UP_HELP: &str = "Runs one catch-up pass for a source now, with the \
configuration and the database (like the background pass every catch_up.interval_secs), and \
prints what it did.\n\n\
GitHub: lists the configured hooks' recent deliveries back to the checkpoint (at most GitHub's \
3 days) and asks GitHub to redeliver each failed delivery the bridge does not have, once. The \
redelivery arrives at the running service, signed, like any delivery.\n\n\
ServiceNow: reads the records of catch_up.table matching catch_up.query updated since the \
checkpoint and stores those the bridge does not have as events (arrival `caught_up`); a \
running bridge dispatches them.\n\n\
Waits up to 30 s for a pass already running on a replica. Exits non-zero when the pass \
failed.\n\n\
Examples:\n  aap-bridge catch-up --source github\n  aap-bridge catch-up --source servicenow \
--since 2h\n  aap-bridge catch-up --source servicenow --since 2026-11-22T08:00:00Z --json";

#[derive(Args, Debug)]
pub struct CatchUpArgs {
    /// A source with `catch_up:` in the configuration.
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// Look back to this time instead of the checkpoint: a duration before now (2h, 30m, 3d)
    /// or an RFC 3339 time.
    #[arg(long, value_name = "RFC3339|DURATION")]
    pub since: Option<String>,
    /// Print the summary as JSON, as the admin API answers it.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(settings: &Settings, args: &CatchUpArgs) -> anyhow::Result<()> {
    let since = match &args.since {
        Some(s) => Some(parse_since(s, chrono::Utc::now()).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    let pool = super::admin::pool(settings).await?;
    let catch_up = CatchUp::new(settings, pool.clone(), None, Default::default())
        .map_err(|e| anyhow::anyhow!(e))?;
    let admin = Admin::database_only(pool).with_catch_up(Arc::new(catch_up));
    let summary = admin
        .catch_up(&args.source, since, &crate::operators::Actor::cli())
        .await?;
    let text = match args.json {
        true => serde_json::to_string_pretty(&summary)?,
        false => summary.lines().join("\n"),
    };
    super::admin::out(&text)?;
    match summary.error {
        Some(e) => anyhow::bail!("the catch-up pass failed: {e}"),
        None => Ok(()),
    }
}
