//! Several controllers (README "Several controllers"): rules routed to each launch there only,
//! once each, each with its own managed token; one controller's 60 s outage holds up nobody
//! else's launches, and the console, `/readyz` and the wait reasons name the one that is down.

use crate::support::console::Console;
use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use crate::support::fake_tickets::FakeTickets;
use crate::support::pipeline::{
    config_tuned, deadlocks, jobs_per_launch, wait_for, wait_quiescent, Tuning,
};
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
    /// The configuration, for more replicas on the same database.
    yaml: String,
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
         auth: {{mode: password, username: svc, password: svc-pass}}\n{lab_extra}",
        aap.url()
    ));
    // Both manage their own token (the `default` one too).
    let yaml = yaml.replace(
        "auth: {mode: basic, username: svc, password: svc-pass}",
        "auth: {mode: password, username: svc, password: svc-pass}",
    );
    let app = TestApp::spawn_hooked(pool.clone(), pool, &yaml, Default::default()).await;
    Two {
        app,
        yaml,
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
    // Each controller has its own managed token, created once and stored in its own row.
    assert_eq!((t.awx.tokens_created(), t.aap.tokens_created()), (1, 1));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM controller_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    // The Overview shows each, with its flavour and token age.
    let page = Console::logged_in(&t.app.base).await.get("/ui/").await;
    let escaped = |u: String| u.replace('/', "&#x2f;");
    for text in [
        "<h3>default</h3>".to_string(),
        "<h3>lab</h3>".to_string(),
        escaped(t.aap.url()),
        escaped("aap, API /api/controller/v2/".into()),
        escaped("awx, API /api/v2/".into()),
    ] {
        page.assert_has(&text);
    }
    assert_eq!(page.body.matches("token age: ").count(), 2, "{}", page.body);
    assert!(!page.body.contains("no stored token"), "{}", page.body);
}

/// How long the `lab` controller's gateway answers 503 (the issue's figure).
const OUTAGE: Duration = Duration::from_secs(60);

