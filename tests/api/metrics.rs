//! /metrics in Prometheus text format. Counters are process-wide and tests run in parallel, so
//! this checks series exist and move, not exact totals.

use crate::support::pipeline::{wait_for, Options, Pipeline};
use crate::support::Sender;
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

    let text = scrape(&p).await;
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
        text.contains("aap_bridge_launches_total{result=\"launched\"}"),
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
