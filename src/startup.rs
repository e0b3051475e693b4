//! `Application::build` wires settings into a running service; tests use it with port 0.

use crate::config::Settings;
use crate::http::{router, AppState};
use crate::ingest::Inbox;
use crate::store;
use axum::Router;
use sqlx::PgPool;
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
        let sources = crate::sources::build(&settings);
        if sources.is_empty() {
            tracing::warn!(
                "no sources configured: every POST /hooks/* answers 404 (see deploy/config.example.yaml)"
            );
        }
        let (inbox, writers) = Inbox::start(pool.clone(), &settings.ingest);
        let state = AppState {
            sources: Arc::new(sources),
            inbox,
            pool,
        };
        let listener = TcpListener::bind(&settings.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.server.listen))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            router: router(state),
            port,
            shutdown: CancellationToken::new(),
            writers,
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
        for w in self.writers {
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
