//! `Application::build` wires settings into a running service; tests use it with port 0.

use crate::config::{Settings, SourceKind};
use crate::controller::Controller;
use crate::http::{router, AppState};
use crate::ingest::Inbox;
use crate::mapping::{Mappings, SharedMappings};
use crate::notify::Notifier;
use crate::store;
use crate::workers::{self, Hooks};
use axum::Router;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    shutdown: CancellationToken,
    writers: Vec<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    grace: Duration,
}

impl Application {
    /// Creates the database if needed, applies migrations, binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        store::ensure_database(&settings.database).await?;
        let options = store::connect_options(&settings.database)?;
        let pool = store::lazy_pool(&settings.database, options);
        store::migrate(&pool).await?;
        Self::build_with_pool(settings, pool).await
    }

    /// Uses a pool whose database is already migrated (tests hand in their own).
    pub async fn build_with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        Self::build_with(settings, pool, Hooks::default()).await
    }

    /// Like `build_with_pool`, with fault-injection hooks for tests.
    pub async fn build_with(
        settings: Settings,
        pool: PgPool,
        hooks: Hooks,
    ) -> anyhow::Result<Self> {
        crate::metrics::install();
        let sources = crate::sources::build(&settings);
        if sources.is_empty() {
            tracing::warn!(
                "no sources configured: every POST /hooks/* answers 404 (see deploy/config.example.yaml)"
            );
        }
        let shutdown = CancellationToken::new();
        let kinds = source_kinds(&settings);
        let mappings = if kinds.is_empty() {
            tracing::warn!("no sources configured: mappings not loaded");
            Mappings::empty()
        } else {
            Mappings::load(&settings.mappings.path, &kinds).map_err(|errors| {
                let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                anyhow::anyhow!("mappings are invalid:\n  {}", list.join("\n  "))
            })?
        };
        tracing::info!(rules = mappings.len(), path = %settings.mappings.path.display(), "mappings loaded");
        let mappings = SharedMappings::new(mappings);
        let admin_mappings = mappings.clone();
        if !kinds.is_empty() {
            tokio::spawn(crate::mapping::watch(
                mappings.clone(),
                settings.mappings.path.clone(),
                kinds,
                Duration::from_secs(settings.mappings.reload_interval_secs.max(1)),
                shutdown.clone(),
            ));
        }
        let controller = match &settings.controller {
            Some(c) => Some(Arc::new(Controller::new(c, Some(pool.clone()))?)),
            None => {
                tracing::warn!(
                    "no controller configured: DRY-RUN mode, launches are recorded, not sent"
                );
                None
            }
        };
        let notifier = Arc::new(Notifier::new(&settings.sources).map_err(|e| anyhow::anyhow!(e))?);
        let wake_dispatch = Arc::new(tokio::sync::Notify::new());
        let health = Arc::new(crate::controller::ControllerHealth::new(
            Duration::from_millis(settings.workers.probe_interval_ms.max(50)),
        ));
        let settle_secs = settings
            .workers
            .settle_secs(settings.controller.as_ref().map_or(30, |c| c.timeout_secs));
        let ctx = Arc::new(workers::Context {
            pool: pool.clone(),
            settings: settings.workers.clone(),
            controller,
            mappings,
            notifier,
            wake_dispatch: wake_dispatch.clone(),
            wake_launch: Arc::new(tokio::sync::Notify::new()),
            wake_notify: Arc::new(tokio::sync::Notify::new()),
            hooks,
            retention: settings.retention.clone(),
            replica: replica_name(),
            launch_slots: Arc::new(tokio::sync::Semaphore::new(
                settings.workers.launch_concurrency,
            )),
            health: health.clone(),
            settle_secs,
            down_sources: workers::DownSources::new(Duration::from_millis(
                settings.workers.probe_interval_ms.max(50),
            )),
        });
        let worker_handles = workers::start(ctx, shutdown.child_token());
        let (inbox, writers) = Inbox::start(pool.clone(), &settings.ingest, wake_dispatch);
        let state = AppState {
            sources: Arc::new(sources),
            inbox,
            pool,
            mappings: admin_mappings,
            admin_token: settings.admin.token.clone(),
            controller_health: settings.controller.is_some().then_some(health),
        };
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router: router(state),
            port,
            shutdown,
            writers,
            workers: worker_handles,
            grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancel it to stop: the listener closes, in-flight requests finish, writers drain.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(port = self.port, "listening");
        let token = self.shutdown.clone();
        let server = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(token.clone().cancelled_owned());
        let grace = self.grace;
        tokio::select! {
            r = server => r?,
            _ = async { token.cancelled().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time");
            }
        }
        // The router (and every Inbox sender) is gone now, so the writers finish their queue.
        for w in self.writers.into_iter().chain(self.workers) {
            let _ = tokio::time::timeout(grace, w).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Cancels `token` on SIGTERM or ctrl-c.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        tracing::info!("shutdown requested");
        token.cancel();
    });
}

/// Host name and a random suffix: unique per process, readable in `launches.owner`.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|| "bridge".into());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..8])
}

pub fn source_kinds(settings: &Settings) -> HashMap<String, SourceKind> {
    settings
        .sources
        .iter()
        .map(|(name, s)| (name.clone(), s.kind))
        .collect()
}
