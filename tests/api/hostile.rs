//! Hostile ticket text: a limit of `all`, Jinja in extra_vars. The launch is refused before
//! anything reaches the controller, recorded `rejected` with the reason, and the ticket is told.
//! And `controller check` reports the controller's ALLOW_JINJA_IN_EXTRA_VARS.

use crate::support::fake_controller::{FakeController, Flavour};
use crate::support::pipeline::{wait_for, wait_quiescent, Options, Pipeline};
use crate::support::Sender;
use serde_json::json;
use sqlx::PgPool;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

const RULES: &str = r#"
rules:
  - name: snow-limit
    source: snow
    category: disk_full
    launch: 15
    limit: "{{ payload.cmdb_ci }}"
    extra_vars:
      description: "{{ payload.short_description }}"
    reply: work_notes
"#;

async fn deliver(p: &Pipeline, delivery: &str, cmdb_ci: &str, text: &str) {
    let body = serde_json::to_vec(&json!({
        "table": "incident", "sys_id": SYS_ID, "number": "INC0010001",
        "sys_updated_on": format!("2026-11-22 10:00:00 {delivery}"),
        "category": "disk_full", "cmdb_ci": cmdb_ci, "short_description": text,
        "operation": "insert"
    }))
    .unwrap();
    let s = Sender::ServiceNow;
    let headers = s.signed_headers(s.new_secret(), delivery, &body);
    let (status, answer) = p.app.post("snow", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
}

const LIMIT_ALL: &str = "limit `all` refused: `all` is every host in the inventory; only host \
    names (letters, digits, `.`, `-`, `_`) separated by `,` are accepted unless the rule sets \
    `limit_patterns: true`";
const MARKUP: &str = "extra_vars.description: the rendered value contains `{{` (Jinja markup \
    from the event), which the controller could evaluate; set `allow_templates_in_values: true` \
    on the rule to send it";

#[sqlx::test]
async fn hostile_values_are_refused_recorded_and_told_to_the_ticket(pool: PgPool) {
    let opts = Options {
        rules: RULES,
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    deliver(&p, "all-1", "all", "disk full").await;
    deliver(&p, "jinja-1", "web01", "{{ lookup('pipe', 'id') }}").await;

    let notes = wait_for("two refusal notes", 20, || async {
        let n = p.tickets.servicenow_notes(SYS_ID);
        (n.len() >= 2).then_some(n)
    })
    .await;
    let texts: Vec<&str> = notes.iter().map(|(_, t)| t.as_str()).collect();
    for reason in [LIMIT_ALL, MARKUP] {
        let told = format!("the bridge refused it: {reason}");
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("[aap-bridge] Could not launch") && t.contains(&told)),
            "{told}\nnot in {texts:#?}"
        );
    }
    assert_eq!(
        p.controller.jobs_launched(),
        0,
        "nothing reached the controller"
    );

    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT l.state, l.last_error, e.state, e.state_reason FROM launches l
           JOIN events e ON e.id = l.event_id ORDER BY e.received_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expect = |reason: &str| {
        (
            "rejected".to_string(),
            reason.to_string(),
            "failed".to_string(),
            format!("rule snow-limit: refused: {reason}"),
        )
    };
    assert_eq!(rows, [expect(LIMIT_ALL), expect(MARKUP)]);

    // A plain host name still launches.
    deliver(&p, "ok-1", "web01.example.com", "disk full").await;
    wait_for("the launch", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    assert_eq!(p.controller.launches()[0]["limit"], "web01.example.com");
}

async fn controller_check(fake: &FakeController) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.yaml");
    let config = format!(
        "controller:\n  url: \"{}\"\n  allow_insecure_http: true\n  auth:\n    mode: basic\n    username: svc\n    password: svc-pass\n",
        fake.url()
    );
    std::fs::write(&path, config).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aap-bridge"))
        .arg("--config")
        .arg(&path)
        .args(["controller", "check"])
        .env_remove("AAP_BRIDGE_CONFIG")
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn controller_check_reports_allow_jinja_in_extra_vars() {
    let fake = FakeController::start(Flavour::Awx).await;
    let (ok, out, err) = controller_check(&fake).await;
    assert!(ok, "{out} {err}");
    assert!(
        out.contains("job settings: ALLOW_JINJA_IN_EXTRA_VARS = template\n"),
        "{out}"
    );
    assert!(!out.contains("WARNING"), "{out}");

    fake.set_allow_jinja("always");
    let (ok, out, err) = controller_check(&fake).await;
    assert!(ok, "a warning, not a failure: {out} {err}");
    let warning = "WARNING: the controller's ALLOW_JINJA_IN_EXTRA_VARS is `always`: Jinja in \
        ticket text that reaches extra_vars is evaluated on the execution node. Set it to \
        `template` (Settings > Jobs), and keep `allow_templates_in_values` off in the mapping rules";
    assert!(out.contains(warning), "{out}");
    assert!(err.contains(warning), "{err}");

    fake.set_settings_jobs_status(403);
    let (ok, out, _) = controller_check(&fake).await;
    assert!(ok);
    assert!(
        out.contains(
            "job settings: ALLOW_JINJA_IN_EXTRA_VARS not readable (403: the service user may not \
             read settings); check it on the controller"
        ),
        "{out}"
    );
    fake.set_settings_jobs_status(404);
    let (ok, out, _) = controller_check(&fake).await;
    assert!(ok);
    assert!(
        out.contains("not readable (404: no settings/jobs/ endpoint)"),
        "{out}"
    );
}

/// `serve` reads the setting at start-up and logs it loudly when it is `always`.
#[sqlx::test]
async fn serve_warns_when_the_controller_templates_extra_vars(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    fake.set_allow_jinja("always");
    let extra = format!(
        "controller:\n  url: \"{url}\"\n  allow_insecure_http: true\n  auth: {{mode: basic, username: svc, password: svc-pass}}\n",
        url = fake.url()
    );
    let served = crate::support::binary::serve(&pool, &extra).await;
    wait_for("the settings read", 10, || async {
        let asked = fake.requests("GET", "/api/v2/settings/jobs/") > 0;
        asked.then_some(())
    })
    .await;
    served
        .wait_for_log("ALLOW_JINJA_IN_EXTRA_VARS is `always`", 10)
        .await;
    let (_, logs) = served.stop().await;
    assert!(
        logs.contains("SECURITY: the controller's ALLOW_JINJA_IN_EXTRA_VARS is `always`"),
        "{logs}"
    );
}

/// The real binary refuses to start on a weak secret, naming the key.
#[tokio::test]
async fn serve_refuses_a_weak_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.yaml");
    std::fs::write(
        &config,
        "sources:\n  gh: {kind: github, secrets: [change-me]}\n",
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aap-bridge"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("AAP_BRIDGE_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "sources.gh.secrets[0] is a placeholder (`change-me`…); use a long random value \
             (dev_mode: true allows it on a loopback listener)"
        ),
        "{err}"
    );
}

