//! Decide at ingest: an event decided before its commit and the same event decided by the
//! dispatcher (stored `pending`, as after a restart from an older version) give identical rows,
//! and every decided event names the rules version that decided it.

use crate::support::pipeline::{config, wait_for, RULES};
use crate::support::{Sender, TestApp};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use std::path::Path;
use uuid::Uuid;

/// A dry-run service (no controller): launches stay as planned, so rows can be compared.
async fn dry_run(pool: &PgPool, rules_dir: &Path) -> TestApp {
    let full = config("http://127.0.0.1:9", "http://127.0.0.1:9", rules_dir, 30);
    let start = full.find("controller:").unwrap();
    let end = full.find("sources:").unwrap();
    let yaml = format!("{}{}", &full[..start], &full[end..]);
    TestApp::spawn_with(pool.clone(), pool.clone(), &yaml).await
}

async fn event_row(pool: &PgPool, id: Uuid) -> Value {
    sqlx::query_scalar::<_, Json<Value>>(
        "SELECT to_jsonb(e) FROM (SELECT state, state_reason, decision, rules_version
                                  FROM events WHERE id = $1) e",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
    .0
}

/// The event's launches as comparable JSON: everything but ids, times and the two markers
/// (which name the launch's own event and launch, checked separately).
async fn launch_rows(pool: &PgPool, event: Uuid) -> Vec<Value> {
    let rows: Vec<(Uuid, Json<Value>, Json<Value>)> = sqlx::query_as(
        "SELECT id, request, to_jsonb(l) - 'request' - 'id' FROM (
             SELECT id, rule, source, kind, ticket, template_kind, template_id, template_name,
                    template_org, request, reply, report_outcome, max_concurrent, coalesce_key,
                    coalesced_into, state, attempts, held_at, sent_at
             FROM launches WHERE event_id = $1 ORDER BY rule) l",
    )
    .bind(event)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, request, mut row)| {
            let mut request = request.0;
            let vars = request["extra_vars"].as_object_mut().unwrap();
            let mut marker = |k: &str| vars.remove(k).unwrap().as_str().unwrap().to_string();
            assert_eq!(marker("aap_bridge_event_id"), event.to_string());
            assert_eq!(marker("aap_bridge_launch_id"), id.to_string());
            row.0["request"] = request;
            row.0
        })
        .collect()
}

#[sqlx::test]
async fn ingest_and_dispatcher_decide_identical_rows(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let app = dry_run(&pool, dir.path()).await;
    for sender in [Sender::ServiceNow, Sender::Github, Sender::PagerDuty] {
        let (status, body) = app.deliver(sender, "same").await;
        assert_eq!(status, 202, "{body}");
        let at_ingest: Uuid = body["event_id"].as_str().unwrap().parse().unwrap();
        // Decided before the commit: final as soon as the delivery is answered.
        let row = event_row(&pool, at_ingest).await;
        assert_eq!(row["state"], "dispatched", "{sender:?}: {row}");

        // The same event stored `pending` (a row from before an upgrade): the dispatcher's turn.
        let later = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO events (id, source, kind, delivery_id, dedupe_key, event_type, category,
                                 ticket, headers, payload, received_at, arrival)
             SELECT $2, source, kind, delivery_id, dedupe_key || ':again', event_type, category,
                    ticket, headers, payload, received_at, arrival
             FROM events WHERE id = $1",
        )
        .bind(at_ingest)
        .bind(later)
        .execute(&pool)
        .await
        .unwrap();
        wait_for("the dispatcher's decision", 15, || async {
            let row = event_row(&pool, later).await;
            (row["state"] != "pending").then_some(())
        })
        .await;

        assert_eq!(
            event_row(&pool, later).await,
            row,
            "{sender:?}: event rows differ"
        );
        let (ingest, dispatcher) = (
            launch_rows(&pool, at_ingest).await,
            launch_rows(&pool, later).await,
        );
        assert_eq!(ingest.len(), 1, "{sender:?}: {ingest:?}");
        assert_eq!(ingest, dispatcher, "{sender:?}: launch rows differ");
        assert_eq!(ingest[0]["state"], "dry_run");
    }
}

async fn version(app: &TestApp) -> String {
    let (status, page) = app.admin("GET", "/rules", None).await;
    assert_eq!(status, 200, "{page}");
    page["version"].as_str().unwrap().to_string()
}

#[sqlx::test]
async fn each_decision_names_its_rules_version(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let app = dry_run(&pool, dir.path()).await;
    let v1 = version(&app).await;
    let (_, first) = app.deliver(Sender::ServiceNow, "v-1").await;
    let first: Uuid = first["event_id"].as_str().unwrap().parse().unwrap();

    // A reload: disk_full now launches template 16.
    std::fs::write(&rules, RULES.replace("disk_full: 15", "disk_full: 16")).unwrap();
    let v2 = wait_for("the reload", 20, || async {
        let v = version(&app).await;
        (v != v1).then_some(v)
    })
    .await;
    let (_, second) = app.deliver(Sender::ServiceNow, "v-2").await;
    let second: Uuid = second["event_id"].as_str().unwrap().parse().unwrap();

    for (event, version, template) in [(first, &v1, 15), (second, &v2, 16)] {
        let (status, detail) = app.admin("GET", &format!("/events/{event}"), None).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["rules_version"], version.as_str(), "{detail}");
        assert_eq!(detail["launches"][0]["template_id"], template, "{detail}");
        // One controller: every launch goes to the one named `default`.
        assert_eq!(detail["launches"][0]["controller"], "default", "{detail}");
    }
}
