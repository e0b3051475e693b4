//! ServiceNow catch-up: records updated while the bridge was away are read back from the Table
//! API and stored once, with the dedupe key of a business-rule delivery of that record version;
//! and the `catch-up` command through the binary.

use crate::support::console::Console;
use crate::support::fake_tickets::FakeTickets;
use crate::support::pipeline::{
    jobs_per_launch, wait_for, wait_quiescent, Options, Pipeline, Tuning,
};
use crate::support::Sender;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::sync::atomic::Ordering;

fn options(query: &str) -> Options {
    Options {
        tuning: Tuning {
            // instance_url and the user come from the source's `reply:`.
            catch_up: vec![(
                "snow",
                format!("{{table: incident, query: \"{query}\", interval_secs: 3600}}"),
            )],
            ..Tuning::default()
        },
        ..Options::default()
    }
}

fn sys_id(i: usize) -> String {
    format!("9d38{i:028x}")
}

/// `sys_updated_on` as ServiceNow writes it, `minutes` ago.
fn ago(minutes: i64) -> String {
    (Utc::now() - Duration::minutes(minutes))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn record(i: usize, category: &str, updated_on: &str, by: &str) -> Value {
    json!({
        "sys_id": sys_id(i),
        "number": format!("INC{:07}", 10_000 + i),
        "sys_updated_on": updated_on,
        "sys_mod_count": "2",
        "sys_updated_by": by,
        "category": category,
        "cmdb_ci": format!("web{i:02}.example.com"),
        "priority": "2",
        "short_description": "disk full",
        "work_notes": "",
    })
}

async fn caught_up(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE arrival = 'caught_up'")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn records_missed_while_down_are_ingested_once_and_dispatched(pool: PgPool) {
    let tickets = FakeTickets::start().await;
    let times: Vec<String> = (0..3).map(|i| ago(30 - i as i64)).collect();
    for (i, t) in times.iter().enumerate() {
        tickets.servicenow_put_record("incident", record(i, "disk_full", t, "alice"));
    }
    // Not what the query selects, and the bridge's own work note.
    tickets.servicenow_put_record("incident", record(7, "printer", &ago(20), "alice"));
    tickets.servicenow_put_record("incident", record(8, "disk_full", &ago(20), "snow-bot"));
    // The start-up pass reads them.
    let p = Pipeline::start_on(pool.clone(), options("category=disk_full"), tickets).await;
    wait_for("three caught-up events", 30, || async {
        (caught_up(&pool).await == 3).then_some(())
    })
    .await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 3);
    let states: Vec<(String, String)> =
        sqlx::query_as("SELECT state, event_type FROM events ORDER BY received_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        states
            .iter()
            .all(|(s, t)| s == "dispatched" && t == "incident.update"),
        "{states:?}"
    );
    assert!(p
        .tickets
        .servicenow_notes(&sys_id(0))
        .iter()
        .any(|(_, n)| n.contains("Launched job")));
    let queries = p.tickets.servicenow_table_queries();
    assert!(
        queries[0].starts_with("sys_updated_on>=")
            && queries[0].ends_with("^category=disk_full^ORDERBYsys_updated_on^ORDERBYsys_id"),
        "{queries:?}"
    );

    // The business rule's late call for the same record version is a duplicate.
    let body = serde_json::to_vec(&json!({
        "table": "incident", "sys_id": sys_id(0), "number": "INC0010000",
        "sys_updated_on": times[0], "sys_mod_count": "2", "operation": "update",
        "category": "disk_full", "cmdb_ci": "web00.example.com", "priority": "2",
    }))
    .unwrap();
    let headers =
        Sender::ServiceNow.signed_headers(Sender::ServiceNow.new_secret(), "late-br", &body);
    let (status, answer) = p.app.post("snow", &headers, &body).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );

    // Another pass stores nothing; a newer version with the same category is not something
    // the business rule sends (it sends on insert and on a category change).
    p.tickets
        .servicenow_put_record("incident", record(1, "disk_full", &ago(1), "bob"));
    let (status, s) = p.app.admin("POST", "/catch-up/snow?since=2h", None).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["stored"].as_u64(), s["duplicates"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
    assert_eq!(
        s["skipped"], 2,
        "the bridge's own update and the same-category version: {s}"
    );
    assert_eq!(caught_up(&pool).await, 3);
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 3);

    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM events ORDER BY received_at LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (_, detail) = p.app.admin("GET", &format!("/events/{id}"), None).await;
    assert_eq!(detail["arrival"], "caught_up");
    assert_eq!(detail["payload"]["table"], "incident");
    let console = Console::logged_in(&p.app.base).await;
    let page = console.get(&format!("/ui/events/{id}")).await;
    page.assert_has("<th>arrival</th><td>caught_up");
    page.assert_has("read from the ServiceNow Table API by a catch-up pass");
}

