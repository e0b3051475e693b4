//! The circuit breaker per rule: a rule pauses itself after `pause_after_failures` jobs in a
//! row fail; a paused rule's events are held (no POST), each ticket told once; resume releases
//! (one job each) or drops (ticket told); a pause by hand holds on every replica; a success
//! resets the count. The console's side is in `breaker_console.rs`.

use crate::admin::{database_url, run_cli, stdout};
use crate::support::pipeline::{
    jobs_per_launch, launches_in, wait_for, wait_quiescent, Options, Pipeline,
};
use crate::support::Sender;
use aap_bridge::workers::Hooks;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";
const HELD_NOTE: &str = "Not launched yet: automation for rule";

/// One ServiceNow rule named `name` (names differ per test: the metrics are process-wide).
fn rules(name: &str, extra: &str) -> &'static str {
    let yaml = format!(
        "rules:\n  - name: {name}\n    source: snow\n    category: disk_full\n    launch: 15\n    \
         reply: work_notes\n{extra}"
    );
    Box::leak(yaml.into_boxed_str())
}

/// The pipeline with jobs that run until a test sets their status.
pub(crate) async fn start(pool: &PgPool, name: &str, extra: &str) -> Pipeline {
    let opts = Options {
        rules: rules(name, extra),
        job_duration: Duration::from_secs(3600),
        ..Options::default()
    };
    Pipeline::start(pool.clone(), opts).await
}

pub(crate) async fn deliver(p: &Pipeline, delivery: &str) -> String {
    let body = p.deliver(Sender::ServiceNow, delivery).await;
    body["event_id"].as_str().unwrap().to_string()
}

/// The state and job of the event's launch, once it has one.
pub(crate) async fn launch_of(pool: &PgPool, event: &str) -> Option<(String, Option<i64>)> {
    sqlx::query_as("SELECT state, job_id FROM launches WHERE event_id = $1::uuid")
        .bind(event)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Delivers an event, waits for its job, ends the job with `status`, waits for the bridge to
/// record the end.
async fn job_ends(p: &Pipeline, delivery: &str, status: &str) {
    let pool = &p.app.pool;
    let event = deliver(p, delivery).await;
    let job = wait_for("the launch", 15, || async {
        match launch_of(pool, &event).await {
            Some((state, job)) if state == "launched" => job,
            _ => None,
        }
    })
    .await;
    p.controller.set_job_status(job, status);
    wait_for("the job's end recorded", 20, || async {
        let state = launch_of(pool, &event).await.map(|l| l.0);
        (state.as_deref() == Some("finished")).then_some(())
    })
    .await;
}

/// The rule as `GET /api/v1/rules` shows it.
pub(crate) async fn rule_state(p: &Pipeline, name: &str) -> Value {
    let (status, body) = p.app.admin("GET", "/rules", None).await;
    assert_eq!(status, 200, "{body}");
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} in {body}"))
}

/// `POST /rules/{name}/{action}` (pause or resume) through the admin API.
async fn rule_action(
    app: &crate::support::TestApp,
    name: &str,
    action: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    app.admin("POST", &format!("/rules/{name}/{action}"), body)
        .await
}

fn notes_with(p: &Pipeline, text: &str) -> usize {
    let notes = p.tickets.servicenow_notes(SYS_ID);
    notes.iter().filter(|(_, t)| t.contains(text)).count()
}

