//! Typed calls: discovery, templates, launch outcomes, batched status, reconciliation listing,
//! stdout, links, and retries that never repeat a launch.

use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use crate::support::{controller_settings, SVC_PASSWORD_AUTH};
use aap_bridge::controller::{
    Controller, ControllerError, Flavour as F, LaunchOutcome, TemplateKind,
};
use serde_json::json;

const BASIC: &str = "    mode: basic\n    username: svc\n    password: svc-pass\n";

fn client(fake: &FakeController) -> Controller {
    Controller::new(
        "default",
        &controller_settings(&fake.url(), BASIC, ""),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn discovers_flavour_and_builds_links() {
    let awx = FakeController::start(Flavour::Awx).await;
    let c = client(&awx);
    let api = c.api().await.unwrap().clone();
    assert_eq!((api.flavour, api.root.as_str()), (F::Awx, "/api/v2/"));
    assert_eq!(
        c.job_link(&api, TemplateKind::Job, 7),
        format!("{}/#/jobs/playbook/7", awx.url())
    );
    assert_eq!(
        c.job_link(&api, TemplateKind::Workflow, 8),
        format!("{}/#/jobs/workflow/8", awx.url())
    );

    let aap = FakeController::start(Flavour::Aap).await;
    let c = client(&aap);
    let api = c.api().await.unwrap().clone();
    assert_eq!(
        (api.flavour, api.root.as_str()),
        (F::Aap, "/api/controller/v2/")
    );
    assert_eq!(
        c.job_link(&api, TemplateKind::Job, 7),
        format!("{}/execution/jobs/playbook/7/output", aap.url())
    );
    let report = c.check().await.unwrap();
    assert_eq!(report.user.username, "svc");
    assert!(report.version.is_some());

    let custom = Controller::new(
        "default",
        &controller_settings(
            &aap.url(),
            BASIC,
            "  job_link_template: \"https://ui.example/{kind}/{id}\"\n",
        ),
        None,
    )
    .unwrap();
    assert_eq!(
        custom.job_link(&api, TemplateKind::Job, 3),
        "https://ui.example/playbook/3"
    );
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Controller::new(
        "default",
        &controller_settings(&format!("http://127.0.0.1:{port}"), BASIC, ""),
        None,
    )
    .unwrap();
    let err = c.me().await.unwrap_err();
    assert!(matches!(err, ControllerError::Connect(_)), "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn templates_by_id_and_by_name() {
    let fake = FakeController::start(Flavour::Awx).await;
    let id = fake.add_job_template(TemplateSpec {
        name: "Disk cleanup".into(),
        organization: "Ops".into(),
        ..Default::default()
    });
    let wf = fake.add_workflow_template(TemplateSpec {
        name: "Restart service".into(),
        organization: "Ops".into(),
        ..Default::default()
    });
    let c = client(&fake);
    assert_eq!(
        c.template(TemplateKind::Job, id).await.unwrap().name,
        "Disk cleanup"
    );
    let t = c
        .template_by_name(TemplateKind::Job, "Disk cleanup", Some("Ops"))
        .await
        .unwrap();
    assert_eq!((t.id, t.organization.as_deref()), (id, Some("Ops")));
    let w = c
        .template_by_name(TemplateKind::Workflow, "Restart service", Some("Ops"))
        .await
        .unwrap();
    assert_eq!(w.id, wf);
    let err = c
        .template_by_name(TemplateKind::Job, "Nope", Some("Ops"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::NotFound(ref m) if m.contains("Nope")),
        "{err}"
    );
    assert!(matches!(
        c.template(TemplateKind::Job, 999).await,
        Err(ControllerError::NotFound(_))
    ));
    let info = c.launch_info(TemplateKind::Job, id).await.unwrap();
    assert_eq!(info["ask_variables_on_launch"], true);
}

#[tokio::test]
async fn launch_outcomes_are_typed() {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake);
    let ok = fake.add_job_template(TemplateSpec::default());
    let out = c
        .launch(TemplateKind::Job, ok, &json!({"extra_vars": {"x": 1}}))
        .await
        .unwrap();
    assert!(
        matches!(out, LaunchOutcome::Launched(ref l) if l.status == "pending"),
        "{out:?}"
    );

    let no_prompt = fake.add_job_template(TemplateSpec {
        ask_variables_on_launch: false,
        ..Default::default()
    });
    let out = c
        .launch(
            TemplateKind::Job,
            no_prompt,
            &json!({"extra_vars": {"aap_bridge_event_id": "e1"}, "limit": "web01"}),
        )
        .await
        .unwrap();
    match out {
        LaunchOutcome::Partial {
            ignored_fields,
            launched,
        } => {
            assert!(
                ignored_fields.contains_key("extra_vars"),
                "{ignored_fields:?}"
            );
            assert!(ignored_fields.contains_key("limit"));
            assert!(launched.job_id > 0);
        }
        other => panic!("expected Partial, got {other:?}"),
    }

    let survey = fake.add_job_template(TemplateSpec {
        variables_needed: vec!["foo".into()],
        ..Default::default()
    });
    let err = c
        .launch(TemplateKind::Job, survey, &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ControllerError::VariablesNeeded(ref v) if v[0].contains("foo")),
        "{err}"
    );

    let no_inv = fake.add_job_template(TemplateSpec {
        missing_inventory: true,
        ..Default::default()
    });
    let err = c
        .launch(TemplateKind::Job, no_inv, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::ResourcesNeeded(_)), "{err}");

    fake.add_user("viewer", "viewer-pass", false);
    let viewer = Controller::new(
        "default",
        &controller_settings(
            &fake.url(),
            "    mode: basic\n    username: viewer\n    password: viewer-pass\n",
            "",
        ),
        None,
    )
    .unwrap();
    let err = viewer
        .launch(TemplateKind::Job, ok, &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, ControllerError::Forbidden(_)), "{err}");

    let wf = fake.add_workflow_template(TemplateSpec::default());
    let out = c
        .launch(TemplateKind::Workflow, wf, &json!({"extra_vars": {}}))
        .await
        .unwrap();
    assert_eq!(out.launched().kind, TemplateKind::Workflow);
    let job = c
        .job(TemplateKind::Workflow, out.launched().job_id)
        .await
        .unwrap();
    assert_eq!(job["type"], "workflow_job");
}

