//! `aap-bridge db start|stop|status|psql`: the private PostgreSQL that `serve` starts in
//! `dev_mode` when the configured server does not answer, and how `serve` uses it.

use crate::config::Settings;
use crate::store::private_pg::{self, PrivatePg, Status};
use clap::Subcommand;
use std::path::Path;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create (first time) and start the private server in ./.aap-bridge/postgres.
    Start {
        /// Another folder (the test runner uses target/private-pg).
        #[arg(long, hide = true)]
        dir: Option<std::path::PathBuf>,
        /// Also listen on 127.0.0.1:PORT, tuned for throwaway test data (the test runner).
        #[arg(long, hide = true)]
        test_port: Option<u16>,
    },
    /// Stop it.
    Stop {
        /// Another folder (the test runner's: target/private-pg/cluster).
        #[arg(long, hide = true)]
        dir: Option<std::path::PathBuf>,
    },
    /// Whether it exists and runs, where, and the database.url that reaches it.
    Status,
    /// Open psql on the bridge's database in it.
    Psql,
}

fn database_name(settings: &Settings) -> String {
    crate::store::connect_options(&settings.database)
        .ok()
        .and_then(|o| o.get_database().map(str::to_string))
        .unwrap_or_else(|| "aap_bridge".to_string())
}

pub fn run(settings: &Settings, command: &DbCommand) -> anyhow::Result<()> {
    let dir = match command {
        DbCommand::Start { dir: Some(d), .. } | DbCommand::Stop { dir: Some(d) } => d.as_path(),
        _ => Path::new(private_pg::DEFAULT_DIR),
    };
    let mut pg = PrivatePg::locate(dir).map_err(anyhow::Error::msg)?;
    let db = database_name(settings);
    match command {
        DbCommand::Start { test_port, .. } => {
            if let Some(port) = test_port {
                pg = pg.for_tests(*port);
            }
            let started = pg.start().map_err(anyhow::Error::msg)?;
            let how = if started {
                "started"
            } else {
                "already running"
            };
            println!("private PostgreSQL {how} in {}", pg.root.display());
            println!("database.url: {}", pg.url(&db));
        }
        DbCommand::Stop { .. } => {
            pg.stop().map_err(anyhow::Error::msg)?;
            println!("private PostgreSQL in {} is stopped", pg.root.display());
        }
        DbCommand::Status => {
            let state = match pg.status() {
                Status::NotCreated => "not created",
                Status::Stopped => "stopped",
                Status::Running => "running",
            };
            println!("private PostgreSQL in {}: {state}", pg.root.display());
            println!("binaries: {}", pg.bindir().display());
            println!("database.url: {}", pg.url(&db));
            println!("log: {}", pg.log_file().display());
        }
        DbCommand::Psql => pg.psql(&db).map_err(anyhow::Error::msg)?,
    }
    Ok(())
}

/// `serve` in `dev_mode` when `database.url` does not answer: starts (or reuses) the private
/// server and points the settings at it. Returns it when this call started it, so `serve`
/// stops it on the way out. Outside `dev_mode`, or when the server answers, nothing changes.
pub async fn private_if_needed(settings: &mut Settings) -> anyhow::Result<Option<PrivatePg>> {
    let Some(configured) = unanswered_in_dev_mode(settings).await else {
        return Ok(None);
    };
    let pg = PrivatePg::locate(Path::new(private_pg::DEFAULT_DIR)).map_err(|e| {
        anyhow::anyhow!(
            "PostgreSQL does not answer at {configured} (database.url), and dev_mode could not \
             start a private one: {e}"
        )
    })?;
    let started = pg.start().map_err(|e| {
        anyhow::anyhow!("PostgreSQL does not answer at {configured} (database.url), and the private one did not start: {e}")
    })?;
    let db = database_name(settings);
    let url = pg.url(&db);
    tracing::warn!(
        "PostgreSQL does not answer at {configured} (database.url). dev_mode {} a private \
         PostgreSQL with the installed binaries ({}): data in {}, a Unix socket there and no TCP \
         port, trust auth for this user only; its log is {}. It stops when this process exits \
         (`aap-bridge db stop` stops one left running). To use a real server instead, start it \
         or set database.url (AAP_BRIDGE__DATABASE__URL).",
        if started { "started" } else { "reuses" },
        pg.bindir().display(),
        pg.root.display(),
        pg.log_file().display(),
    );
    settings.database.url = url.into();
    Ok(started.then_some(pg))
}

/// The other commands in `dev_mode` (`events`, `rules`, `migrate`, …): when `database.url` does
/// not answer but the private server runs, they use it (it is never started for them).
pub async fn use_private_if_running(settings: &mut Settings) {
    if unanswered_in_dev_mode(settings).await.is_none() {
        return;
    }
    let Ok(pg) = PrivatePg::locate(Path::new(private_pg::DEFAULT_DIR)) else {
        return;
    };
    if pg.status() == Status::Running {
        eprintln!(
            "aap-bridge: database.url does not answer; using the private PostgreSQL in {} \
             (dev_mode)",
            pg.root.display()
        );
        settings.database.url = pg.url(&database_name(settings)).into();
    }
}

/// In `dev_mode`, when `database.url` does not answer: where it points (for the log). None
/// outside `dev_mode` or when the server answers.
async fn unanswered_in_dev_mode(settings: &Settings) -> Option<String> {
    if !settings.dev_mode {
        return None;
    }
    let options = crate::store::connect_options(&settings.database).ok()?;
    if private_pg::answers(&options, Duration::from_secs(2)).await {
        return None;
    }
    Some(match options.get_socket() {
        Some(dir) => format!("the socket in {}", dir.display()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    })
}
