//! Several controllers (README "The controller", named controllers): rules routed to each
//! launch there only, once each, and one controller's outage holds up nobody else's launches.

use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use crate::support::fake_tickets::FakeTickets;
use crate::support::pipeline::{config_tuned, wait_for, wait_quiescent, Tuning};
use crate::support::{Sender, TestApp};
use sqlx::PgPool;
use std::time::{Duration, Instant};

const RULES: &str = r#"
rules:
  - name: gh-disk
    source: gh
    category: disk_full
    launch: 15
    reply: none
  - name: snow-lab
    source: snow
    controller: lab
    launch: {job_template: "disk cleanup"}
    reply: none
"#;

struct Two {
    app: TestApp,
    awx: FakeController,
    aap: FakeController,
    _tickets: FakeTickets,
    _dir: tempfile::TempDir,
}

/// `default` is an AWX, `lab` an AAP gateway; both have template 15, and a template named
/// "disk cleanup" with a different id on each.
async fn start(pool: PgPool) -> Two {
    start_with(pool, "").await
}

/// `lab_extra`: more YAML lines (indented by 4) for the `lab` controller.
async fn start_with(pool: PgPool, lab_extra: &str) -> Two {
    let (awx, aap) = (
        FakeController::start(Flavour::Awx).await,
        FakeController::start(Flavour::Aap).await,
    );
    for (c, named) in [(&awx, 40), (&aap, 41)] {
        c.set_job_duration(Duration::from_millis(200));
        for (id, name) in [
            (15, "template-15".to_string()),
            (named, "disk cleanup".into()),
        ] {
            c.add_job_template(TemplateSpec {
                id: Some(id),
                name,
                outcome: "successful".into(),
                ..Default::default()
            });
        }
    }
    let tickets = FakeTickets::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let mut yaml = config_tuned(
        &awx.url(),
        &tickets.url(),
        dir.path(),
        30,
        &Tuning::default(),
    );
    yaml.push_str(&format!(
        "controllers:\n  lab:\n    url: \"{}\"\n    allow_insecure_http: true\n    \
         retry: {{max_attempts: 2, base_delay_ms: 20, max_delay_ms: 50}}\n    \
         auth: {{mode: basic, username: svc, password: svc-pass}}\n{lab_extra}",
        aap.url()
    ));
    let app = TestApp::spawn_hooked(pool.clone(), pool, &yaml, Default::default()).await;
    Two {
        app,
        awx,
        aap,
        _tickets: tickets,
        _dir: dir,
    }
}

async fn deliver(app: &TestApp, sender: Sender, id: &str) {
    let (status, body) = app.deliver(sender, id).await;
    assert_eq!(status, 202, "{body}");
}

async fn by_controller(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT controller, count(*) FROM launches GROUP BY 1 ORDER BY 1")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn each_rule_launches_on_its_controller_once(pool: PgPool) {
    let t = start(pool.clone()).await;
    for i in 0..3 {
        deliver(&t.app, Sender::Github, &format!("gh-{i}")).await;
        deliver(&t.app, Sender::ServiceNow, &format!("sn-{i}")).await;
    }
    wait_for("six launches", 30, || async {
        (t.awx.jobs_launched() + t.aap.jobs_launched() == 6).then_some(())
    })
    .await;
    wait_quiescent(&pool, &t.awx, 30).await;
    assert_eq!((t.awx.jobs_launched(), t.aap.jobs_launched()), (3, 3));
    let rows = by_controller(&pool).await;
    assert_eq!(rows, [("default".to_string(), 3), ("lab".to_string(), 3)]);
    // The name resolved on `lab` itself: its "disk cleanup" is 41 (the AWX's is 40).
    let templates: Vec<i64> = t
        .aap
        .launches()
        .iter()
        .filter_map(|l| l["template_id"].as_i64())
        .collect();
    assert_eq!(templates, [41, 41, 41]);
    let on_awx: Vec<i64> = t
        .awx
        .launches()
        .iter()
        .filter_map(|l| l["template_id"].as_i64())
        .collect();
    assert_eq!(on_awx, [15, 15, 15]);
}

#[sqlx::test]
async fn one_controller_down_delays_nothing_on_the_other(pool: PgPool) {
    let t = start(pool.clone()).await;
    // Warm both up, so discovery and tokens are behind us.
    deliver(&t.app, Sender::Github, "warm-gh").await;
    deliver(&t.app, Sender::ServiceNow, "warm-sn").await;
    wait_for("both warm", 30, || async {
        (t.awx.jobs_launched() == 1 && t.aap.jobs_launched() == 1).then_some(())
    })
    .await;

    t.aap.set_gateway_down(true);
    for i in 0..3 {
        deliver(&t.app, Sender::ServiceNow, &format!("sn-{i}")).await;
    }
    let sent = Instant::now();
    for i in 0..3 {
        deliver(&t.app, Sender::Github, &format!("gh-{i}")).await;
    }
    wait_for("the healthy controller's launches", 10, || async {
        (t.awx.jobs_launched() == 4).then_some(())
    })
    .await;
    let healthy = sent.elapsed();
    assert_eq!(
        t.aap.jobs_launched(),
        1,
        "nothing reached the controller that is down"
    );
    // Keep the outage on a while: the healthy one keeps launching meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    deliver(&t.app, Sender::Github, "gh-during").await;
    wait_for("a launch during the outage", 10, || async {
        (t.awx.jobs_launched() == 5).then_some(())
    })
    .await;

    t.aap.set_gateway_down(false);
    let back = Instant::now();
    wait_for("the waiting launches after recovery", 10, || async {
        (t.aap.jobs_launched() == 4).then_some(())
    })
    .await;
    let recovered = back.elapsed();
    wait_quiescent(&pool, &t.aap, 30).await;
    assert_eq!(
        (t.awx.jobs_launched(), t.aap.jobs_launched()),
        (5, 4),
        "once each"
    );
    eprintln!("healthy launches {healthy:?} into the outage; waiting ones {recovered:?} after it");
}

/// `dry_run: true` on one controller: its launches are recorded `dry_run` and it is sent
/// nothing at all, while the other launches as usual.
#[sqlx::test]
async fn a_dry_run_controller_is_sent_nothing(pool: PgPool) {
    let t = start_with(pool.clone(), "    dry_run: true\n").await;
    for i in 0..2 {
        deliver(&t.app, Sender::Github, &format!("gh-{i}")).await;
        deliver(&t.app, Sender::ServiceNow, &format!("sn-{i}")).await;
    }
    wait_for("the live controller's launches", 20, || async {
        (t.awx.jobs_launched() == 2).then_some(())
    })
    .await;
    wait_quiescent(&pool, &t.awx, 30).await;
    let dry: Vec<(String, i64)> = sqlx::query_as(
        "SELECT controller, count(*) FROM launches WHERE state = 'dry_run' GROUP BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(dry, [("lab".to_string(), 2)]);
    assert_eq!(t.aap.jobs_launched(), 0);
    assert_eq!(
        t.aap.requests("GET", "/") + t.aap.requests("POST", "/"),
        0,
        "not even a ping"
    );
}
