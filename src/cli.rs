//! Command line: `aap-bridge [--config FILE] <command>`.

use crate::config::Settings;
use crate::startup::{cancel_on_signal, Application};
use clap::{Parser, Subcommand};

mod admin;
mod catch_up;
mod db;
mod rules;
mod send;
use std::path::{Path, PathBuf};

/// The file read when neither `--config` nor `AAP_BRIDGE_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "aap-bridge.yaml";

#[derive(Parser, Debug)]
#[command(
    name = "aap-bridge",
    version,
    about = "Signed webhooks from ServiceNow, GitHub and PagerDuty to Ansible controller jobs",
    long_about = "Receives signed webhooks, stores them durably, maps them to job templates, \
launches and tracks the jobs, and posts the job link and outcome back to the ticket.\n\n\
Configuration: built-in defaults, then the YAML file (--config, else AAP_BRIDGE_CONFIG, else \
./aap-bridge.yaml when it exists), then AAP_BRIDGE__SECTION__KEY environment variables. See \
deploy/config.example.yaml."
)]
pub struct Cli {
    /// YAML configuration file [default: ./aap-bridge.yaml, when it exists].
    #[arg(long, short, global = true, env = "AAP_BRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default). Migrations are applied first.
    Serve,
    /// Create the database if missing, apply migrations, and exit.
    Migrate,
    /// Validate the configuration and every mapping rule; exit non-zero with file:line errors.
    Check,
    /// Exit 0 if the local service answers `GET /healthz` with 200 (for container health checks).
    Health {
        /// Defaults to http://127.0.0.1:<port of server.listen>/healthz.
        #[arg(long)]
        url: Option<String>,
    },
    /// Talk to the Ansible controller.
    Controller {
        #[command(subcommand)]
        command: ControllerCommand,
    },
    /// Show what the rules would do with a delivery (no server, no database, nothing launched).
    #[command(long_about = admin::SIMULATE_HELP)]
    Simulate(admin::SimulateArgs),
    /// List stored events with their state and reason, or show one in full (--id).
    #[command(long_about = admin::EVENTS_HELP)]
    Events(admin::EventsArgs),
    /// Store a copy of an event as a new pending event, so it is mapped and launched again.
    #[command(long_about = admin::REPLAY_HELP)]
    Replay(admin::ReplayArgs),
    /// The circuit breaker of each rule: list, pause (a kill switch) and resume.
    #[command(long_about = rules::RULES_HELP)]
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
    /// Run one catch-up pass for a source now: ask GitHub to redeliver what the bridge missed,
    /// or read missed ServiceNow records; print what it did.
    #[command(name = "catch-up", long_about = catch_up::CATCH_UP_HELP)]
    CatchUp(catch_up::CatchUpArgs),
    /// Sign a payload as the source's sender would, post it to the running service, and show
    /// what the bridge decided.
    #[command(long_about = send::SEND_HELP)]
    Send(send::SendArgs),
    /// The private PostgreSQL `serve` starts in dev_mode when database.url does not answer.
    Db {
        #[command(subcommand)]
        command: db::DbCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ControllerCommand {
    /// Connect with the configured settings and print flavour, version, user and token state.
    /// Run this first after configuring `controller:`. Password mode uses (and if needed creates)
    /// the same stored token as `serve`. With several controllers, checks each (or `--name`).
    Check {
        /// Only the controller of this name (`default` is `controller:`).
        #[arg(long)]
        name: Option<String>,
    },
}

/// The configuration file to read: `explicit` (`--config` or `AAP_BRIDGE_CONFIG`), else
/// `./aap-bridge.yaml` when it exists; and one line saying which, for the log or stderr.
pub fn config_file(explicit: Option<&Path>) -> (Option<PathBuf>, String) {
    if let Some(p) = explicit {
        return (
            Some(p.to_path_buf()),
            format!("configuration file: {}", p.display()),
        );
    }
    let default = Path::new(".").join(DEFAULT_CONFIG_FILE);
    if default.is_file() {
        let line = format!(
            "configuration file: {} (found in the current directory; --config or \
             AAP_BRIDGE_CONFIG names another)",
            default.display()
        );
        return (Some(default), line);
    }
    (
        None,
        format!(
            "no configuration file (no --config, no AAP_BRIDGE_CONFIG, no ./{DEFAULT_CONFIG_FILE}): \
             built-in defaults and AAP_BRIDGE__* variables"
        ),
    )
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let (path, said) = config_file(cli.config.as_deref());
    let settings = Settings::load(path.as_deref()).map_err(|e| match &path {
        Some(p) => anyhow::anyhow!("{}: {e}", p.display()),
        None => e.into(),
    })?;
    let command = cli.command.unwrap_or(Command::Serve);
    let _log = crate::telemetry::init(&settings.log, !matches!(command, Command::Serve));
    // `serve` logs it; the other commands keep stdout for their answer.
    match command {
        Command::Serve => tracing::info!(config = ?path, "{said}"),
        _ => eprintln!("aap-bridge: {said}"),
    }
    let mut settings = settings;
    if !matches!(command, Command::Serve | Command::Db { .. }) {
        db::use_private_if_running(&mut settings).await;
    }
    match command {
        Command::Serve => {
            let private = db::private_if_needed(&mut settings).await?;
            let served = match Application::build(settings).await {
                Ok(app) => {
                    cancel_on_signal(app.shutdown_token());
                    app.run_until_stopped().await
                }
                Err(e) => Err(e),
            };
            if let Some(pg) = private {
                match pg.stop() {
                    Ok(()) => tracing::info!("private PostgreSQL stopped"),
                    Err(e) => tracing::error!(error = %e, "could not stop the private PostgreSQL"),
                }
            }
            served
        }
        Command::Db { command } => db::run(&settings, &command),
        Command::Migrate => {
            crate::store::ensure_database(&settings.database).await?;
            let options = crate::store::connect_options(&settings.database)?;
            let pool = crate::store::lazy_pool(&settings.database, options);
            crate::store::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Controller {
            command: ControllerCommand::Check { name },
        } => controller_check(&settings, name.as_deref()).await,
        Command::Check => check(&settings),
        Command::Health { url } => health(&settings, url).await,
        Command::Simulate(args) => admin::simulate(&settings, &args),
        Command::Events(args) => admin::events(&settings, &args).await,
        Command::Replay(args) => admin::replay(&settings, &args).await,
        Command::Rules { command } => rules::run(&settings, &command).await,
        Command::Send(args) => send::send(&settings, &args).await,
        Command::CatchUp(args) => catch_up::run(&settings, &args).await,
    }
}

async fn controller_check(settings: &Settings, name: Option<&str>) -> anyhow::Result<()> {
    let all = settings.controllers();
    if all.is_empty() {
        anyhow::bail!("no `controller:` section configured: the bridge runs in dry-run mode");
    }
    let chosen: Vec<(&str, &crate::config::ControllerSettings)> = match name {
        Some(n) => match all.get_key_value(n) {
            Some((n, c)) => vec![(*n, *c)],
            None => anyhow::bail!(
                "no controller is named `{n}` ({})",
                settings.controller_names()
            ),
        },
        None => all.into_iter().collect(),
    };
    let several = chosen.len() > 1;
    let mut failed = Vec::new();
    for (name, cs) in chosen {
        if several {
            println!("== {name}");
        }
        if let Err(e) = check_one(settings, name, cs).await {
            eprintln!("{name}: {e}");
            failed.push(name);
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false if several => anyhow::bail!("controller check failed for: {}", failed.join(", ")),
        false => anyhow::bail!("controller check failed"),
    }
}

async fn check_one(
    settings: &Settings,
    name: &str,
    cs: &crate::config::ControllerSettings,
) -> anyhow::Result<()> {
    let pool = match cs.auth {
        crate::config::AuthSettings::Password { .. } => {
            crate::store::ensure_database(&settings.database).await?;
            let options = crate::store::connect_options(&settings.database)?;
            let pool = crate::store::lazy_pool(&settings.database, options);
            crate::store::migrate(&pool).await?;
            Some(pool)
        }
        _ => None,
    };
    let controller = crate::controller::Controller::new(name, cs, pool)?;
    let report = controller
        .check()
        .await
        .map_err(|e| anyhow::anyhow!("controller check failed: {e}"))?;
    println!(
        "controller: {} ({:?}, API {}, version {})",
        report.url,
        report.flavour,
        report.api_root,
        report.version.as_deref().unwrap_or("unknown")
    );
    println!("user: {} (id {})", report.user.username, report.user.id);
    println!("auth: {}", serde_json::to_string(&report.auth)?);
    println!("job settings: {}", report.jinja.describe());
    if let Some(w) = report.jinja.warning() {
        println!("WARNING: {w}");
        eprintln!("WARNING: {w}");
    }
    Ok(())
}

/// Loads the mapping rules, printing each problem as `file:line: message` on stderr.
fn load_mappings(settings: &Settings) -> anyhow::Result<crate::mapping::Mappings> {
    let kinds = crate::startup::source_kinds(settings);
    let path = &settings.mappings.path;
    crate::mapping::Mappings::load(path, &kinds).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} problem(s) in {}", errors.len(), path.display())
    })
}

fn check(settings: &Settings) -> anyhow::Result<()> {
    let kinds = crate::startup::source_kinds(settings);
    let path = &settings.mappings.path;
    let mappings = load_mappings(settings)?;
    println!(
        "configuration OK: {} source(s) ({}), {} rule(s) from {}, controller: {}",
        settings.sources.len(),
        kinds.sources.keys().cloned().collect::<Vec<_>>().join(", "),
        mappings.len(),
        path.display(),
        settings
            .default_controller()
            .map(|c| c.url.as_str())
            .unwrap_or("none (dry-run)")
    );
    Ok(())
}

async fn health(settings: &Settings, url: Option<String>) -> anyhow::Result<()> {
    let url = match url {
        Some(u) => u,
        None => {
            let port = settings
                .server
                .listen
                .rsplit(':')
                .next()
                .unwrap_or("8080")
                .to_string();
            format!("http://127.0.0.1:{port}/healthz")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()?;
    let status = client.get(&url).send().await?.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    Ok(())
}
