//! The whole line: signed delivery -> exactly one launch with rendered extra_vars -> a
//! "launched" post-back with the job link -> a "finished" post-back with the outcome.

use crate::support::pipeline::{launch_states, wait_for, wait_quiescent, Options, Pipeline};
use crate::support::Sender;
use serde_json::{json, Value};
use sqlx::PgPool;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

async fn extra_vars_of_only_launch(p: &Pipeline) -> Value {
    let launches = p.controller.launches();
    assert_eq!(launches.len(), 1, "{launches:?}");
    let mut vars = launches[0]["extra_vars"].clone();
    if let Value::String(s) = &vars {
        vars = serde_json::from_str(s).unwrap();
    }
    vars
}

#[sqlx::test]
async fn servicenow_event_launches_once_and_gets_two_work_notes(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    let accepted = p.deliver(Sender::ServiceNow, "sn-1").await;

    let notes = wait_for("two work notes", 20, || async {
        let n = p.tickets.servicenow_notes(SYS_ID);
        (n.len() >= 2).then_some(n)
    })
    .await;
    assert_eq!(p.controller.jobs_launched(), 1);
    let launch = &p.controller.launches()[0];
    assert_eq!(launch["template_id"], 15, "disk_full maps to template 15");
    let vars = extra_vars_of_only_launch(&p).await;
    assert_eq!(vars["incident_number"], "INC0010001");
    assert_eq!(vars["target_host"], "web01.example.com");
    assert_eq!(vars["priority"], "2");
    assert_eq!(vars["aap_bridge_event_id"], accepted["event_id"]);

    assert_eq!(notes.len(), 2, "{notes:?}");
    assert_eq!(notes[0].0, "work_notes");
    assert!(
        notes[0].1.starts_with("[aap-bridge] Launched job"),
        "{notes:?}"
    );
    assert!(notes[0].1.contains("/#/jobs/playbook/"), "{notes:?}");
    assert!(notes[1].1.contains("successful"), "{notes:?}");

    let states = launch_states(&pool).await;
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].0, "finished");
    let event_state: String = sqlx::query_scalar("SELECT state FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(event_state, "dispatched");
}

#[sqlx::test]
async fn github_event_gets_a_launched_and_a_finished_comment(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    p.deliver(Sender::Github, "gh-1").await;
    let comments = wait_for("two comments", 20, || async {
        let c = p.tickets.github_comments("acme/ops", 42);
        (c.len() >= 2).then_some(c)
    })
    .await;
    assert_eq!(p.controller.jobs_launched(), 1);
    let vars = extra_vars_of_only_launch(&p).await;
    assert_eq!(
        (vars["repo"].clone(), vars["issue"].clone()),
        (json!("acme/ops"), json!("42"))
    );
    assert!(comments[0].contains("Launched job"), "{comments:?}");
    assert!(comments[1].contains("successful"), "{comments:?}");
}

#[sqlx::test]
async fn pagerduty_failure_note_carries_the_stdout_tail(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    p.deliver(Sender::PagerDuty, "pd-1").await;
    let notes = wait_for("two incident notes", 20, || async {
        let n = p.tickets.pagerduty_notes("PABC123");
        (n.len() >= 2).then_some(n)
    })
    .await;
    assert_eq!(p.controller.jobs_launched(), 1);
    assert_eq!(p.controller.launches()[0]["template_id"], 22);
    assert!(notes[0].contains("Launched job"), "{notes:?}");
    assert!(notes[1].contains("failed"), "{notes:?}");
    assert!(
        notes[1].contains("FAILED"),
        "the tail of stdout is included: {notes:?}"
    );
}

#[sqlx::test]
async fn unmapped_category_is_recorded_and_launches_nothing(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    let body = serde_json::to_vec(&json!({
        "table": "incident", "sys_id": SYS_ID, "number": "INC9",
        "sys_updated_on": "2026-11-22 11:00:00", "category": "printer_jam"
    }))
    .unwrap();
    let headers = Sender::ServiceNow.signed_headers("servicenow-new", "x", &body);
    let (status, _) = p.app.post("snow", &headers, &body).await;
    assert_eq!(status, 202);
    let (state, reason): (String, String) = wait_for("the decision", 10, || async {
        sqlx::query_as::<_, (String, Option<String>)>("SELECT state, state_reason FROM events")
            .fetch_one(&pool)
            .await
            .ok()
            .filter(|(s, _)| s != "pending")
            .map(|(s, r)| (s, r.unwrap_or_default()))
    })
    .await;
    assert_eq!(state, "unmapped");
    assert!(reason.contains("printer_jam"), "{reason}");
    assert_eq!(wait_quiescent(&pool, &p.controller, 10).await, 0);
    assert!(launch_states(&pool).await.is_empty());
}

#[sqlx::test]
async fn without_a_controller_the_launch_is_recorded_as_dry_run(pool: PgPool) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        crate::support::pipeline::RULES,
    )
    .unwrap();
    let full = crate::support::pipeline::config(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        dir.path(),
        30,
    );
    // Same settings minus the controller section.
    let start = full.find("controller:").unwrap();
    let end = full.find("sources:").unwrap();
    let yaml = format!("{}{}", &full[..start], &full[end..]);
    let app = crate::support::TestApp::spawn_with(pool.clone(), pool.clone(), &yaml).await;
    assert_eq!(app.deliver(Sender::ServiceNow, "dry-1").await.0, 202);
    let (state, request): (String, Value) = wait_for("the dry-run record", 10, || async {
        sqlx::query_as::<_, (String, sqlx::types::Json<Value>)>(
            "SELECT state, request FROM launches",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .map(|(s, r)| (s, r.0))
    })
    .await;
    assert_eq!(state, "dry_run");
    assert_eq!(request["extra_vars"]["incident_number"], "INC0010001");
    assert!(request["extra_vars"]["aap_bridge_launch_id"].is_string());
}

const NEEDS_SURVEY: &str = r#"
rules:
  - name: needs-survey
    source: snow
    category: disk_full
    launch: 40
    reply: work_notes
"#;

#[sqlx::test]
async fn a_refused_launch_is_told_to_the_ticket_once(pool: PgPool) {
    let opts = Options {
        rules: NEEDS_SURVEY,
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    p.controller
        .add_job_template(crate::support::fake_controller::TemplateSpec {
            id: Some(40),
            variables_needed: vec!["change_ticket".into()],
            ..Default::default()
        });
    p.deliver(Sender::ServiceNow, "refused-1").await;
    let notes = wait_for("the refusal note", 20, || async {
        let n = p.tickets.servicenow_notes(SYS_ID);
        (!n.is_empty()).then_some(n)
    })
    .await;
    assert!(
        notes[0].1.starts_with("[aap-bridge] Could not launch"),
        "{notes:?}"
    );
    assert!(
        notes[0].1.contains("change_ticket"),
        "the controller's reason: {notes:?}"
    );
    assert_eq!(p.controller.jobs_launched(), 0);
    let (state, error): (String, String) = sqlx::query_as("SELECT state, last_error FROM launches")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "rejected");
    assert!(error.contains("variables"), "{error}");
    wait_quiescent(&pool, &p.controller, 10).await;
    assert_eq!(p.tickets.servicenow_notes(SYS_ID).len(), 1, "told once");
}