#[sqlx::test]
async fn one_controller_down_delays_nothing_on_the_other(pool: PgPool) {
    let t = start(pool.clone()).await;
    // Warm both up, so discovery and tokens are behind us; time a launch on a quiet bridge.
    deliver(&t.app, Sender::ServiceNow, "warm-sn").await;
    let sent = Instant::now();
    deliver(&t.app, Sender::Github, "warm-gh").await;
    wait_for("both warm", 30, || async {
        (t.awx.jobs_launched() == 1 && t.aap.jobs_launched() == 1).then_some(())
    })
    .await;
    let usual = sent.elapsed();

    t.aap.set_gateway_down(true);
    let outage = Instant::now();
    for i in 0..3 {
        deliver(&t.app, Sender::ServiceNow, &format!("sn-{i}")).await;
    }
    // Launches on the healthy one all through the outage, each timed.
    let mut during = Vec::new();
    let mut n = 1;
    while outage.elapsed() < OUTAGE {
        n += 1;
        let sent = Instant::now();
        deliver(&t.app, Sender::Github, &format!("gh-{n}")).await;
        wait_for("a launch on the healthy controller", 10, || async {
            (t.awx.jobs_launched() == n).then_some(())
        })
        .await;
        during.push(sent.elapsed());
        if n == 3 {
            shows_the_outage(&t, &pool).await;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert_eq!(
        t.aap.jobs_launched(),
        1,
        "nothing reached the controller that is down"
    );
    assert_eq!(
        waiting_for(&pool, "lab").await,
        3,
        "the down controller's launches wait"
    );

    t.aap.set_gateway_down(false);
    let back = Instant::now();
    wait_for("the waiting launches after recovery", 10, || async {
        (t.aap.jobs_launched() == 4).then_some(())
    })
    .await;
    let recovered = back.elapsed();
    wait_quiescent(&pool, &t.aap, 30).await;
    wait_quiescent(&pool, &t.awx, 30).await;
    assert_eq!(
        (t.awx.jobs_launched(), t.aap.jobs_launched()),
        (n, 4),
        "once each"
    );
    let worst = during.iter().max().copied().unwrap_or_default();
    eprintln!(
        "usual launch {usual:?}; {} launches on the healthy controller during a {OUTAGE:?} \
         outage, worst {worst:?}; waiting ones {recovered:?} after recovery",
        during.len()
    );
}

async fn waiting_for(pool: &PgPool, controller: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM launches WHERE controller = $1 AND state IN ('planned', 'launching')",
    )
    .bind(controller)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// During the outage: `/readyz`, the Overview and the waiting launch's reason name `lab`, and
/// `default` is fine.
async fn shows_the_outage(t: &Two, pool: &PgPool) {
    let ready = wait_for("readyz to show lab unreachable", 10, || async {
        let (code, body) = t.app.get("/readyz").await;
        (code == 200 && body["controllers"]["lab"]["state"] == "unreachable").then_some(body)
    })
    .await;
    assert_eq!(ready["controllers"]["default"]["state"], "ok", "{ready}");
    assert_eq!(
        ready["controller"]["state"], "ok",
        "the first is `default`: {ready}"
    );
    let console = Console::logged_in(&t.app.base).await;
    let page = console.get("/ui/").await;
    page.assert_has("Controller lab is unreachable since");
    page.assert_has("3 launch(es) wait for it");
    assert!(
        !page.body.contains("Controller default is"),
        "only lab needs a look: {}",
        page.body
    );
    let event: uuid::Uuid = sqlx::query_scalar(
        "SELECT event_id FROM launches WHERE controller = 'lab' AND state = 'planned' LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let (code, detail) = t.app.admin("GET", &format!("/events/{event}"), None).await;
    assert_eq!(code, 200, "{detail}");
    assert_eq!(
        detail["launches"][0]["waiting"]["reason"], "controller_unreachable",
        "{detail}"
    );
    assert_eq!(detail["launches"][0]["controller"], "lab", "{detail}");
    // The events list tags the launches that are not on `default`.
    let list = console.get("/ui/events").await;
    list.assert_has(
        "<span class=\"tag\">lab</span> <span class=\"wait\">waiting: controller unreachable",
    );
}

/// Three replicas on one database, both controllers: `lab` looks its template up slowly and its
/// gateway goes down for a while in the middle. Every event still makes exactly one job on its
/// controller, and no replica deadlocks another.
#[sqlx::test]
async fn three_replicas_launch_once_on_each_controller(pool: PgPool) {
    let t = start(pool.clone()).await;
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(
            TestApp::spawn_hooked(pool.clone(), pool.clone(), &t.yaml, Default::default()).await,
        );
    }
    let apps: Vec<&TestApp> = std::iter::once(&t.app).chain(others.iter()).collect();
    t.aap.set_lookup_delay(Duration::from_millis(300));
    for n in 0..60 {
        let sender = match n % 2 {
            0 => Sender::Github,
            _ => Sender::ServiceNow,
        };
        deliver(apps[n % apps.len()], sender, &format!("r-{n}")).await;
        match n {
            20 => t.aap.set_gateway_down(true),
            40 => t.aap.set_gateway_down(false),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_quiescent(&pool, &t.aap, 60).await;
    wait_quiescent(&pool, &t.awx, 60).await;
    assert_eq!((t.awx.jobs_launched(), t.aap.jobs_launched()), (30, 30));
    for c in [&t.awx, &t.aap] {
        let per = jobs_per_launch(c);
        assert_eq!(per.len(), 30);
        assert!(per.values().all(|n| *n == 1), "{per:?}");
    }
    assert_eq!(
        by_controller(&pool).await,
        [("default".to_string(), 30), ("lab".to_string(), 30)]
    );
    assert_eq!(deadlocks(&pool).await, 0);
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

    // A launch that was waiting for `lab` before it was marked dry_run stays planned, and says
    // why: nothing here sends to `lab` any more.
    let event: uuid::Uuid = sqlx::query_scalar(
        "UPDATE launches SET state = 'planned', next_attempt_at = now()
         WHERE id = (SELECT id FROM launches WHERE controller = 'lab' LIMIT 1) RETURNING event_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (code, detail) = t.app.admin("GET", &format!("/events/{event}"), None).await;
    assert_eq!(code, 200, "{detail}");
    let waiting = &detail["launches"][0]["waiting"];
    assert_eq!(waiting["reason"], "controller_not_served", "{detail}");
    let page = Console::logged_in(&t.app.base).await.get("/ui/").await;
    page.assert_has("1 launch(es) wait for controller lab, which is not live on this replica");
    page.assert_has("<b>lab</b> <span class=\"state s-dry_run\">dry-run</span>");
    let (_, ready) = t.app.get("/readyz").await;
    assert_eq!(ready["controllers"]["lab"]["state"], "dry_run", "{ready}");
    assert_eq!(t.aap.jobs_launched(), 0);
}
