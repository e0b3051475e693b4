//! Properties every sender shares, run for each kind.

use crate::support::{error_of, Sender, TestApp};
use sqlx::PgPool;
use tokio::task::JoinSet;

async fn valid_then_duplicate(pool: PgPool, sender: Sender) {
    let app = TestApp::spawn(pool).await;
    let (status, body) = app.deliver(sender, "d-1").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let id = body["event_id"].as_str().unwrap().to_string();
    assert_eq!(app.event_count().await, 1);

    let (status, body) = app.deliver(sender, "d-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "duplicate");
    assert_eq!(body["event_id"], id.as_str());
    assert_eq!(app.event_count().await, 1);

    let (status, _) = app.deliver(sender, "d-2").await;
    assert_eq!(status, 202);
    assert_eq!(app.event_count().await, 2);
}

async fn concurrent_identical(pool: PgPool, sender: Sender) {
    let app = std::sync::Arc::new(TestApp::spawn(pool).await);
    let mut set = JoinSet::new();
    for _ in 0..20 {
        let app = app.clone();
        set.spawn(async move { app.deliver(sender, "same").await });
    }
    let mut accepted = 0;
    let mut ids = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        let (status, body) = r.unwrap();
        match status {
            202 => accepted += 1,
            200 => assert_eq!(body["status"], "duplicate"),
            other => panic!("unexpected {other}: {body}"),
        }
        ids.insert(body["event_id"].as_str().unwrap().to_string());
    }
    assert_eq!(accepted, 1, "exactly one delivery is accepted");
    assert_eq!(ids.len(), 1, "duplicates point at the stored event");
    assert_eq!(app.event_count().await, 1);
}

async fn bad_signatures(pool: PgPool, sender: Sender) {
    let app = TestApp::spawn(pool).await;
    let body = sender.body("d-x");
    let ts = crate::support::senders::now();
    let mut wrong = sender.unsigned_headers("d-x");
    wrong.push(sender.signature_header("not-the-secret", &body, ts));
    wrong.push(("X-Bridge-Timestamp".into(), ts.to_string()));
    let missing = sender.unsigned_headers("d-x");
    let mut garbled = sender.unsigned_headers("d-x");
    garbled.push(sender.garbled_signature());
    garbled.push(("X-Bridge-Timestamp".into(), ts.to_string()));
    // Signed correctly, then the body changed in transit.
    let tampered = sender.signed_headers(sender.new_secret(), "d-x", &body);
    let mut other_body = body.clone();
    other_body.push(b' ');

    for (what, headers, b) in [
        ("wrong secret", &wrong, &body),
        ("missing", &missing, &body),
        ("garbled", &garbled, &body),
        ("tampered body", &tampered, &other_body),
    ] {
        let (status, resp) = app.post(sender.source(), headers, b).await;
        assert_eq!(status, 401, "{what}: {resp}");
        assert!(!error_of(&resp).is_empty());
    }
    assert_eq!(app.event_count().await, 0);
}

async fn rotated_secret(pool: PgPool, sender: Sender) {
    let app = TestApp::spawn(pool).await;
    let body = sender.body("old-1");
    let headers = sender.signed_headers(sender.old_secret(), "old-1", &body);
    let (status, resp) = app.post(sender.source(), &headers, &body).await;
    assert_eq!(status, 202, "old secret still active: {resp}");
    let (status, _) = app.deliver(sender, "new-1").await;
    assert_eq!(status, 202);
    assert_eq!(app.event_count().await, 2);
}

async fn malformed_json(pool: PgPool, sender: Sender) {
    let app = TestApp::spawn(pool).await;
    let body = br#"{"event": {"id": "x", "#.to_vec();
    let headers = sender.signed_headers(sender.new_secret(), "m-1", &body);
    let (status, resp) = app.post(sender.source(), &headers, &body).await;
    assert_eq!(status, 400, "{resp}");
    assert!(error_of(&resp).contains("not valid JSON"), "{resp}");
    assert_eq!(app.event_count().await, 0);
}

macro_rules! per_kind {
    ($($name:ident => $sender:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[sqlx::test]
            async fn valid_is_accepted_once(pool: PgPool) { valid_then_duplicate(pool, $sender).await }
            #[sqlx::test]
            async fn twenty_concurrent_identical_store_one(pool: PgPool) { concurrent_identical(pool, $sender).await }
            #[sqlx::test]
            async fn bad_signatures_are_401_and_store_nothing(pool: PgPool) { bad_signatures(pool, $sender).await }
            #[sqlx::test]
            async fn rotated_secret_is_accepted(pool: PgPool) { rotated_secret(pool, $sender).await }
            #[sqlx::test]
            async fn malformed_json_is_400(pool: PgPool) { malformed_json(pool, $sender).await }
        }
    )*};
}

