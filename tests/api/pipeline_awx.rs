//! Behaviour seen on a real AWX 24.6.1: a job's output is saved after it turns `failed`, and a
//! template that does not prompt for variables drops them (`ignored_fields`).

use crate::support::fake_controller::TemplateSpec;
use crate::support::pipeline::{config_tuned, wait_for, Options, Pipeline, Tuning};
use crate::support::Sender;
use aap_bridge::config::Settings;
use aap_bridge::controller::{Controller, LaunchOutcome, TemplateKind};
use aap_bridge::launch::sql::rows as launches;
use aap_bridge::launch::Fence;
use aap_bridge::launch::{on_ignored_fields, Verdict};
use aap_bridge::mapping::{Mappings, SharedMappings};
use aap_bridge::notify::Notifier;
use aap_bridge::workers::Context;
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";
const FATAL: &str = "fatal: [web01]: FAILED! => {\"msg\": \"fake failure\"}";

#[sqlx::test]
async fn a_failure_post_back_waits_for_the_output_to_be_saved(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    p.controller
        .set_event_processing_delay(Some(Duration::from_millis(1500)));
    p.deliver(Sender::PagerDuty, "pd-wait").await;
    let notes = wait_for("two incident notes", 20, || async {
        let n = p.tickets.pagerduty_notes("PABC123");
        (n.len() >= 2).then_some(n)
    })
    .await;
    assert!(notes[1].contains("finished: failed"), "{notes:?}");
    assert!(
        notes[1].contains(FATAL),
        "the failing task is quoted: {notes:?}"
    );
    let detail_reads = p.controller.requests("GET", "/api/v2/jobs/1/")
        - p.controller.requests("GET", "/api/v2/jobs/1/stdout/");
    assert!(
        detail_reads >= 2,
        "the job detail was polled for event_processing_finished"
    );
}

#[sqlx::test]
async fn output_never_saved_is_posted_after_the_bound_and_other_jobs_go_on(pool: PgPool) {
    let opts = Options {
        tuning: Tuning {
            workers: "  stdout_wait_secs: 4\n".into(),
            ..Tuning::default()
        },
        ..Options::default()
    };
    let p = Pipeline::start(pool, opts).await;
    p.controller.set_event_processing_delay(None);
    p.deliver(Sender::PagerDuty, "pd-stuck").await;
    wait_for("the PagerDuty job to fail", 10, || async {
        (p.controller.job(1)?["status"] == "failed").then_some(())
    })
    .await;
    let failed_at = Instant::now();

    // Another job finishes while the first one's output is awaited: it is tracked at once.
    p.deliver(Sender::Github, "gh-meanwhile").await;
    wait_for("the GitHub outcome", 10, || async {
        let c = p.tickets.github_comments("acme/ops", 42);
        (c.len() >= 2).then_some(())
    })
    .await;
    assert!(
        p.tickets.pagerduty_notes("PABC123").len() < 2,
        "the failure is still waiting for its output"
    );

    let notes = wait_for("the failure note", 20, || async {
        let n = p.tickets.pagerduty_notes("PABC123");
        (n.len() >= 2).then_some(n)
    })
    .await;
    assert!(
        failed_at.elapsed() >= Duration::from_secs(3),
        "waited for the bound"
    );
    assert!(notes[1].contains("finished: failed"), "{notes:?}");
    assert!(notes[1].contains("line 1"), "what there is: {notes:?}");
    assert!(!notes[1].contains(FATAL), "{notes:?}");
}

const STRICT: &str = r#"
rules:
  - name: strict-warn
    source: snow
    category: disk_full
    launch: 50
    extra_vars:
      incident_number: "{{ ticket.number }}"
    reply: work_notes
  - name: strict-fail
    source: snow
    category: disk_full
    launch: 50
    extra_vars:
      incident_number: "{{ ticket.number }}"
    reply: work_notes
    on_ignored_fields: fail
"#;

fn no_prompt(id: i64) -> TemplateSpec {
    TemplateSpec {
        id: Some(id),
        name: format!("strict-{id}"),
        ask_variables_on_launch: false,
        ..Default::default()
    }
}

#[sqlx::test]
async fn ignored_extra_vars_are_named_in_the_launched_note(pool: PgPool) {
    let opts = Options {
        rules: STRICT,
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    p.controller.add_job_template(no_prompt(50));
    p.deliver(Sender::ServiceNow, "sn-strict").await;
    let note = wait_for("the launched note of strict-warn", 20, || async {
        p.tickets
            .servicenow_notes(SYS_ID)
            .into_iter()
            .map(|(_, text)| text)
            .find(|t| t.contains("Launched job") && t.contains("rule strict-warn"))
    })
    .await;
    assert!(
        note.contains("Note: the controller ignored extra_vars (the template does not prompt for it on launch); the job runs without it."),
        "{note}"
    );
    // The dispatcher copied each rule's choice onto its launch.
    let policies: Vec<(String, String)> =
        sqlx::query_as("SELECT rule, on_ignored_fields FROM launches ORDER BY rule")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        policies,
        vec![
            ("strict-fail".to_string(), "fail".to_string()),
            ("strict-warn".to_string(), "warn".to_string())
        ]
    );
    // Through the launcher: the `fail` rule's job is canceled and its launch rejected; the
    // `warn` rule's job is kept.
    crate::support::pipeline::wait_quiescent(&pool, &p.controller, 30).await;
    let outcomes: Vec<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT rule, state, job_id FROM launches ORDER BY rule")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(outcomes[0].1, "rejected", "{outcomes:?}");
    assert!(
        matches!(outcomes[1].1.as_str(), "launched" | "finished"),
        "{outcomes:?}"
    );
    let failed_job = outcomes[0].2.expect("the rejected launch keeps its job");
    assert_eq!(p.controller.job(failed_job).unwrap()["status"], "canceled");
}

