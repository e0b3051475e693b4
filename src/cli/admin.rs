//! `simulate`, `events` and `replay`: the admin API's work from a shell.

use crate::admin::query::EventQuery;
use crate::admin::Admin;
use crate::config::Settings;
use crate::store::events::EventState;
use clap::builder::TypedValueParser as _;
use clap::{ArgGroup, Args};
use std::io::Read;
use std::path::PathBuf;
use uuid::Uuid;

/// `aap-bridge simulate --help`.
pub const SIMULATE_HELP: &str =
    "Shows what the bridge would do with a delivery: the normalized event, whether it \
is ignored, which rules match, and the exact launch request each would send to the controller \
(with `\"<simulated>\"` in place of the marker ids). It uses the configured sources and the \
mapping files as they are now. Nothing is stored or launched, no server or database is needed, \
and the signature is NOT checked, so no signature headers are needed.\n\n\
Exits 0 when the delivery could be evaluated, even if no rule matches (see `state` and \
`reason`); non-zero when the input is unusable (unknown source, bad JSON, missing header).\n\n\
Example:\n  aap-bridge simulate --source github --header 'X-GitHub-Event: issues' \
--header 'X-GitHub-Delivery: test-1' --header 'X-GitHub-Hook-ID: 1' --body issue.json";

#[derive(Args, Debug)]
#[command(group = ArgGroup::new("payload").required(true).args(["body", "body_json"]))]
pub struct SimulateArgs {
    /// The source name from the config (the `{source}` of POST /hooks/{source}).
    #[arg(long, value_name = "NAME")]
    pub source: String,
    /// A request header, as `Name: value`. Repeat for several (e.g. GitHub needs X-GitHub-Event).
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// File holding the delivery body as the sender would POST it; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// The delivery body as a JSON text on the command line.
    #[arg(long, value_name = "JSON")]
    pub body_json: Option<String>,
}

/// `aap-bridge events --help`.
pub const EVENTS_HELP: &str = "Lists the events stored in the database (newest first) with how they \
arrived (delivered, redelivered or caught_up), their state and reason, or with --id shows one \
event in full: headers, payload, the rules' decision, its launches \
(job id, status, link) and its post-backs, as GET /api/v1/events/{id} shows it.\n\n\
Reads database.url from the configuration and applies migrations first.\n\n\
Examples:\n  aap-bridge events --state unmapped\n  aap-bridge events --source github --limit 100\n  \
aap-bridge events --id 0193a0c4-…";

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only events from this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Only events in this state: pending, dispatched, unmapped, ignored or failed.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(EventState::NAMES)
        .map(|s| s.parse::<EventState>().expect("one of NAMES")))]
    pub state: Option<EventState>,
    /// Only events with this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only events of this type (e.g. incident.insert).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Search: any part of the ticket number, sys_id, PagerDuty incident id, owner/repo#number
    /// or delivery id (case-insensitive), or text in the newest 20,000 payloads.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// How many events to list (at most 500).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=500))]
    pub limit: i64,
    /// List events older than this event id (the next page).
    #[arg(long, value_name = "UUID")]
    pub before: Option<Uuid>,
    /// Show this one event in full, as JSON.
    #[arg(long, value_name = "UUID", conflicts_with_all = ["source", "state", "category", "event_type", "search", "before"])]
    pub id: Option<Uuid>,
}

/// `aap-bridge replay --help`.
pub const REPLAY_HELP: &str =
    "Stores a copy of a stored event as a new pending event (delivery id \
`<original>#replay-<n>`), which a running bridge then maps and launches like any delivery, \
under the rules in force now. Ignored and unmapped events can be replayed too. The original \
is left as it is; the copy records which event it replays.\n\n\
Prints the new event id. Same as POST /api/v1/events/{id}/replay.\n\n\
Example:\n  aap-bridge replay 0193a0c4-…";

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The id of the event to replay (see `aap-bridge events`).
    #[arg(value_name = "EVENT_ID")]
    pub event_id: Uuid,
}