per_kind! {
    github => Sender::Github,
    pagerduty => Sender::PagerDuty,
    servicenow => Sender::ServiceNow,
}

#[sqlx::test]
async fn unknown_source_is_404(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, resp) = app.post("nope", &[], b"{}").await;
    assert_eq!(status, 404);
    assert!(error_of(&resp).contains("unknown source `nope`"));
    let (status, resp) = app.get("/no/such/path").await;
    assert_eq!(status, 404, "{resp}");
}

#[sqlx::test]
async fn oversize_body_is_413(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = vec![b'x'; 2048];
    let headers = Sender::Github.signed_headers("github-new", "big", &body);
    let (status, resp) = app.post("small", &headers, &body).await;
    assert_eq!(status, 413, "{resp}");
    assert!(error_of(&resp).contains("1024 byte limit"));

    // Chunked (no Content-Length) is caught while reading too.
    let stream = futures_stream(body.clone());
    let mut req = app
        .client
        .post(format!("{}/hooks/small", app.base))
        .body(reqwest::Body::wrap_stream(stream));
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(app.event_count().await, 0);
}

fn futures_stream(
    body: Vec<u8>,
) -> impl tokio_stream::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    tokio_stream::iter(body.chunks(256).map(|c| Ok(c.to_vec())).collect::<Vec<_>>())
}

#[sqlx::test]
async fn github_published_test_vector_verifies(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let headers = vec![
        ("X-GitHub-Event".to_string(), "issues".to_string()),
        ("X-GitHub-Delivery".to_string(), "vec-1".to_string()),
        (
            "X-Hub-Signature-256".to_string(),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_string(),
        ),
    ];
    // The signature passes, so the request gets as far as parsing (and fails there: not JSON).
    let (status, resp) = app.post("vector", &headers, b"Hello, World!").await;
    assert_eq!(status, 400, "{resp}");
    assert!(error_of(&resp).contains("not valid JSON"));
    let (status, _) = app.post("vector", &headers, b"Hello, World?").await;
    assert_eq!(status, 401);
}

#[sqlx::test]
async fn health_and_readiness(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    assert_eq!(app.get("/readyz").await.0, 200);
}

#[sqlx::test]
async fn shutdown_finishes_and_closes_the_listener(pool: PgPool) {
    let mut app = TestApp::spawn(pool).await;
    assert_eq!(app.deliver(Sender::Github, "before-stop").await.0, 202);
    app.shutdown.cancel();
    let handle = app.handle.take().unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), handle)
        .await
        .expect("stops within the grace period");
    assert!(result.unwrap().is_ok());
    assert!(app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .is_err());
    assert_eq!(app.event_count().await, 1);
}

/// Two commit writers committing at once, with the same bodies arriving in crossing orders
/// under fresh delivery ids: every body is stored once, every copy points at it, and no batch
/// fails (the writers take their rows in key order, so they never wait on each other in a
/// circle).
#[sqlx::test]
async fn two_writers_store_each_body_once_under_crossing_duplicates(pool: PgPool) {
    let yaml = crate::support::SOURCES_YAML.replacen(
        "ingest:\n",
        "ingest:\n  writers: 2\n  parallel_batch_min: 2\n",
        1,
    );
    assert_ne!(yaml, crate::support::SOURCES_YAML);
    let app = std::sync::Arc::new(TestApp::spawn_with(pool.clone(), pool, &yaml).await);
    let sender = Sender::Github;
    const BODIES: usize = 40;
    let mut set = JoinSet::new();
    for copy in 0..3 {
        let order: Vec<usize> = match copy % 2 {
            0 => (0..BODIES).collect(),
            _ => (0..BODIES).rev().collect(),
        };
        for i in order {
            let app = app.clone();
            set.spawn(async move {
                let body = sender.body(&format!("body-{i}"));
                let delivery = format!("body-{i}-copy-{copy}");
                let headers = sender.signed_headers(sender.new_secret(), &delivery, &body);
                (i, app.post(sender.source(), &headers, &body).await)
            });
        }
    }
    let mut ids: Vec<std::collections::HashSet<String>> = vec![Default::default(); BODIES];
    let mut accepted = 0;
    while let Some(r) = set.join_next().await {
        let (i, (status, body)) = r.unwrap();
        match status {
            202 => accepted += 1,
            200 => assert_eq!(body["status"], "duplicate", "{body}"),
            other => panic!("body {i}: {other} {body}"),
        }
        ids[i].insert(body["event_id"].as_str().unwrap().to_string());
    }
    assert_eq!(accepted, BODIES);
    assert!(ids.iter().all(|s| s.len() == 1), "{ids:?}");
    assert_eq!(app.event_count().await, BODIES as i64);
}
