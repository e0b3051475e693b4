//! Shutdown and supervision: the drain, no acknowledged delivery lost, a dead task stops the
//! process with an error.

use crate::support::pipeline::wait_for;
use crate::support::{error_of, Sender, TestApp, SOURCES_YAML};
use aap_bridge::workers::Hooks;
use sqlx::PgPool;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn with_drain(secs: u64) -> String {
    let yaml = SOURCES_YAML.replace("drain_secs: 0", &format!("drain_secs: {secs}"));
    assert_ne!(yaml, SOURCES_YAML, "SOURCES_YAML sets drain_secs");
    yaml
}

/// A signed GitHub delivery over `client`; None when the connection fails (listener closed).
async fn try_deliver(client: &reqwest::Client, base: &str, delivery: &str) -> Option<u16> {
    let sender = Sender::Github;
    let body = sender.body(delivery);
    let mut req = client
        .post(format!("{base}/hooks/{}", sender.source()))
        .body(body.clone());
    for (k, v) in sender.signed_headers(sender.new_secret(), delivery, &body) {
        req = req.header(k, v);
    }
    Some(req.send().await.ok()?.status().as_u16())
}

#[sqlx::test]
async fn every_acknowledged_delivery_survives_a_shutdown_under_load(pool: PgPool) {
    let mut app = TestApp::spawn_with(pool.clone(), pool.clone(), &with_drain(1)).await;
    let handle = app.handle.take().unwrap();
    let stopping = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for t in 0..8 {
        let (base, client) = (app.base.clone(), app.client.clone());
        let (stopping, answered) = (stopping.clone(), answered.clone());
        senders.push(tokio::spawn(async move {
            // (delivery id, answered 202, sent after shutdown began)
            let mut seen = Vec::new();
            for i in 0..5_000 {
                let id = format!("load-{t}-{i}");
                let late = stopping.load(Ordering::SeqCst);
                match try_deliver(&client, &base, &id).await {
                    Some(status) => {
                        answered.fetch_add(1, Ordering::SeqCst);
                        seen.push((id, status == 202, late));
                    }
                    None => break,
                }
            }
            seen
        }));
    }
    wait_for("deliveries to flow", 20, || async {
        (answered.load(Ordering::SeqCst) >= 100).then_some(())
    })
    .await;
    stopping.store(true, Ordering::SeqCst);
    app.shutdown.cancel();
    let result = tokio::time::timeout(Duration::from_secs(15), handle)
        .await
        .expect("stops within drain + grace");
    assert!(result.unwrap().is_ok());

    let mut accepted = BTreeSet::new();
    let mut accepted_late = 0;
    for s in senders {
        let seen = tokio::time::timeout(Duration::from_secs(20), s)
            .await
            .expect("senders end once the listener is closed")
            .unwrap();
        for (id, ok, late) in seen {
            if ok {
                accepted_late += usize::from(late);
                accepted.insert(id);
            }
        }
    }
    assert!(
        accepted_late > 0,
        "deliveries were accepted during the drain"
    );
    let stored: BTreeSet<String> = sqlx::query_scalar("SELECT delivery_id FROM events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        // GitHub delivery ids are stored as `<hook id>:<delivery>`.
        .map(|d: String| d.rsplit(':').next().unwrap_or_default().to_string())
        .collect();
    assert!(accepted.len() >= 100, "{} accepted", accepted.len());
    let lost: Vec<&String> = accepted.difference(&stored).collect();
    assert!(lost.is_empty(), "answered 202 but not stored: {lost:?}");
}

#[sqlx::test]
async fn readyz_turns_503_while_the_listener_still_serves(pool: PgPool) {
    let mut app = TestApp::spawn_with(pool.clone(), pool, &with_drain(2)).await;
    assert_eq!(app.get("/readyz").await.0, 200);
    let handle = app.handle.take().unwrap();
    let started = Instant::now();
    app.shutdown.cancel();

    let body = wait_for("/readyz to answer 503", 2, || async {
        let (status, body) = app.get("/readyz").await;
        (status == 503).then_some(body)
    })
    .await;
    assert_eq!(error_of(&body), "shutting down");
    // Still serving, on new connections too, and deliveries are still stored.
    let fresh = reqwest::Client::new();
    assert_eq!(
        try_deliver(&fresh, &app.base, "during-drain").await,
        Some(202)
    );
    assert_eq!(app.get("/healthz").await.0, 200);

    let result = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("stops after the drain");
    assert!(result.unwrap().is_ok());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the listener stayed open for drain_secs"
    );
    assert!(fresh
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .is_err());
    assert_eq!(app.event_count().await, 1);
}

#[sqlx::test]
async fn a_dead_commit_writer_stops_the_service_with_an_error(pool: PgPool) {
    let hooks = Hooks::default();
    hooks.panic_commit_writer.store(true, Ordering::SeqCst);
    // The default drain (5 s) would be skipped: a broken replica stops at once.
    let yaml = with_drain(5);
    let mut app = TestApp::spawn_hooked(pool.clone(), pool, &yaml, hooks).await;
    let handle = app.handle.take().unwrap();
    let started = Instant::now();
    let status = try_deliver(&app.client, &app.base, "to-a-dead-writer").await;
    assert_ne!(
        status,
        Some(202),
        "not acknowledged: the writer died with it"
    );

    let result = tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("stops on its own")
        .unwrap();
    let err = result.expect_err("a dead writer is an error").to_string();
    assert!(err.contains("commit writer 0"), "{err}");
    assert!(err.contains("panicked: fault injection"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "no drain");
    assert!(app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .is_err());
    assert_eq!(app.event_count().await, 0);
}
