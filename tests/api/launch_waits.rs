//! A controller down behind its gateway (AAP's Envoy answers 503 `upstream connect error …
//! reset reason: connection failure`): the launch in flight when the outage began was never
//! sent, so it goes out within seconds of the recovery, once; a pause during the outage holds
//! the whole backlog and "resume, drop" drops it; every open launch says why it waits.

use crate::support::console::Console;
use crate::support::pipeline::{
    jobs_per_launch, launches_in, wait_for, wait_quiescent, Options, Pipeline, Tuning,
};
use crate::support::Sender;
use serde_json::{json, Value};
use sqlx::PgPool;
use std::time::Duration;

const RULE: &str = "snow-remediation";

/// A settle window far longer than the outage: an answer treated as unclear would wait it out.
fn options() -> Options {
    Options {
        job_duration: Duration::from_millis(100),
        tuning: Tuning {
            controller_timeout_secs: 2,
            workers: "  launch_retry_base_ms: 1000\n  launch_retry_max_ms: 60000\n  \
                      launch_settle_secs: 120\n  reconcile_interval_secs: 1\n"
                .into(),
            ..Tuning::default()
        },
        ..Options::default()
    }
}

/// The `waiting` of the event's only launch, through the admin API.
async fn waiting(p: &Pipeline, event: &str) -> Value {
    let (status, body) = p.app.admin("GET", &format!("/events/{event}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["launches"][0]["waiting"].clone()
}

#[sqlx::test]
async fn a_launch_the_gateway_could_not_deliver_goes_out_within_seconds_of_recovery(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), options()).await;
    p.deliver(Sender::ServiceNow, "warm-up").await;
    wait_quiescent(&pool, &p.controller, 30).await;
    p.controller.set_gateway_down(true);
    let first = p.deliver(Sender::ServiceNow, "in-flight").await;
    let first = first["event_id"].as_str().unwrap().to_string();
    // Its POST met the gateway's 503: not sent, so planned again (not `launching`, unclear).
    let w = wait_for(
        "the in-flight launch to wait on the controller",
        20,
        || async {
            let w = waiting(&p, &first).await;
            (w["reason"] == "controller_unreachable").then_some(w)
        },
    )
    .await;
    assert!(
        w["detail"].as_str().unwrap().contains("connection failure"),
        "{w}"
    );
    assert!(w["since"].is_string(), "{w}");
    // The list answers "did it run?": the API, and the console never green while it waits.
    let (_, page) = p.app.admin("GET", "/events", None).await;
    let listed = page["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["id"] == first.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(
        listed["launches"][0]["waiting"]["reason"], "controller_unreachable",
        "{listed}"
    );
    let c = Console::logged_in(&p.app.base).await;
    let list = c.get("/ui/events").await.body;
    let row = list
        .split("<tr>")
        .find(|r| r.contains(&format!("/ui/events/{first}")))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.contains("waiting: controller unreachable since"),
        "{row}"
    );
    assert!(
        row.contains("s-waiting") && !row.contains("s-dispatched"),
        "{row}"
    );
    let mut n = 1;
    let outage = tokio::time::Instant::now();
    while outage.elapsed() < Duration::from_secs(40) {
        p.deliver(Sender::ServiceNow, &format!("during-{n}")).await;
        n += 1;
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert_eq!(
        launches_in(&pool, "launching").await,
        0,
        "no launch left unclear"
    );
    assert_eq!(
        p.controller.jobs_launched(),
        1,
        "nothing launched while down"
    );
    p.controller.set_gateway_down(false);
    let back = chrono::Utc::now();
    let jobs = wait_quiescent(&pool, &p.controller, 60).await;
    assert_eq!(jobs, n + 1, "every event launched");
    assert!(
        jobs_per_launch(&p.controller).values().all(|c| *c == 1),
        "each once"
    );
    let last: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(launched_at) FROM launches")
            .fetch_one(&pool)
            .await
            .unwrap();
    let after = (last - back).num_milliseconds() as f64 / 1000.0;
    println!(
        "last launch {after:.1} s after the gateway reached the controller again ({n} waited)"
    );
    assert!(
        after < 10.0,
        "the last waiting launch went out {after:.1} s after the recovery"
    );
}