#[tokio::test]
async fn gets_are_retried_but_a_launch_is_not() {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake);
    let tpl = fake.add_job_template(TemplateSpec::default());
    c.me().await.unwrap();

    fake.fail_next(2, 503);
    c.me()
        .await
        .expect("two 503s then success within 3 attempts");

    fake.reset_requests();
    fake.fail_next(1, 502);
    let err = c
        .launch(TemplateKind::Job, tpl, &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Unavailable {
                status: 502,
                attempts: 1
            }
        ),
        "{err}"
    );
    assert_eq!(
        fake.requests("POST", "/api/v2/job_templates/"),
        1,
        "a launch POST is sent once"
    );
    assert_eq!(fake.jobs_launched(), 0);

    fake.set_down(true);
    let err = c.me().await.unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::Unavailable {
                status: 503,
                attempts: 3
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn tracking_1000_jobs_costs_5_list_requests() {
    let fake = FakeController::start(Flavour::Aap).await;
    fake.set_job_duration(std::time::Duration::from_secs(3600));
    let c = client(&fake);
    let tpl = fake.add_job_template(TemplateSpec::default());
    let mut ids = Vec::new();
    for _ in 0..1000 {
        ids.push(
            c.launch(TemplateKind::Job, tpl, &json!({}))
                .await
                .unwrap()
                .launched()
                .job_id,
        );
    }
    fake.set_job_status(ids[0], "failed");
    fake.reset_requests();
    let states = c.job_states(&ids).await.unwrap();
    assert_eq!(states.found.len(), 1000);
    assert_eq!(fake.requests("GET", "/api/controller/v2/unified_jobs/"), 5);
    let first = states.found.iter().find(|s| s.id == ids[0]).unwrap();
    assert!(first.is_terminal() && first.status == "failed");
    assert!(states.unread.is_empty());
    assert!(states
        .found
        .iter()
        .filter(|s| s.id != ids[0])
        .all(|s| s.status == "pending"));
}

#[tokio::test]
async fn one_failed_page_leaves_its_jobs_for_the_next_round() {
    let fake = FakeController::start(Flavour::Aap).await;
    fake.set_job_duration(std::time::Duration::from_secs(3600));
    let c = client(&fake);
    let tpl = fake.add_job_template(TemplateSpec::default());
    let mut ids = Vec::new();
    for _ in 0..450 {
        let l = c.launch(TemplateKind::Job, tpl, &json!({})).await.unwrap();
        ids.push(l.launched().job_id);
    }
    // The first of three pages fails with a definite error: the other two still count.
    fake.fail_next(1, 400);
    let states = c.job_states(&ids).await.unwrap();
    assert_eq!(states.unread, ids[..200].to_vec());
    assert_eq!(states.found.len(), 250);
    // Every page failing is an error for the round, as before.
    fake.fail_next(3, 400);
    assert!(c.job_states(&ids).await.is_err());
}

#[tokio::test]
async fn recent_jobs_carry_their_extra_vars_and_stdout_tail() {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake);
    let tpl = fake.add_job_template(TemplateSpec {
        outcome: "failed".into(),
        ..Default::default()
    });
    let since = chrono::Utc::now() - chrono::Duration::seconds(5);
    for n in 0..3 {
        c.launch(
            TemplateKind::Job,
            tpl,
            &json!({"extra_vars": {"aap_bridge_event_id": format!("e{n}")}}),
        )
        .await
        .unwrap();
    }
    let jobs = c.jobs_since(TemplateKind::Job, tpl, since).await.unwrap();
    let markers: Vec<_> = jobs
        .iter()
        .map(|j| {
            j.extra_vars["aap_bridge_event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(markers, vec!["e0", "e1", "e2"]);
    let later = c
        .jobs_since(
            TemplateKind::Job,
            tpl,
            chrono::Utc::now() + chrono::Duration::seconds(60),
        )
        .await
        .unwrap();
    assert!(later.is_empty());

    // The job failed at once, but its output is saved about a second later.
    let wait = std::time::Duration::from_secs(5);
    assert!(c.output_settled(jobs[0].id, wait).await);
    let tail = c.stdout_tail(jobs[0].id, 5).await.unwrap();
    assert_eq!(tail.lines().count(), 5);
    assert!(tail.contains("FAILED"), "{tail}");
}

#[sqlx::test]
async fn controller_check_reports_the_token(pool: sqlx::PgPool) {
    let fake = FakeController::start(Flavour::Aap).await;
    let c = Controller::new(
        "default",
        &controller_settings(&fake.url(), SVC_PASSWORD_AUTH, ""),
        Some(pool),
    )
    .unwrap();
    let report = c.check().await.unwrap();
    assert_eq!(report.auth.mode, "password");
    assert!(report.auth.token_id.is_some());
    assert!(report.auth.expires_at.is_some());
}

#[tokio::test]
async fn ca_file_is_read_and_a_bad_one_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate\n").unwrap();
    let extra = format!("  ca_file: \"{}\"\n", path.display());
    let s = controller_settings("https://aap.example.com", BASIC, &extra);
    assert!(s.ca.is_some(), "ca_file is read into `ca`");
    let err = Controller::new("default", &s, None)
        .err()
        .expect("no certificate in the file");
    assert!(
        matches!(err, ControllerError::Config(ref m) if m.contains("ca_file")),
        "{err}"
    );
}