#[sqlx::test]
async fn two_replicas_passing_at_once_store_each_record_once(pool: PgPool) {
    let tickets = FakeTickets::start().await;
    for i in 0..30 {
        let r = record(i, "disk_full", &ago(40 - i as i64), "alice");
        tickets.servicenow_put_record("incident", r);
    }
    // Without the lock the passes really overlap; only the unique dedupe key stands between
    // them and a second copy.
    let opts = options("category=disk_full");
    opts.hooks
        .catch_up_without_lock
        .store(true, Ordering::SeqCst);
    let hooks = opts.hooks.clone();
    let p = Pipeline::start_on(pool.clone(), opts, tickets).await;
    let second = p.replica(hooks).await;
    let mut stored = 0;
    for _ in 0..3 {
        let (a, b) = tokio::join!(
            p.app.admin("POST", "/catch-up/snow?since=2h", None),
            second.admin("POST", "/catch-up/snow?since=2h", None),
        );
        for (status, s) in [a, b] {
            assert_eq!(status, 200, "{s}");
            assert_eq!(s["examined"], 30, "{s}");
            stored += s["stored"].as_u64().unwrap();
        }
    }
    assert!(stored <= 30, "{stored}");
    wait_for("30 caught-up events", 30, || async {
        (caught_up(&pool).await == 30).then_some(())
    })
    .await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 60).await, 30);
    assert!(jobs_per_launch(&p.controller).values().all(|n| *n == 1));
    assert_eq!(p.app.event_count().await, 30);
}

#[sqlx::test]
async fn a_condition_the_instance_ignored_fails_the_pass(pool: PgPool) {
    let tickets = FakeTickets::start().await;
    tickets.servicenow_put_record("incident", record(1, "disk_full", &ago(5), "alice"));
    tickets.servicenow_put_record("incident", record(2, "printer", &ago(4), "alice"));
    // `categroy` is no field: ServiceNow drops the condition and returns every record.
    let p = Pipeline::start_on(pool.clone(), options("categroy=disk_full"), tickets).await;
    let (status, s) = p.app.admin("POST", "/catch-up/snow", None).await;
    assert_eq!(status, 502, "{s}");
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("categroy") && error.contains("ignored"),
        "{error}"
    );
    assert_eq!(s["stored"], 0);
    assert_eq!(p.app.event_count().await, 0);
}

// The command, through the binary.

async fn run_cli(args: &[&str], config: &str, database: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.yaml");
    std::fs::write(&path, config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_aap-bridge"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("AAP_BRIDGE_CONFIG")
        .env("AAP_BRIDGE__DATABASE__URL", database)
        .output()
        .await
        .unwrap()
}

fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (see .cargo/config.toml)");
    let db = pool.connect_options().get_database().unwrap().to_string();
    let (server, _) = base.rsplit_once('/').unwrap();
    let query = base.split_once('?').map(|(_, q)| format!("?{q}"));
    format!("{server}/{db}{}", query.unwrap_or_default())
}

fn stdout(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[sqlx::test]
async fn catch_up_command_runs_a_pass_and_prints_what_it_did(pool: PgPool) {
    let tickets = FakeTickets::start().await;
    tickets.servicenow_put_record("incident", record(1, "disk_full", &ago(50), "alice"));
    tickets.servicenow_put_record("incident", record(2, "disk_full", &ago(40), "alice"));
    let config = format!(
        "log: {{level: warn}}\ndev_mode: true\nserver: {{listen: \"127.0.0.1:0\"}}\nsources:\n  \
         snow:\n    kind: servicenow\n    secrets: [servicenow-new]\n    timestamp_header: X-Ts\n    \
         catch_up: {{instance_url: \"{}\", allow_insecure_http: true, username: snow-bot, \
         password: snow-pass, table: incident, query: category=disk_full}}\n  \
         gh: {{kind: github, secrets: [github-new]}}\n",
        tickets.url()
    );
    let url = database_url(&pool);
    let out = stdout(
        &run_cli(
            &["catch-up", "--source", "snow", "--since", "2h"],
            &config,
            &url,
        )
        .await,
    );
    assert!(
        out.contains("catch-up snow (servicenow): complete"),
        "{out}"
    );
    assert!(out.contains("stored 2, duplicates 0, skipped 0"), "{out}");
    assert_eq!(caught_up(&pool).await, 2);

    let out = stdout(
        &run_cli(
            &["catch-up", "--source", "snow", "--since", "2h", "--json"],
            &config,
            &url,
        )
        .await,
    );
    let s: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (s["stored"].as_u64(), s["duplicates"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );

    let table = stdout(&run_cli(&["events", "--source", "snow"], &config, &url).await);
    assert!(table.lines().next().unwrap().contains("ARRIVAL"), "{table}");
    assert_eq!(table.matches("caught_up").count(), 2, "{table}");

    for (args, needle) in [
        (
            vec!["--source", "gh"],
            "source `gh` has no catch_up: configured",
        ),
        (vec!["--source", "nope"], "unknown source `nope`"),
        (
            vec!["--source", "snow", "--since", "soon"],
            "must be a duration",
        ),
    ] {
        let out = run_cli(&[&["catch-up"], args.as_slice()].concat(), &config, &url).await;
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