/// A sys_id that could steer the post-back's URL (`../../sys_user`): the job runs (nothing in it
/// reaches the controller), the event records at once that nothing can be posted back, and the
/// post-back is a dead letter with the same reason, never a request to another table.
#[sqlx::test]
async fn a_ticket_that_cannot_take_the_reply_is_recorded_at_ingest(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    let body = serde_json::to_vec(&json!({
        "table": "incident", "sys_id": "../../sys_user", "number": "INC0010009",
        "sys_updated_on": "2026-11-22 10:00:00", "category": "disk_full",
        "cmdb_ci": "web01", "priority": "2", "operation": "insert"
    }))
    .unwrap();
    let s = Sender::ServiceNow;
    let headers = s.signed_headers(s.new_secret(), "steer-1", &body);
    let (status, answer) = p.app.post("snow", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["event_id"].as_str().unwrap();
    let (state, reason): (String, Option<String>) =
        sqlx::query_as("SELECT state, state_reason FROM events WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "dispatched", "{reason:?}");
    assert_eq!(
        reason.as_deref(),
        Some(
            "rule snow-remediation: nothing can be posted back: ticket `sys_id` is not a sys_id \
             (32 hex digits)"
        ),
        "recorded in the event's own commit"
    );
    let jobs = wait_quiescent(&pool, &p.controller, 20).await;
    assert_eq!(jobs, 1, "the job runs");
    let dead: Vec<String> =
        sqlx::query_scalar("SELECT last_error FROM callbacks WHERE state = 'dead'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(!dead.is_empty() && dead.iter().all(|e| e.contains("`sys_id` is not a sys_id")));
    assert_eq!(p.tickets.servicenow_notes(SYS_ID).len(), 0);
}
