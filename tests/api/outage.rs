//! The database goes away (a proxy we control is cut): 503 quickly, nothing lost, recovery.

use crate::support::{error_of, proxy::TcpProxy, Sender, TestApp, SOURCES_YAML};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

#[sqlx::test]
async fn database_outage_is_503_then_recovers(pool: PgPool) {
    let opts = pool.connect_options();
    let target = format!("{}:{}", opts.get_host(), opts.get_port())
        .to_socket_addrs()
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    let proxied = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with((*opts).clone().host("127.0.0.1").port(proxy.port));
    let app = TestApp::spawn_with(pool, proxied, SOURCES_YAML).await;

    assert_eq!(app.deliver(Sender::Github, "up-1").await.0, 202);

    proxy.cut();
    let started = Instant::now();
    let (status, resp) = app.deliver(Sender::Github, "down-1").await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{resp}");
    assert!(error_of(&resp).contains("retry"), "{resp}");
    // Bounded by the configured commit timeout (2 s), not a hang.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(app.get("/readyz").await.0, 503);

    proxy.restore();
    // The sender retries the same delivery; it lands once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, resp) = app.deliver(Sender::Github, "down-1").await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 503, "{resp}");
        assert!(
            Instant::now() < deadline,
            "no recovery after the proxy came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/readyz").await.0, 200);
    assert_eq!(app.event_count().await, 2);
}

#[sqlx::test]
async fn closed_port_is_503_not_500(pool: PgPool) {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(
            (*pool.connect_options())
                .clone()
                .host("127.0.0.1")
                .port(port),
        );
    let app = TestApp::spawn_with(pool, dead, SOURCES_YAML).await;
    for sender in Sender::ALL {
        let (status, resp) = app.deliver(sender, "x").await;
        assert_eq!(status, 503, "{sender:?}: {resp}");
    }
}