/// A worker context like the service's, on the pipeline's database, controller and tickets.
fn context(p: &Pipeline, pool: &PgPool) -> (Arc<Context>, Arc<Controller>) {
    let yaml = config_tuned(
        &p.controller.url(),
        &p.tickets.url(),
        p.dir.path(),
        30,
        &Tuning::default(),
    );
    let s = Settings::from_parts(Some(&yaml), None, false).unwrap();
    let c = Arc::new(Controller::new("default", s.controller.as_ref().unwrap(), None).unwrap());
    let ctx = Context {
        pool: pool.clone(),
        settings: s.workers.clone(),
        controller: Some(c.clone()),
        lane: "default".into(),
        dry_controllers: Default::default(),
        mappings: SharedMappings::new(Mappings::empty()),
        record_skipped: false,
        notifier: Arc::new(Notifier::new(&s.sources).unwrap()),
        wake_dispatch: Default::default(),
        wake_launch: Default::default(),
        wake_notify: Default::default(),
        hooks: Default::default(),
        retention: s.retention.clone(),
        replica: "test".into(),
        launch_slots: Arc::new(tokio::sync::Semaphore::new(1)),
        notify_slots: Arc::new(tokio::sync::Semaphore::new(32)),
        launch_starved: Default::default(),
        health: Arc::new(aap_bridge::controller::ControllerHealth::new(
            std::time::Duration::from_secs(1),
        )),
        settle_secs: 120,
        down_sources: aap_bridge::workers::DownSources::new(std::time::Duration::from_secs(1)),
        attempts: aap_bridge::workers::Detached::new("launch attempt"),
        output_waits: aap_bridge::workers::Detached::new("job output wait"),
    };
    (Arc::new(ctx), c)
}

/// A `launching` row for template 50 under `rule`, on the event of an earlier launch.
async fn launching_row(pool: &PgPool, rule: &str, policy: &str) -> launches::LaunchRow {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO launches (id, event_id, rule, source, kind, ticket, template_kind, template_id,
             request, reply, state, lease_until, on_ignored_fields)
         SELECT $1, event_id, $2, source, kind, ticket, 'job', 50, request, reply, 'launching',
             now() + interval '1 hour', $3
         FROM launches ORDER BY created_at LIMIT 1",
    )
    .bind(id)
    .bind(rule)
    .bind(policy)
    .execute(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    launches::get(&mut conn, id.into()).await.unwrap()
}

#[sqlx::test]
async fn on_ignored_fields_fail_cancels_the_job_and_tells_the_ticket(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    p.controller.add_job_template(no_prompt(50));
    p.deliver(Sender::ServiceNow, "sn-base").await;
    wait_for("the first launch", 20, || async {
        (p.tickets.servicenow_notes(SYS_ID).len() >= 2).then_some(())
    })
    .await;
    let (ctx, c) = context(&p, &pool);
    let body = json!({"extra_vars": {"incident_number": "INC1", "aap_bridge_launch_id": "x"}});

    // warn: the job is kept.
    let row = launching_row(&pool, "manual-warn", "warn").await;
    let LaunchOutcome::Partial {
        launched,
        ignored_fields,
    } = c.launch(TemplateKind::Job, 50, &body).await.unwrap()
    else {
        panic!("the template drops extra_vars");
    };
    let v = on_ignored_fields(
        &ctx,
        &c,
        &row,
        &Fence::of(&row, "test"),
        &launched,
        &ignored_fields,
    )
    .await
    .unwrap();
    assert_eq!(v, Verdict::Keep);
    assert_ne!(
        p.controller.job(launched.job_id).unwrap()["status"],
        "canceled"
    );

    // fail: canceled, settled `rejected` with the job, the ticket told.
    let row = launching_row(&pool, "manual-fail", "fail").await;
    let LaunchOutcome::Partial {
        launched,
        ignored_fields,
    } = c.launch(TemplateKind::Job, 50, &body).await.unwrap()
    else {
        panic!("the template drops extra_vars");
    };
    let v = on_ignored_fields(
        &ctx,
        &c,
        &row,
        &Fence::of(&row, "test"),
        &launched,
        &ignored_fields,
    )
    .await
    .unwrap();
    let Verdict::Rejected { reason } = v else {
        panic!("fail rejects: {v:?}");
    };
    assert!(
        reason.contains("ignored extra_vars") && reason.contains("rule manual-fail"),
        "{reason}"
    );
    assert_eq!(
        p.controller.job(launched.job_id).unwrap()["status"],
        "canceled"
    );
    let cancel = format!("/api/v2/jobs/{}/cancel/", launched.job_id);
    assert_eq!(p.controller.requests("POST", &cancel), 1);
    let (state, job_id, error): (String, Option<i64>, String) =
        sqlx::query_as("SELECT state, job_id, last_error FROM launches WHERE id = $1")
            .bind(row.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (state.as_str(), job_id, error.as_str()),
        ("rejected", Some(launched.job_id), reason.as_str())
    );
    let note = wait_for("the rejection note", 20, || async {
        p.tickets
            .servicenow_notes(SYS_ID)
            .into_iter()
            .map(|(_, text)| text)
            .find(|t| t.contains("manual-fail"))
    })
    .await;
    assert!(
        note.starts_with(&format!("[aap-bridge] Job {} (", launched.job_id)),
        "{note}"
    );
    assert!(
        note.contains("ignored extra_vars") && note.contains("was canceled"),
        "{note}"
    );
}
