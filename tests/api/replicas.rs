//! Several bridges on one database against a slow controller: every event exactly one job, no
//! deadlock, and storm control that never lets a saturated rule hold back another.

use crate::support::pipeline::{
    deadlocks, jobs_per_launch, wait_for, wait_quiescent, Options, Pipeline, Tuning,
};
use crate::support::{Sender, TestApp};
use aap_bridge::workers::Hooks;
use sqlx::PgPool;
use std::time::{Duration, Instant};

/// Three rules on every ServiceNow incident, one on PagerDuty, all templates by name (so
/// every launch first looks its template up, slowly).
const BY_NAME: &str = r#"
rules:
  - name: cleanup
    source: snow
    category: disk_full
    launch: {job_template: template-15}
    reply: none
  - name: diagnose
    source: snow
    category: disk_full
    launch: {job_template: template-22}
    reply: none
  - name: report
    source: snow
    category: disk_full
    launch: {job_template: template-31}
    max_concurrent: 5
    reply: none
  - name: page
    source: pd
    category: web-tier
    launch: {job_template: template-15}
    reply: none
"#;

async fn burst(replicas: usize, pool: PgPool) {
    let opts = Options {
        rules: BY_NAME,
        lease_secs: 1,
        job_duration: Duration::from_millis(100),
        tuning: Tuning {
            controller_timeout_secs: 5,
            workers: "  launch_concurrency: 4\n".into(),
            ..Tuning::default()
        },
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    // Each lookup by name outlasts the 1 s lease: the heartbeat must keep it.
    p.controller.set_lookup_delay(Duration::from_millis(1500));
    let mut others: Vec<TestApp> = Vec::new();
    for _ in 1..replicas {
        others.push(p.replica(Hooks::default()).await);
    }
    let apps: Vec<&TestApp> = std::iter::once(&p.app).chain(others.iter()).collect();
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..160 {
        let (app_base, client) = (apps[n % apps.len()].base.clone(), p.app.client.clone());
        let sender = if n % 4 == 3 {
            Sender::PagerDuty
        } else {
            Sender::ServiceNow
        };
        sends.spawn(async move {
            let delivery = format!("burst-{n}");
            let body = sender.body(&delivery);
            let mut req = client
                .post(format!("{app_base}/hooks/{}", sender.source()))
                .body(body.clone());
            for (k, v) in sender.signed_headers(sender.new_secret(), &delivery, &body) {
                req = req.header(k, v);
            }
            req.send().await.unwrap().status().as_u16()
        });
    }
    while let Some(status) = sends.join_next().await {
        assert_eq!(status.unwrap(), 202);
    }
    let jobs = wait_quiescent(&pool, &p.controller, 120).await;
    // 120 ServiceNow incidents x 3 rules + 40 PagerDuty incidents x 1 rule.
    let launches: i64 = sqlx::query_scalar("SELECT count(*) FROM launches")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(launches, 400);
    assert_eq!(jobs, 400, "one job per launch, across {replicas} replicas");
    let per_launch = jobs_per_launch(&p.controller);
    assert_eq!(per_launch.len(), 400);
    assert!(per_launch.values().all(|n| *n == 1), "a launch ran twice");
    let unsettled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM launches WHERE state NOT IN ('launched', 'finished')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unsettled, 0);
    assert_eq!(deadlocks(&pool).await, 0, "Postgres saw a deadlock");
}

#[sqlx::test]
async fn two_replicas_slow_lookups_short_leases_one_job_each(pool: PgPool) {
    burst(2, pool).await;
}

#[sqlx::test]
async fn three_replicas_slow_lookups_short_leases_one_job_each(pool: PgPool) {
    burst(3, pool).await;
}

const CAPPED_AND_FREE: &str = r#"
rules:
  - name: capped
    source: snow
    category: disk_full
    launch: 15
    max_concurrent: 1
    reply: none
  - name: free
    source: pd
    category: web-tier
    launch: 22
    reply: none
"#;

#[sqlx::test]
async fn a_saturated_rule_never_delays_another(pool: PgPool) {
    let opts = Options {
        rules: CAPPED_AND_FREE,
        job_duration: Duration::from_secs(3600),
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    let second = p.replica(Hooks::default()).await;
    for n in 0..40 {
        p.deliver(Sender::ServiceNow, &format!("storm-{n}")).await;
    }
    wait_for("the capped rule's one job", 10, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    let start = Instant::now();
    let (status, _) = second.deliver(Sender::PagerDuty, "other-rule").await;
    assert_eq!(status, 202);
    wait_for("the free rule's launch", 5, || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM launches WHERE rule = 'free' AND state = 'launched'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (n == 1).then_some(())
    })
    .await;
    let waited = start.elapsed();
    let capped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM launches WHERE rule = 'capped' AND state IN ('launching', 'launched')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(capped, 1, "the cap still holds across replicas");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}