pub fn simulate(settings: &Settings, args: &SimulateArgs) -> anyhow::Result<()> {
    let pairs = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| anyhow::anyhow!("--header `{h}` must look like `Name: value`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let headers = crate::admin::header_map(pairs)?;
    let body = match (&args.body, &args.body_json) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
        (Some(path), _) => std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --body {}: {e}", path.display()))?,
        (None, Some(text)) => {
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| anyhow::anyhow!("--body-json is not valid JSON: {e}"))?;
            text.as_bytes().to_vec()
        }
        (None, None) => anyhow::bail!("give the delivery body with --body FILE or --body-json"),
    };
    let sources = crate::sources::build(settings);
    let mappings = super::load_mappings(settings)?;
    let answer = crate::admin::simulate(&sources, &mappings, &args.source, &headers, &body)?;
    out(&serde_json::to_string_pretty(&answer)?)
}

pub async fn events(settings: &Settings, args: &EventsArgs) -> anyhow::Result<()> {
    let admin = database(settings).await?;
    if let Some(id) = args.id {
        let event = admin.event(id).await?;
        return out(&serde_json::to_string_pretty(&event)?);
    }
    let query = EventQuery {
        source: args.source.clone(),
        state: args.state,
        category: args.category.clone(),
        event_type: args.event_type.clone(),
        q: args.search.clone(),
        before: args.before,
        limit: Some(args.limit),
        ..EventQuery::default()
    };
    let page = admin.events(&query).await?;
    let (events, next) = (page.events, page.next_before);
    let rows: Vec<[String; 8]> = events
        .iter()
        .map(|e| {
            [
                e.id.to_string(),
                e.received_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.source.clone(),
                e.event_type.clone(),
                e.category.clone().unwrap_or_else(|| "-".into()),
                e.arrival.to_string(),
                e.state.to_string(),
                e.state_reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = table(&rows);
    if let Some(next) = next {
        text.push_str(&format!("(more: --before {next})\n"));
    } else if rows.is_empty() {
        text.push_str("(no events)\n");
    }
    out(text.trim_end())
}

pub async fn replay(settings: &Settings, args: &ReplayArgs) -> anyhow::Result<()> {
    let r = database(settings)
        .await?
        .replay(args.event_id, &crate::operators::Actor::cli())
        .await?;
    eprintln!(
        "event {} stored as a replay of {} (delivery id {}); a running bridge dispatches it",
        r.event_id, r.replay_of, r.delivery_id
    );
    out(&r.event_id.to_string())
}

/// Prints `text` and a newline; a closed pipe (`| head`) is not an error.
pub(super) fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

async fn database(settings: &Settings) -> anyhow::Result<Admin> {
    Ok(Admin::database_only(pool(settings).await?))
}

/// The configured database, created and migrated if needed.
pub(super) async fn pool(settings: &Settings) -> anyhow::Result<sqlx::PgPool> {
    crate::store::ensure_database(&settings.database).await?;
    let options = crate::store::connect_options(&settings.database)?;
    let pool = crate::store::lazy_pool(&settings.database, options);
    crate::store::migrate(&pool).await?;
    Ok(pool)
}

/// Left-aligned columns under a header; the last column (the reason) is not padded.
fn table(rows: &[[String; 8]]) -> String {
    const HEAD: [&str; 8] = [
        "ID",
        "RECEIVED",
        "SOURCE",
        "EVENT TYPE",
        "CATEGORY",
        "ARRIVAL",
        "STATE",
        "REASON",
    ];
    let mut width = HEAD.map(str::len);
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 8]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i == 7 {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = width[i]));
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(HEAD);
    for row in rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let row = |id: &str, reason: &str| {
            [
                id,
                "2026-11-22 10:00:00",
                "snow",
                "incident.insert",
                "-",
                "delivered",
                "unmapped",
                reason,
            ]
            .map(String::from)
        };
        let t = super::table(&[row("a", "no rule"), row("bbb", "")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("ID   RECEIVED"), "{t}");
        assert!(lines[1].ends_with("unmapped  no rule"), "{t}");
        assert!(lines[2].ends_with("unmapped"), "{t}");
    }
}