async fn paused_gauge(p: &Pipeline, name: &str) -> Option<f64> {
    let text = p
        .app
        .client
        .get(format!("{}/metrics", p.app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("aap_bridge_rule_paused{{rule=\"{name}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
}

/// Every job the controller created carries a distinct launch marker.
fn one_job_per_launch(p: &Pipeline, jobs: usize) {
    let per = jobs_per_launch(&p.controller);
    assert_eq!(per.len(), jobs, "{per:?}");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
}

#[sqlx::test]
async fn two_failed_jobs_pause_the_rule_then_held_events_are_released_once_each(pool: PgPool) {
    let name = "flaky-release";
    let p = start(&pool, name, "    pause_after_failures: 2\n").await;
    job_ends(&p, "f-1", "failed").await;
    let r = rule_state(&p, name).await;
    assert_eq!(
        (r["failures"].clone(), r["paused"].clone()),
        (json!(1), json!(false))
    );
    job_ends(&p, "f-2", "error").await;
    // The pause is written in the transaction that records the second end.
    let r = rule_state(&p, name).await;
    assert_eq!(r["paused"], true, "{r}");
    assert_eq!(r["paused_by"], "auto");
    assert_eq!(r["pause_after_failures"], 2);
    assert!(
        r["reason"].as_str().unwrap().contains("2 jobs in a row"),
        "{r}"
    );

    let e3 = deliver(&p, "f-3").await;
    let e4 = deliver(&p, "f-4").await;
    wait_for("two held launches", 15, || async {
        (launches_in(&pool, "held").await == 2).then_some(())
    })
    .await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 2, "no POST");
    assert_eq!(notes_with(&p, HELD_NOTE), 2, "each ticket told once");
    assert_eq!(notes_with(&p, "paused automatically: 2 jobs in a row"), 2);
    assert_eq!(rule_state(&p, name).await["held"], 2);
    wait_for("the paused gauge", 10, || async {
        (paused_gauge(&p, name).await == Some(1.0)).then_some(())
    })
    .await;

    let (status, body) =
        rule_action(&p.app, name, "resume", Some(json!({"held": "release"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["released"].clone(), body["dropped"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(body["rule"]["paused"], false);
    assert_eq!(body["rule"]["failures"], 0, "resume resets the count");
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 4);
    one_job_per_launch(&p, 4);
    for e in [&e3, &e4] {
        assert_eq!(launch_of(&pool, e).await.unwrap().0, "launched");
    }
    assert_eq!(
        notes_with(&p, HELD_NOTE),
        2,
        "told once, not again on release"
    );
    wait_for("the gauge back to 0", 10, || async {
        (paused_gauge(&p, name).await == Some(0.0)).then_some(())
    })
    .await;

    // The same through the binary: pause, list, resume --release.
    let (url, config) = (database_url(&pool), p.yaml.clone());
    let paused = stdout(
        &run_cli(
            &["rules", "pause", name, "--reason", "cli check"],
            &config,
            Some(&url),
        )
        .await,
    );
    assert!(paused.contains("paused"), "{paused}");
    let e5 = deliver(&p, "f-5").await;
    wait_for("the held launch", 15, || async {
        let state = launch_of(&pool, &e5).await.map(|l| l.0);
        (state.as_deref() == Some("held")).then_some(())
    })
    .await;
    let list = stdout(&run_cli(&["rules", "list"], &config, Some(&url)).await);
    let line = list.lines().find(|l| l.starts_with(name)).expect(&list);
    for word in ["paused", "operator", "0/2", " 1 ", "cli check"] {
        assert!(line.contains(word), "{word} in {list}");
    }
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 4);
    assert_eq!(notes_with(&p, "paused by an operator: cli check"), 1);
    let out = run_cli(&["rules", "resume", name, "--release"], &config, Some(&url)).await;
    stdout(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 held launch(es) released"));
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 5);
    one_job_per_launch(&p, 5);
    assert_eq!(launch_of(&pool, &e5).await.unwrap().0, "launched");
    // Neither or both flags: refused by the parser.
    let neither = run_cli(&["rules", "resume", name], &config, Some(&url)).await;
    assert!(!neither.status.success());
}

#[sqlx::test]
async fn a_pause_after_planning_holds_at_the_claim_and_a_drop_tells_each_ticket(pool: PgPool) {
    // No pause_after_failures: any rule can be paused by hand.
    let name = "capped-drop";
    let p = start(&pool, name, "    max_concurrent: 1\n").await;
    for n in 0..3 {
        deliver(&p, &format!("d-{n}")).await;
    }
    wait_for("one launch, two planned behind the cap", 15, || async {
        let ready = p.controller.jobs_launched() == 1 && launches_in(&pool, "planned").await == 2;
        ready.then_some(())
    })
    .await;
    let (status, body) = rule_action(
        &p.app,
        name,
        "pause",
        Some(json!({"reason": "change freeze"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["paused"].clone(), body["paused_by"].clone()),
        (json!(true), json!("operator"))
    );
    wait_for("the claim to hold the planned launches", 15, || async {
        (launches_in(&pool, "held").await == 2).then_some(())
    })
    .await;
    // The running job ends: its slot frees, but nothing else is sent.
    let job: i64 = sqlx::query_scalar("SELECT job_id FROM launches WHERE state = 'launched'")
        .fetch_one(&pool)
        .await
        .unwrap();
    p.controller.set_job_status(job, "successful");
    wait_for("the job's end", 15, || async {
        (launches_in(&pool, "finished").await == 1).then_some(())
    })
    .await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 1, "no POST");
    assert_eq!(notes_with(&p, "paused by an operator: change freeze"), 2);
    // Pausing again changes nothing.
    let (status, again) = rule_action(&p.app, name, "pause", None).await;
    assert_eq!(status, 200);
    assert_eq!(again["reason"], "change freeze");

    let (status, body) = rule_action(&p.app, name, "resume", Some(json!({"held": "drop"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["released"].clone(), body["dropped"].clone()),
        (json!(0), json!(2))
    );
    assert_eq!(launches_in(&pool, "dropped").await, 2);
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 1);
    assert_eq!(notes_with(&p, "an operator dropped it on resume"), 2);
    let errors: Vec<String> =
        sqlx::query_scalar("SELECT last_error FROM launches WHERE state = 'dropped'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        errors.iter().all(|e| e.contains("dropped by an operator")),
        "{errors:?}"
    );

    // Refusals: not paused, unknown rule, a bad body.
    let (status, body) = rule_action(&p.app, name, "resume", Some(json!({"held": "drop"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = p.app.admin("POST", "/rules/no-such-rule/pause", None).await;
    assert_eq!(status, 404);
    let (status, body) = rule_action(&p.app, name, "resume", Some(json!({"held": "later"}))).await;
    assert_eq!(status, 400, "{body}");
}

#[sqlx::test]
async fn a_pause_by_hand_holds_deliveries_on_every_replica(pool: PgPool) {
    let name = "kill-switch";
    let p = start(&pool, name, "").await;
    let other = p.replica(Hooks::default()).await;
    let (status, _) = rule_action(&p.app, name, "pause", Some(json!({}))).await;
    assert_eq!(status, 200);
    let (_, seen) = other.admin("GET", "/rules", None).await;
    assert_eq!(
        seen["rules"][0]["paused"], true,
        "the other replica reads the pause"
    );
    for n in 0..3 {
        deliver(&p, &format!("k-a-{n}")).await;
        let (status, body) = other.deliver(Sender::ServiceNow, &format!("k-b-{n}")).await;
        assert_eq!(status, 202, "{body}");
    }
    wait_for("six held launches", 15, || async {
        (launches_in(&pool, "held").await == 6).then_some(())
    })
    .await;
    assert_eq!(
        wait_quiescent(&pool, &p.controller, 30).await,
        0,
        "none launched"
    );
    assert_eq!(notes_with(&p, HELD_NOTE), 6);
}

#[sqlx::test]
async fn a_successful_job_resets_the_count(pool: PgPool) {
    let name = "flaky-reset";
    let p = start(&pool, name, "    pause_after_failures: 2\n").await;
    job_ends(&p, "s-1", "failed").await;
    job_ends(&p, "s-2", "successful").await;
    assert_eq!(rule_state(&p, name).await["failures"], 0);
    job_ends(&p, "s-3", "failed").await;
    let r = rule_state(&p, name).await;
    assert_eq!(
        (r["failures"].clone(), r["paused"].clone()),
        (json!(1), json!(false))
    );
    // Canceled neither counts nor resets.
    job_ends(&p, "s-4", "canceled").await;
    assert_eq!(rule_state(&p, name).await["failures"], 1);
    let e5 = deliver(&p, "s-5").await;
    wait_for("a launch, not a hold", 15, || async {
        let state = launch_of(&pool, &e5).await.map(|l| l.0);
        (state.as_deref() == Some("launched")).then_some(())
    })
    .await;
    assert_eq!(launches_in(&pool, "held").await, 0);
}
