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
