//! Crashes, outages and bursts: still exactly one job per event, post-backs delivered once.

use crate::support::pipeline::{launch_states, wait_for, wait_quiescent, Options, Pipeline};
use crate::support::Sender;
use aap_bridge::workers::Hooks;
use sqlx::PgPool;
use std::sync::atomic::Ordering;
use std::time::Duration;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

#[sqlx::test]
async fn crash_between_launch_post_and_commit_does_not_launch_twice(pool: PgPool) {
    let hooks = Hooks::default();
    hooks.crash_after_launch_post.store(true, Ordering::SeqCst);
    let opts = Options {
        hooks,
        lease_secs: 1,
        ..Options::default()
    };
    let mut p = Pipeline::start(pool.clone(), opts).await;
    p.deliver(Sender::ServiceNow, "crash-1").await;
    wait_for("the job on the controller", 10, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    // "Crash": stop this bridge with its launch row still `launching`.
    p.app.shutdown.cancel();
    let _ = p.app.handle.take().unwrap().await;
    assert_eq!(launch_states(&pool).await[0].0, "launching");

    // Restart: reconciliation finds the job by its marker instead of launching again.
    let restarted = Pipeline::app(
        &pool,
        &p.controller,
        &p.tickets,
        p.dir.path(),
        1,
        Hooks::default(),
    )
    .await;
    let states = wait_for("the launch to be reconciled", 20, || async {
        let s = launch_states(&pool).await;
        (s[0].0 == "launched" || s[0].0 == "finished").then_some(s)
    })
    .await;
    assert_eq!(
        states[0].1,
        p.controller.job(1).and_then(|j| j["id"].as_i64())
    );
    wait_for("two work notes", 20, || async {
        (p.tickets.servicenow_notes(SYS_ID).len() >= 2).then_some(())
    })
    .await;
    assert_eq!(
        wait_quiescent(&pool, &p.controller, 20).await,
        1,
        "no second job"
    );
    drop(restarted);
}

#[sqlx::test]
async fn controller_down_then_up_launches_once(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    p.controller.set_down(true);
    let event = p.deliver(Sender::ServiceNow, "down-1").await;
    let event = event["event_id"].as_str().unwrap().to_string();
    // The launcher met the outage: the launch waits on it (or on its unclear answer).
    wait_for("the launch to wait on the controller", 20, || async {
        let (_, e) = p.app.admin("GET", &format!("/events/{event}"), None).await;
        let reason = e["launches"][0]["waiting"]["reason"].clone();
        (reason == "controller_unreachable" || reason == "settling_unclear_answer").then_some(())
    })
    .await;
    assert_eq!(p.controller.jobs_launched(), 0);
    let waiting = launch_states(&pool).await;
    assert!(
        matches!(waiting[0].0.as_str(), "planned" | "launching"),
        "{waiting:?}"
    );

    p.controller.set_down(false);
    wait_for("the launch", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    wait_for("two work notes", 20, || async {
        (p.tickets.servicenow_notes(SYS_ID).len() >= 2).then_some(())
    })
    .await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 20).await, 1);
}

#[sqlx::test]
async fn ticket_system_503_and_429_delay_but_deliver_once(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    p.tickets.fail_next(1, 503, Some(1));
    p.deliver(Sender::Github, "busy-1").await;
    let comments = wait_for("two comments", 20, || async {
        let c = p.tickets.github_comments("acme/ops", 42);
        (c.len() >= 2).then_some(c)
    })
    .await;
    assert!(
        comments[0].contains("Launched"),
        "launched before finished: {comments:?}"
    );

    p.tickets.fail_next(2, 429, Some(1));
    p.deliver(Sender::PagerDuty, "busy-2").await;
    wait_for("two notes", 20, || async {
        (p.tickets.pagerduty_notes("PABC123").len() >= 2).then_some(())
    })
    .await;
    wait_quiescent(&pool, &p.controller, 20).await;
    assert_eq!(
        p.tickets.github_comments("acme/ops", 42).len(),
        2,
        "each post-back once"
    );
    assert_eq!(p.tickets.pagerduty_notes("PABC123").len(), 2);
    let retried: i64 =
        sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE attempts > 1 AND state = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(
        retried >= 2,
        "the refused post-backs were retried ({retried})"
    );
}

#[sqlx::test]
async fn two_bridges_500_events_500_launches(pool: PgPool) {
    let opts = Options {
        job_duration: Duration::ZERO,
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    let other = Pipeline::app(
        &pool,
        &p.controller,
        &p.tickets,
        p.dir.path(),
        30,
        Hooks::default(),
    )
    .await;
    let apps = std::sync::Arc::new([p.app.base.clone(), other.base.clone()]);
    let mut set = tokio::task::JoinSet::new();
    for n in 0..500 {
        let (client, apps) = (p.app.client.clone(), apps.clone());
        set.spawn(async move {
            let sender = Sender::ServiceNow;
            let body = sender.body(&format!("burst-{n}"));
            let mut req = client
                .post(format!("{}/hooks/snow", apps[n % 2]))
                .body(body.clone());
            for (k, v) in sender.signed_headers("servicenow-new", "", &body) {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status().as_u16()
        });
    }
    while let Some(status) = set.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    wait_for("500 launches", 60, || async {
        (p.controller.jobs_launched() >= 500).then_some(())
    })
    .await;
    assert_eq!(
        wait_quiescent(&pool, &p.controller, 60).await,
        500,
        "no duplicates"
    );
    let markers: std::collections::HashSet<String> = p
        .controller
        .launches()
        .iter()
        .map(|l| {
            let v = &l["extra_vars"];
            let v: serde_json::Value = match v {
                serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
                other => other.clone(),
            };
            v["aap_bridge_launch_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(markers.len(), 500);
    let launched: i64 =
        sqlx::query_scalar("SELECT count(*) FROM launches WHERE job_id IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(launched, 500);
    drop(other);
}

/// Post-backs do not go in lock-step batches: a ticket API that answers slowly holds up only
/// its own post-back, and one for another ticket system goes out meanwhile.
#[sqlx::test]
async fn a_slow_ticket_api_does_not_hold_up_other_post_backs(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    p.tickets
        .set_slow("/api/now/table/", Duration::from_secs(8));
    p.deliver(Sender::ServiceNow, "slow-sn").await;
    wait_for("the work note in flight", 20, || async {
        (!p.tickets.servicenow_notes(SYS_ID).is_empty()).then_some(())
    })
    .await;
    p.deliver(Sender::Github, "fast-gh").await;
    wait_for("the GitHub comment", 20, || async {
        (!p.tickets.github_comments("acme/ops", 42).is_empty()).then_some(())
    })
    .await;
    // The ServiceNow answer is still on its way: nothing about it was recorded yet.
    let sent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM callbacks WHERE source = 'snow' AND state = 'sent'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(sent, 0, "the GitHub comment waited for the slow work note");
}
