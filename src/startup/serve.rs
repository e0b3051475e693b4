//! The accept loop. axum::serve cannot set hyper's header read timeout, so connections are served
//! with hyper-util's builder here, with the same graceful close: when `close` is cancelled the
//! listener stops accepting, each connection finishes its request in progress, and the task
//! returns once every connection has ended.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

#[derive(Clone, Copy, Debug)]
pub(super) struct ConnLimits {
    pub header_read: Duration,
    pub idle: Duration,
}

pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    close: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let stream = tokio::select! {
            _ = close.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let (stream, peer) = stream;
        conns.spawn(connection(
            builder.clone(),
            stream,
            peer,
            router.clone(),
            limits,
            close.clone(),
        ));
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// Requests in progress on one connection, and when the last one ended.
struct Activity {
    started: Instant,
    busy: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When the connection counts as idle if nothing happens before then.
    fn idle_at(&self, idle: Duration) -> Instant {
        let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        last + idle
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn connection(
    builder: Arc<Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    limits: ConnLimits,
    close: CancellationToken,
) {
    let activity = Arc::new(Activity {
        started: Instant::now(),
        busy: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let seen = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        // Handlers read the client's address from here (`http::client`).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        seen.busy.fetch_add(1, Ordering::Relaxed);
        let busy = Busy(seen.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(req.map(axum::body::Body::new)).await;
            drop(busy);
            response
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let idle_at = activity.idle_at(limits.idle);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Header timeouts and peers that vanish land here; not the service's fault.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = close.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep_until(idle_at), if !closing => {
                if activity.busy.load(Ordering::Relaxed) == 0
                    && activity.idle_at(limits.idle) <= Instant::now()
                {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                } else if activity.busy.load(Ordering::Relaxed) > 0 {
                    activity.touch();
                }
            }
        }
    }
}
