//! Command line: `aap-bridge [--config FILE] <command>`.

use crate::config::Settings;
use crate::startup::{cancel_on_signal, Application};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "aap-bridge",
    version,
    about = "Signed webhooks from ServiceNow, GitHub and PagerDuty to Ansible controller jobs",
    long_about = "Receives signed webhooks, stores them durably, maps them to job templates, \
launches and tracks the jobs, and posts the job link and outcome back to the ticket.\n\n\
Configuration: built-in defaults, then the YAML file (--config or AAP_BRIDGE_CONFIG), then \
AAP_BRIDGE__SECTION__KEY environment variables. See deploy/config.example.yaml."
)]
pub struct Cli {
    /// YAML configuration file.
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
    /// Talk to the Ansible controller.
    Controller {
        #[command(subcommand)]
        command: ControllerCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ControllerCommand {
    /// Connect with the configured settings and print flavour, version, user and token state.
    /// Run this first after configuring `controller:`. Password mode uses (and if needed creates)
    /// the same stored token as `serve`.
    Check,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            cancel_on_signal(app.shutdown_token());
            app.run_until_stopped().await
        }
        Command::Migrate => {
            crate::store::ensure_database(&settings.database).await?;
            let options = crate::store::connect_options(&settings.database)?;
            let pool = crate::store::lazy_pool(&settings.database, options);
            crate::store::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Controller {
            command: ControllerCommand::Check,
        } => controller_check(&settings).await,
        Command::Check => check(&settings),
    }
}

async fn controller_check(settings: &Settings) -> anyhow::Result<()> {
    let Some(cs) = &settings.controller else {
        anyhow::bail!("no `controller:` section configured: the bridge runs in dry-run mode");
    };
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
    let controller = crate::controller::Controller::new(cs, pool)?;
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
    Ok(())
}

fn check(settings: &Settings) -> anyhow::Result<()> {
    let kinds = crate::startup::source_kinds(settings);
    let path = &settings.mappings.path;
    let mappings = crate::mapping::Mappings::load(path, &kinds).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} problem(s) in {}", errors.len(), path.display())
    })?;
    println!(
        "configuration OK: {} source(s) ({}), {} rule(s) from {}, controller: {}",
        settings.sources.len(),
        kinds.keys().cloned().collect::<Vec<_>>().join(", "),
        mappings.len(),
        path.display(),
        settings
            .controller
            .as_ref()
            .map(|c| c.url.as_str())
            .unwrap_or("none (dry-run)")
    );
    Ok(())
}
