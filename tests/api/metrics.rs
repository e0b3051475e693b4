//! /metrics in Prometheus text format. Counters are process-wide and tests run in parallel, so
//! this checks series exist and move, not exact totals.

use crate::support::pipeline::{wait_for, Options, Pipeline};
use crate::support::{Sender, TestApp, SOURCES_YAML};
use sqlx::PgPool;

fn value(text: &str, series_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(p: &Pipeline) -> String {
    let resp = p
        .app
        .client
        .get(format!("{}/metrics", p.app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain"), "{ct}");
    resp.text().await.unwrap()
}

#[sqlx::test]
async fn metrics_cover_ingest_launches_callbacks_and_queues(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    p.deliver(Sender::ServiceNow, "m-1").await;
    let body = Sender::Github.body("bad");
    let headers = Sender::Github.signed_headers("wrong-secret", "bad", &body);
    assert_eq!(p.app.post("gh", &headers, &body).await.0, 401);
    wait_for("both work notes", 20, || async {
        (p.tickets
            .servicenow_notes("9d385017c611228701d22104cc95c371")
            .len()
            >= 2)
            .then_some(())
    })
    .await;

    // The database gauges are refreshed in the background (every 200 ms in tests).
    let text = wait_for("the gauges to catch up", 10, || async {
        let text = scrape(&p).await;
        (value(&text, "aap_bridge_launches{state=\"finished\"}") == Some(1.0)).then_some(text)
    })
    .await;
    let accepted = value(
        &text,
        "aap_bridge_events_received_total{source=\"snow\",outcome=\"accepted\"}",
    )
    .or_else(|| {
        value(
            &text,
            "aap_bridge_events_received_total{outcome=\"accepted\",source=\"snow\"}",
        )
    });
    assert!(accepted.unwrap_or(0.0) >= 1.0, "{text}");
    assert!(
        text.contains("aap_bridge_signature_failures_total{source=\"gh\"}"),
        "{text}"
    );
    assert!(
        text.contains("aap_bridge_launches_total{controller=\"default\",result=\"launched\"}"),
        "{text}"
    );
    assert!(
        text.contains("aap_bridge_callback_attempts_total"),
        "{text}"
    );
    assert!(
        text.contains("aap_bridge_dispatch_latency_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("aap_bridge_controller_request_duration_seconds_bucket"),
        "{text}"
    );
    assert_eq!(
        value(&text, "aap_bridge_queue_depth{queue=\"events_pending\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "aap_bridge_launches{state=\"finished\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "aap_bridge_database_up"), Some(1.0));
    assert_eq!(value(&text, "aap_bridge_up"), Some(1.0));
}

/// Scrapes flood `/metrics` while deliveries arrive: every delivery is still stored. Scrapes
/// read memory and the admin pool, never the ingest pool.
#[sqlx::test]
async fn a_scrape_flood_does_not_starve_deliveries(pool: PgPool) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let app = Arc::new(TestApp::spawn(pool).await);
    let stop = Arc::new(AtomicBool::new(false));
    let scrapes = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..16 {
        let (app, stop, scrapes) = (app.clone(), stop.clone(), scrapes.clone());
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = app.client.get(format!("{}/metrics", app.base)).send().await;
                assert_eq!(r.unwrap().status(), 200);
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut sends = tokio::task::JoinSet::new();
    for i in 0..40 {
        let app = app.clone();
        sends.spawn(async move { app.deliver(Sender::Github, &format!("flood-{i}")).await });
    }
    while let Some(r) = sends.join_next().await {
        let (status, body) = r.unwrap();
        assert_eq!(status, 202, "{body}");
    }
    stop.store(true, Ordering::Relaxed);
    for f in flood {
        f.await.unwrap();
    }
    assert!(scrapes.load(Ordering::Relaxed) >= 16, "the flood ran");
    assert_eq!(app.event_count().await, 40);
    assert_eq!(app.get("/readyz").await.0, 200);
}

#[sqlx::test]
async fn admin_listen_moves_metrics_and_the_admin_api(pool: PgPool) {
    let yaml = SOURCES_YAML.replace(
        "  shutdown_grace_secs: 5\n",
        "  shutdown_grace_secs: 5\n  admin_listen: \"127.0.0.1:0\"\n",
    );
    let app = TestApp::spawn_with(pool.clone(), pool, &yaml).await;
    let admin = app.admin_base.clone().expect("an admin port");
    let get = |url: String| {
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(format!("{}/metrics", app.base)).await, 404);
    assert_eq!(get(format!("{}/api/v1/openapi.json", app.base)).await, 404);
    assert_eq!(get(format!("{admin}/metrics")).await, 200);
    assert_eq!(get(format!("{admin}/api/v1/openapi.json")).await, 200);
    assert_eq!(get(format!("{admin}/readyz")).await, 200);
    // Deliveries stay on the main listener only.
    assert_eq!(app.deliver(Sender::Github, "main-port").await.0, 202);
    let r = app
        .client
        .post(format!("{admin}/hooks/gh"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