#[sqlx::test]
async fn a_pause_during_an_outage_holds_the_backlog_and_drop_drops_it(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), options()).await;
    p.deliver(Sender::ServiceNow, "warm-up").await;
    wait_quiescent(&pool, &p.controller, 30).await;
    p.controller.set_gateway_down(true);
    let mut events = Vec::new();
    for i in 0..5 {
        let e = p.deliver(Sender::ServiceNow, &format!("backlog-{i}")).await;
        events.push(e["event_id"].as_str().unwrap().to_string());
    }
    wait_for("the backlog to wait on the controller", 20, || async {
        let w = waiting(&p, &events[4]).await;
        (w["reason"] == "controller_unreachable" && launches_in(&pool, "planned").await == 5)
            .then_some(())
    })
    .await;
    let (status, body) = p
        .app
        .admin(
            "POST",
            &format!("/rules/{RULE}/pause"),
            Some(json!({"reason": "change freeze"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Held while the controller is still away: the claim holds whether or not it answers.
    wait_for(
        "every planned launch of the paused rule to be held",
        10,
        || async { (launches_in(&pool, "held").await == 5).then_some(()) },
    )
    .await;
    let w = waiting(&p, &events[0]).await;
    assert_eq!(w["reason"], "held", "{w}");
    assert!(
        w["detail"].as_str().unwrap().contains("change freeze"),
        "{w}"
    );
    let (_, rules) = p.app.admin("GET", "/rules", None).await;
    let rule = rules
        .as_array()
        .or(rules["rules"].as_array())
        .and_then(|r| r.iter().find(|r| r["rule"] == RULE).cloned())
        .unwrap_or_else(|| panic!("{rules}"));
    assert_eq!(rule["held"], 5, "{rule}");
    let (status, body) = p
        .app
        .admin(
            "POST",
            &format!("/rules/{RULE}/resume"),
            Some(json!({"held": "drop"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dropped"], 5, "{body}");
    p.controller.set_gateway_down(false);
    let jobs = wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(
        jobs, 1,
        "nothing of the dropped backlog launched at recovery"
    );
    assert_eq!(launches_in(&pool, "dropped").await, 5);
}

#[sqlx::test]
async fn every_open_launch_says_why_it_waits(pool: PgPool) {
    let opts = Options {
        rules: "rules:\n  - name: capped\n    source: snow\n    category: disk_full\n    \
                launch: 15\n    max_concurrent: 1\n    reply: work_notes\n",
        job_duration: Duration::from_secs(3600),
        ..options()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    let running = p.deliver(Sender::ServiceNow, "first").await;
    let running = running["event_id"].as_str().unwrap().to_string();
    wait_for("the first job", 20, || async {
        (launches_in(&pool, "launched").await == 1).then_some(())
    })
    .await;
    let (_, body) = p
        .app
        .admin("GET", &format!("/events/{running}"), None)
        .await;
    assert!(body["launches"][0]["waiting"].is_null(), "launched: {body}");
    let second = p.deliver(Sender::ServiceNow, "second").await;
    let second = second["event_id"].as_str().unwrap().to_string();
    let w = wait_for("capped", 10, || async {
        let w = waiting(&p, &second).await;
        (w["reason"] == "capped").then_some(w)
    })
    .await;
    assert_eq!(w["detail"], "1 of 1 running for its rule", "{w}");
    let (status, _) = p
        .app
        .admin(
            "POST",
            "/rules/capped/pause",
            Some(json!({"reason": "looking"})),
        )
        .await;
    assert_eq!(status, 200);
    let w = wait_for("held", 10, || async {
        let w = waiting(&p, &second).await;
        (w["reason"] == "held").then_some(w)
    })
    .await;
    assert!(w["since"].is_string(), "{w}");
    // The console's event page says the same.
    let c = Console::logged_in(&p.app.base).await;
    let page = c.get(&format!("/ui/events/{second}")).await;
    assert!(page.body.contains("waiting: held since"), "{}", page.body);
}
