//! Back to work within seconds of a recovery: launches that waited on an unreachable controller
//! go out as soon as a probe finds it back, not each at the end of its own backoff.

use crate::support::pipeline::{jobs_per_launch, wait_quiescent, Options, Pipeline, Tuning};
use crate::support::Sender;
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test]
async fn a_minute_long_outage_then_everything_launches_within_seconds(pool: PgPool) {
    let opts = Options {
        job_duration: Duration::from_millis(100),
        tuning: Tuning {
            controller_timeout_secs: 2,
            // Production backoff: without the probe, the last launch would wait up to 60 s.
            workers: "  launch_retry_base_ms: 1000\n  launch_retry_max_ms: 60000\n  \
                      launch_settle_secs: 5\n  reconcile_interval_secs: 1\n"
                .into(),
            ..Tuning::default()
        },
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    p.deliver(Sender::ServiceNow, "before").await;
    wait_quiescent(&pool, &p.controller, 30).await;
    p.controller.set_down(true);
    let down_for = Duration::from_secs(60);
    let outage = tokio::time::Instant::now();
    let mut n = 0;
    while outage.elapsed() < down_for {
        p.deliver(Sender::ServiceNow, &format!("during-{n}")).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert!(n >= 36, "dozens of events arrived during the outage ({n})");
    assert_eq!(
        p.controller.jobs_launched(),
        1,
        "nothing launched while down"
    );
    p.controller.set_down(false);
    let back = chrono::Utc::now();
    let jobs = wait_quiescent(&pool, &p.controller, 60).await;
    assert_eq!(jobs, n + 1, "every event launched once");
    assert!(jobs_per_launch(&p.controller).values().all(|c| *c == 1));
    let last: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(launched_at) FROM launches")
            .fetch_one(&pool)
            .await
            .unwrap();
    let after = (last - back).num_milliseconds() as f64 / 1000.0;
    println!("last launch {after:.1} s after the controller came back ({n} waited)");
    assert!(
        after < 10.0,
        "the last waiting launch went out {after:.1} s after the recovery"
    );
}

#[sqlx::test]
async fn post_backs_that_waited_for_a_ticket_api_go_out_within_seconds(pool: PgPool) {
    let opts = Options {
        job_duration: Duration::from_millis(100),
        tuning: Tuning {
            // Production backoff for post-backs: without the probe they would trickle out.
            workers: "  callback_retry_base_ms: 2000\n  callback_retry_max_ms: 600000\n".into(),
            ..Tuning::default()
        },
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    p.tickets.set_down(true);
    for n in 0..12 {
        p.deliver(Sender::ServiceNow, &format!("ticket-down-{n}"))
            .await;
    }
    // Let the post-backs fail until most sit in a backoff that ends more than 12 s from now
    // (the oldest one is the probe, retried every second).
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM callbacks WHERE state = 'pending' AND phase = 'launched'
                   AND next_attempt_at > now() + interval '12 seconds'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if waiting >= 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the post-backs backed off");
    p.tickets.set_down(false);
    let back = chrono::Utc::now();
    wait_quiescent(&pool, &p.controller, 60).await;
    let (sent, last): (i64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT count(*), max(sent_at) FROM callbacks WHERE state = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sent, 24, "a launched and a finished note per event");
    let after = (last - back).num_milliseconds() as f64 / 1000.0;
    println!("last post-back {after:.1} s after the ticket API came back");
    assert!(
        after < 10.0,
        "the last post-back went out {after:.1} s after the recovery"
    );
}

#[sqlx::test]
async fn a_failing_discovery_waits_and_is_never_a_refusal(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    // The ping probes (and whatever follows) answer 500 for a while.
    p.controller.fail_next(6, 500);
    p.deliver(Sender::ServiceNow, "discovery-500").await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 1);
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM launches")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        matches!(states[0].as_str(), "launched" | "finished"),
        "{states:?}"
    );
    let notes = p
        .tickets
        .servicenow_notes("9d385017c611228701d22104cc95c371");
    assert!(
        notes.iter().all(|(_, t)| !t.contains("Could not launch")),
        "a transient error was posted as a refusal: {notes:?}"
    );
}

#[sqlx::test]
async fn a_controller_url_without_an_api_is_a_config_error_not_a_ticket_note(pool: PgPool) {
    let tickets = crate::support::fake_tickets::FakeTickets::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        crate::support::pipeline::RULES,
    )
    .unwrap();
    // The "controller" is a server with no controller API: every ping is a definite 404.
    let yaml = crate::support::pipeline::config(&tickets.url(), &tickets.url(), dir.path(), 30);
    let app = crate::support::TestApp::spawn_with(pool.clone(), pool.clone(), &yaml).await;
    let (status, _) = app.deliver(Sender::ServiceNow, "no-api").await;
    assert_eq!(status, 202);
    let ready = crate::support::pipeline::wait_for("the config error in /readyz", 10, || async {
        let (code, body) = app.get("/readyz").await;
        (code == 200 && body["controller"]["state"] == "config_error").then_some(body)
    })
    .await;
    assert!(
        ready["controller"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no controller API")),
        "{ready}"
    );
    // The launch waits, planned again, with the reason.
    crate::support::pipeline::wait_for("the launch to wait", 10, || async {
        let row: (String, Option<String>) =
            sqlx::query_as("SELECT state, last_error FROM launches")
                .fetch_one(&pool)
                .await
                .unwrap();
        (row.0 == "planned" && row.1.is_some_and(|e| e.contains("no controller API"))).then_some(())
    })
    .await;
    let callbacks: i64 = sqlx::query_scalar("SELECT count(*) FROM callbacks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(callbacks, 0, "nothing is posted to the ticket");
}
