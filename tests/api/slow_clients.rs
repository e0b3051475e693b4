//! Hostile senders: slow heads, stalled bodies, too many uploads at once. Timeouts are set to
//! 1 s here; each check allows 5 s, so a loaded machine does not make them flaky.

use crate::support::{error_of, Sender, TestApp, SOURCES_YAML};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WITHIN: Duration = Duration::from_secs(5);

/// SOURCES_YAML with extra `server:` keys (indented by 2).
fn with_server(keys: &str) -> String {
    SOURCES_YAML.replace(
        "  shutdown_grace_secs: 5\n",
        &format!("  shutdown_grace_secs: 5\n{keys}"),
    )
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes; None if it is still open after `within`.
async fn until_closed(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// Headers of a POST to `/hooks/{source}` declaring `len` body bytes.
fn upload_head(source: &str, len: usize) -> String {
    format!(
        "POST /hooks/{source} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: issues\r\nX-GitHub-Delivery: s\r\nContent-Length: {len}\r\n\r\n"
    )
}

#[sqlx::test]
async fn a_head_that_never_ends_is_closed(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool.clone(),
        pool,
        &with_server("  header_read_timeout_secs: 1\n"),
    )
    .await;
    let mut s = connect(&app).await;
    s.write_all(b"POST /hooks/gh HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let closed = until_closed(&mut s, WITHIN).await;
    assert!(closed.is_some(), "still open after {WITHIN:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "closed too early"
    );

    // The same bound closes a keep-alive connection that sits idle after a request.
    let mut s = connect(&app).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut s, WITHIN)
        .await
        .expect("idle connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[sqlx::test]
async fn a_body_that_stalls_is_answered_408_and_closed(pool: PgPool) {
    let app =
        TestApp::spawn_with(pool.clone(), pool, &with_server("  body_timeout_secs: 1\n")).await;
    let mut s = connect(&app).await;
    s.write_all(upload_head("gh", 500).as_bytes())
        .await
        .unwrap();
    s.write_all(&[b'{'; 100]).await.unwrap();
    let answer = until_closed(&mut s, WITHIN)
        .await
        .expect("closed within 5 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "{answer}");
    assert!(answer.contains("within 1 s"), "{answer}");
    // The service is fine afterwards.
    assert_eq!(app.deliver(Sender::Github, "after-stall").await.0, 202);
    assert_eq!(app.event_count().await, 1);
}

/// Opens an upload of `len` bytes, sends part of it and stalls. Returns the answer if one comes
/// within `wait` (shed), or None while the service is still waiting for the body.
async fn stall(app: &TestApp, len: usize, wait: Duration) -> (TcpStream, Option<String>) {
    let mut s = connect(app).await;
    s.write_all(upload_head("gh", len).as_bytes())
        .await
        .unwrap();
    s.write_all(&[b' '; 10]).await.unwrap();
    let answer = until_closed(&mut s, wait).await;
    (s, answer)
}

#[sqlx::test]
async fn stalled_uploads_beyond_the_byte_budget_are_shed_and_deliveries_go_on(pool: PgPool) {
    // Room for four 15,000-byte uploads and about 5 KiB more.
    let keys =
        "  body_limit_bytes: 16000\n  body_timeout_secs: 30\n  max_inflight_body_bytes: 65000\n";
    let app = TestApp::spawn_with(pool.clone(), pool, &with_server(keys)).await;
    let mut held = Vec::new();
    let mut shed = None;
    for _ in 0..8 {
        let (s, answer) = stall(&app, 15_000, Duration::from_millis(700)).await;
        match answer {
            None => held.push(s),
            Some(a) => {
                shed = Some(a);
                break;
            }
        }
    }
    assert_eq!(held.len(), 4, "four uploads fit in the budget");
    let answer = shed.expect("the fifth upload is refused");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 5"),
        "{answer}"
    );
    assert!(answer.contains("max_inflight_body_bytes"), "{answer}");
    // A normal delivery (well under 5 KiB) still fits and is stored.
    let (status, body) = app.deliver(Sender::Github, "during-stall").await;
    assert_eq!(status, 202, "{body}");
    // Closing the stalled uploads gives their bytes back.
    drop(held);
    let big = vec![b' '; 15_000];
    let mut status = 0;
    for _ in 0..50 {
        status = app.post("gh", &[], &big).await.0;
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "unsigned, but no longer shed");
}

#[sqlx::test]
async fn hooks_beyond_the_concurrency_cap_get_503(pool: PgPool) {
    let keys = "  body_timeout_secs: 30\n  max_concurrent_hooks: 2\n";
    let app = TestApp::spawn_with(pool.clone(), pool, &with_server(keys)).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let (s, answer) = stall(&app, 500, Duration::from_millis(300)).await;
        assert!(answer.is_none(), "{answer:?}");
        held.push(s);
    }
    let (status, body) = app.deliver(Sender::Github, "third").await;
    assert_eq!(status, 503, "{body}");
    assert!(error_of(&body).contains("max_concurrent_hooks"), "{body}");
    // Health and metrics are not capped.
    assert_eq!(app.get("/healthz").await.0, 200);
    drop(held);
    let mut status = 0;
    for i in 0..50 {
        status = app.deliver(Sender::Github, &format!("later-{i}")).await.0;
        if status == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 202);
}
