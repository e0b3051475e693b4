//! `Application::build` wires settings into a running service; tests use it with port 0.

mod lanes;
mod serve;
mod supervise;

use crate::config::Settings;
use crate::http::{routers, AppState, AppStateData, HookLimits};
use crate::ingest::Inbox;
use crate::mapping::{Mappings, SharedMappings};
use crate::notify::Notifier;
use crate::store;
use crate::workers::{self, Hooks};
use axum::Router;
use serve::ConnLimits;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use supervise::Tasks;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
    /// `server.admin_listen`: the admin API and `/metrics`, apart from the hooks.
    admin: Option<(TcpListener, Router)>,
    admin_port: Option<u16>,
    admin_pool: PgPool,
    limits: ConnLimits,
    shutdown: CancellationToken,
    /// Commit writers, workers and the mapping watcher.
    tasks: Tasks,
    drain: Duration,
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
        tracing::info!(rules = mappings.len(), version = mappings.version(), path = %settings.mappings.path.display(), "mappings loaded");
        let loaded = crate::mapping::ReloadStatus {
            at: chrono::Utc::now(),
            trigger: "start".into(),
            ok: true,
            errors: Vec::new(),
            rules: mappings.len(),
        };
        let mappings = SharedMappings::new(mappings);
        mappings.record(loaded);
        let admin_mappings = mappings.clone();
        let mut tasks = Tasks::default();
        if !kinds.is_empty() {
            let watcher = tokio::spawn(crate::mapping::watch(
                mappings.clone(),
                settings.mappings.path.clone(),
                kinds,
                Duration::from_secs(settings.mappings.reload_interval_secs.max(1)),
                shutdown.clone(),
            ));
            tasks.add("mapping watcher", watcher);
        }
        let fleet = lanes::fleet(&settings, &pool)?;
        let (lane, controller, health) = match fleet.first() {
            Some(l) => (l.name.clone(), Some(l.controller.clone()), l.health.clone()),
            None => (
                crate::config::DEFAULT_CONTROLLER.to_string(),
                None,
                Arc::new(crate::controller::ControllerHealth::new(
                    lanes::probe_every(&settings),
                )),
            ),
        };
        let notifier = Arc::new(Notifier::new(&settings.sources).map_err(|e| anyhow::anyhow!(e))?);
        let wake_dispatch = Arc::new(tokio::sync::Notify::new());
        // The first lane's own timeout (it is the one this context launches on).
        let timeout = settings
            .controllers()
            .get(lane.as_str())
            .map_or(30, |c| c.timeout_secs);
        let settle_secs = settings.workers.settle_secs(timeout);
        let panic_writer = hooks.panic_commit_writer.clone();
        let catch_up = Arc::new(
            crate::catch_up::CatchUp::new(
                &settings,
                pool.clone(),
                Some(wake_dispatch.clone()),
                hooks.catch_up_without_lock.clone(),
            )
            .map_err(|e| anyhow::anyhow!(e))?,
        );
        for (name, handle) in workers::catch_up::start(catch_up.clone(), shutdown.child_token()) {
            tasks.add(name, handle);
        }
        let login = crate::operators::login::LoginPolicy::new(&settings.admin, controller.clone());
        let admin_notifier = notifier.clone();
        let wakes = crate::admin::Wakes {
            launch: Arc::new(tokio::sync::Notify::new()),
            notify: Arc::new(tokio::sync::Notify::new()),
        };
        let ctx = Arc::new(workers::Context {
            pool: pool.clone(),
            settings: settings.workers.clone(),
            controller,
            lane,
            dry_controllers: settings.dry_run_controllers(),
            mappings,
            record_skipped: settings.mappings.record_skipped,
            notifier,
            wake_dispatch: wake_dispatch.clone(),
            wake_launch: wakes.launch.clone(),
            wake_notify: wakes.notify.clone(),
            hooks,
            retention: settings.retention.clone(),
            replica: replica_name(),
            launch_slots: Arc::new(tokio::sync::Semaphore::new(
                settings.workers.launch_concurrency,
            )),
            notify_slots: Arc::new(tokio::sync::Semaphore::new(
                crate::postback::NOTIFY_CONCURRENCY,
            )),
            launch_starved: Default::default(),
            health: health.clone(),
            settle_secs,
            down_sources: workers::DownSources::new(lanes::probe_every(&settings)),
            attempts: workers::Detached::new("launch attempt"),
            output_waits: workers::Detached::new("job output wait"),
        });
        let ctx_wake_launch = ctx.wake_launch.clone();
        for (name, handle) in workers::start(ctx.clone(), shutdown.child_token()) {
            tasks.add(name, handle);
        }
        lanes::start(&ctx, &fleet, &settings, &shutdown, &mut tasks);
        let decider = crate::decide::Decider {
            mappings: admin_mappings.clone(),
            dry_run: settings.controllers().is_empty(),
            dry_controllers: settings.dry_run_controllers(),
            record_skipped: settings.mappings.record_skipped,
        };
        let wiring = crate::ingest::InboxWiring {
            decider: Some(decider),
            wake_dispatch,
            wake_launch: ctx_wake_launch,
            panic_hook: panic_writer,
        };
        let (inbox, writers) = Inbox::start(pool.clone(), &settings.ingest, wiring);
        for (i, handle) in writers.into_iter().enumerate() {
            tasks.add(format!("commit writer {i}"), handle);
        }
        // Scrapes, probes and admin calls get their own connections, never the ingest pool's.
        let admin_pool = store::admin_pool(&settings.database, &pool);
        // Its own connection too: a flood of refused requests must not take ingest's.
        let keep = crate::deliveries::Keep::from_settings(&settings.retention);
        let deliveries = if keep.max_rows > 0 {
            let (log, writer) = crate::deliveries::DeliveryLog::start(admin_pool.clone(), keep);
            tasks.add("deliveries log writer", writer);
            log
        } else {
            tracing::info!("the deliveries log is off (retention.deliveries_max_rows: 0)");
            crate::deliveries::DeliveryLog::off()
        };
        let client_header = match &settings.server.client_address_header {
            Some(h) => Some(axum::http::HeaderName::try_from(h.as_str()).map_err(|_| {
                anyhow::anyhow!("server.client_address_header `{h}` is not a header name")
            })?),
            None => None,
        };
        let refresher = tokio::spawn(crate::metrics::refresh_loop(
            admin_pool.clone(),
            admin_mappings.clone(),
            fleet
                .lanes()
                .iter()
                .filter_map(|l| Some((l.name.clone(), l.controller.token_row()?.to_string())))
                .collect(),
            Duration::from_millis(settings.server.metrics_refresh_ms),
            shutdown.child_token(),
        ));
        tasks.add("metrics refresher", refresher);
        let sources = Arc::new(sources);
        let admin = crate::admin::Admin::new(
            admin_pool.clone(),
            sources.clone(),
            admin_mappings.clone(),
            Some(fleet.clone()),
        )
        .with_notifier(admin_notifier, Some(wakes))
        .with_catch_up(catch_up);
        let state = AppState::new(AppStateData {
            admin,
            dev_mode: settings.dev_mode,
            sources,
            inbox,
            admin_pool: admin_pool.clone(),
            hook_limits: HookLimits::new(&settings.server),
            mappings: admin_mappings,
            admin_token: settings.admin.token.clone(),
            login,
            fleet: fleet.clone(),
            deliveries,
            client_header,
            stopping: shutdown.clone(),
        });
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {}: {e}{}; the address is server.listen \
                     (AAP_BRIDGE__SERVER__LISTEN)",
                    settings.server.listen,
                    in_use(&e)
                )
            })?;
        let port = listener.local_addr()?.port();
        let admin_listener = match &settings.server.admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {addr} (admin): {e}{}; the address is \
                             server.admin_listen (AAP_BRIDGE__SERVER__ADMIN_LISTEN)",
                    in_use(&e)
                )
            })?),
            None => None,
        };
        let admin_port = match &admin_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let (router, admin_router) = routers(state, admin_listener.is_some());
        Ok(Self {
            listener,
            router,
            port,
            admin: admin_listener.zip(admin_router),
            admin_port,
            admin_pool,
            limits: ConnLimits {
                header_read: Duration::from_secs(settings.server.header_read_timeout_secs),
                idle: Duration::from_secs(settings.server.idle_timeout_secs),
            },
            shutdown,
            tasks,
            drain: Duration::from_secs(settings.server.drain_secs),
            grace: Duration::from_secs(settings.server.shutdown_grace_secs),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `server.admin_listen`, when set.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin_port
    }

    /// Cancel it to stop: `/readyz` turns 503 for `server.drain_secs` while the listener still
    /// serves, then the listener closes and in-flight requests, writers and workers finish.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, or until a background task or the server
    /// ends on its own: that is a fault, and the result is an error so the process exits
    /// non-zero and gets restarted.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            port,
            admin,
            admin_port,
            admin_pool,
            limits,
            shutdown,
            mut tasks,
            drain,
            grace,
        } = self;
        tracing::info!(port, admin_port, "listening");
        let close = CancellationToken::new();
        let server = serve::serve(listener, router, limits, close.clone());
        tasks.add("http server", tokio::spawn(server));
        if let Some((admin_listener, admin_router)) = admin {
            let server = serve::serve(admin_listener, admin_router, limits, close.clone());
            tasks.add("admin http server", tokio::spawn(server));
        }

        let fault = tokio::select! {
            biased;
            _ = shutdown.cancelled() => None,
            Some((name, how)) = tasks.next_end() => match how {
                // It saw the stop before this select did (the mapping watcher returns at once).
                Ok(()) if shutdown.is_cancelled() => None,
                how => {
                    let why = how.err().unwrap_or_else(|| "returned".into());
                    tracing::error!(task = %name, reason = %why,
                        "a background task ended on its own; stopping so that the process is restarted");
                    Some(format!("{name} ended unexpectedly: {why}"))
                }
            },
        };
        shutdown.cancel();
        // A broken replica is better restarted at once than drained.
        if fault.is_none() && !drain.is_zero() {
            tracing::info!(
                drain_secs = drain.as_secs(),
                "shutting down: not ready, still serving"
            );
            tokio::time::sleep(drain).await;
        }
        // The listener closes. In-flight requests, the commit writers (which end once the last
        // request has handed in its event) and the workers share one deadline.
        close.cancel();
        let failures = tasks.stop_all(tokio::time::Instant::now() + grace).await;
        admin_pool.close().await;
        match (fault, failures.is_empty()) {
            (Some(fault), _) => Err(anyhow::anyhow!(fault)),
            (None, false) => Err(anyhow::anyhow!(
                "failed while stopping: {}",
                failures.join("; ")
            )),
            (None, true) => {
                tracing::info!("stopped");
                Ok(())
            }
        }
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

/// A hint when another process holds the port.
fn in_use(e: &std::io::Error) -> &'static str {
    if e.kind() == std::io::ErrorKind::AddrInUse {
        " (another process listens there: stop it, or choose another port)"
    } else {
        ""
    }
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

pub fn source_kinds(settings: &Settings) -> crate::mapping::Known {
    crate::mapping::Known::from_settings(settings)
}
