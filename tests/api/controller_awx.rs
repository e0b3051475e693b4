//! The controller client against behaviour seen on a real AWX 24.6.1: output saved after the
//! status turns terminal, text error bodies, cancel, OAuth2 tokens that last ~1000 years, and a
//! DELETE answered 404 for a token an admin already removed.

use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use crate::support::{controller_settings, SVC_PASSWORD_AUTH};
use aap_bridge::controller::{Canceled, Controller, ControllerError, TemplateKind};
use serde_json::json;
use sqlx::PgPool;
use std::time::{Duration, Instant};

const BASIC: &str = "    mode: basic\n    username: svc\n    password: svc-pass\n";
const OAUTH: &str = "    mode: oauth2_app\n    username: svc\n    password: svc-pass\n    client_id: bridge-app\n    client_secret: bridge-app-secret\n";

fn client(fake: &FakeController, auth: &str, pool: Option<&PgPool>) -> Controller {
    Controller::new(
        "default",
        &controller_settings(&fake.url(), auth, ""),
        pool.cloned(),
    )
    .unwrap()
}

async fn failed_job(fake: &FakeController, c: &Controller) -> i64 {
    let tpl = fake.add_job_template(TemplateSpec {
        outcome: "failed".into(),
        ..Default::default()
    });
    let out = c.launch(TemplateKind::Job, tpl, &json!({})).await.unwrap();
    out.launched().job_id
}

#[tokio::test]
async fn output_is_short_until_event_processing_finishes() {
    let fake = FakeController::start(Flavour::Awx).await;
    fake.set_event_processing_delay(Some(Duration::from_millis(800)));
    let c = client(&fake, BASIC, None);
    let id = failed_job(&fake, &c).await;
    let job = c.job(TemplateKind::Job, id).await.unwrap();
    assert_eq!(
        (
            job["status"].clone(),
            job["event_processing_finished"].clone()
        ),
        (json!("failed"), json!(false))
    );
    let early = c.stdout_tail(id, 20).await.unwrap();
    assert!(!early.contains("FAILED"), "{early}");

    let started = Instant::now();
    assert!(c.output_settled(id, Duration::from_secs(5)).await);
    assert!(started.elapsed() < Duration::from_secs(3));
    let tail = c.stdout_tail(id, 20).await.unwrap();
    assert!(
        tail.ends_with("fatal: [web01]: FAILED! => {\"msg\": \"fake failure\"}"),
        "{tail}"
    );
}

#[tokio::test]
async fn waiting_for_output_is_bounded() {
    let fake = FakeController::start(Flavour::Awx).await;
    fake.set_event_processing_delay(None);
    let c = client(&fake, BASIC, None);
    let id = failed_job(&fake, &c).await;
    let started = Instant::now();
    assert!(!c.output_settled(id, Duration::from_millis(700)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // A job that does not exist is not waited for.
    let started = Instant::now();
    assert!(!c.output_settled(9999, Duration::from_secs(5)).await);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_text_404_keeps_its_body() {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake, BASIC, None);
    let err = c.stdout_tail(4242, 5).await.unwrap_err();
    let ControllerError::NotFound(text) = &err else {
        panic!("{err:?}");
    };
    assert!(text.starts_with("stdout of job 4242 (HTTP 404: "), "{text}");
    assert!(
        text.contains("ErrorDetail(string='No Job matches the given query.', code='not_found')"),
        "{text}"
    );
    let err = c.job(TemplateKind::Job, 4242).await.unwrap_err();
    assert_eq!(
        err,
        ControllerError::NotFound("job 4242 (HTTP 404: Not found.)".into())
    );
}

#[tokio::test]
async fn cancel_then_already_done_then_gone() {
    let fake = FakeController::start(Flavour::Awx).await;
    fake.set_job_duration(Duration::from_secs(30));
    let c = client(&fake, BASIC, None);
    let tpl = fake.add_job_template(TemplateSpec::default());
    let id = c
        .launch(TemplateKind::Job, tpl, &json!({}))
        .await
        .unwrap()
        .launched()
        .job_id;
    assert_eq!(
        c.cancel_job(TemplateKind::Job, id).await,
        Ok(Canceled::Canceled)
    );
    assert_eq!(fake.job(id).unwrap()["status"], "canceled");
    assert_eq!(
        c.cancel_job(TemplateKind::Job, id).await,
        Ok(Canceled::AlreadyDone)
    );
    assert_eq!(
        c.cancel_job(TemplateKind::Job, 777).await,
        Ok(Canceled::Gone)
    );
    let wf = fake.add_workflow_template(TemplateSpec::default());
    let wid = c
        .launch(TemplateKind::Workflow, wf, &json!({}))
        .await
        .unwrap()
        .launched()
        .job_id;
    assert_eq!(
        c.cancel_job(TemplateKind::Workflow, wid).await,
        Ok(Canceled::Canceled)
    );
    assert_eq!(
        fake.requests("POST", &format!("/api/v2/workflow_jobs/{wid}/cancel/")),
        1
    );
}

#[sqlx::test]
async fn oauth2_token_is_reused_across_starts(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let first = client(&fake, OAUTH, Some(&pool));
    first.me().await.unwrap();
    first.me().await.unwrap();
    drop(first);
    let second = client(&fake, OAUTH, Some(&pool));
    second.me().await.unwrap();
    assert_eq!(
        fake.requests("POST", "/api/o/token/"),
        1,
        "one grant for two starts"
    );
    assert_eq!(fake.oauth_tokens().len(), 1);
    let state = second.auth_state().await;
    assert_eq!(state.mode, "oauth2_app");
    assert!(state.expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::days(365 * 900));
}

#[sqlx::test]
async fn a_replaced_oauth2_token_is_revoked(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake, OAUTH, Some(&pool));
    c.me().await.unwrap();
    let old = fake.oauth_tokens();
    assert_eq!(old.len(), 1);
    // Due for renewal, and its refresh token no longer works: the password grant replaces it.
    sqlx::query(
        "UPDATE controller_tokens SET expires_at = now() + interval '30 seconds', refresh_token = 'stale'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let restarted = client(&fake, OAUTH, Some(&pool));
    restarted.me().await.unwrap();
    assert_eq!(
        fake.requests("POST", "/api/o/token/"),
        3,
        "grant, refused refresh, grant"
    );
    assert_eq!(
        fake.requests("POST", "/api/o/revoke_token/"),
        2,
        "access and refresh token"
    );
    let live = fake.oauth_tokens();
    assert_eq!(live.len(), 1, "the replaced token was revoked: {live:?}");
    assert_ne!(live[0].0, old[0].0);

    // A 401 (an admin revoked it) refreshes; the list stays at one token.
    fake.expire_oauth_access_tokens();
    restarted.me().await.unwrap();
    assert_eq!(fake.oauth_tokens().len(), 1);
    // The original client adopts the stored token instead of making another.
    c.me().await.unwrap();
    assert_eq!(fake.oauth_tokens().len(), 1);
}

#[sqlx::test]
async fn deleting_a_token_an_admin_already_deleted_is_not_an_error(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake, SVC_PASSWORD_AUTH, Some(&pool));
    c.me().await.unwrap();
    let old: i64 = sqlx::query_scalar("SELECT token_id FROM controller_tokens")
        .fetch_one(&pool)
        .await
        .unwrap();
    // An admin deletes it; the bridge's copy is due for renewal, so the next start rotates it
    // and its DELETE of the old one answers 404.
    fake.revoke_token(old);
    sqlx::query("UPDATE controller_tokens SET expires_at = now() + interval '1 hour', created_at = now() - interval '300 days'")
        .execute(&pool)
        .await
        .unwrap();
    let restarted = client(&fake, SVC_PASSWORD_AUTH, Some(&pool));
    restarted.me().await.expect("rotation goes on");
    assert_eq!(
        fake.requests("DELETE", &format!("/api/v2/tokens/{old}/")),
        1
    );
    assert_eq!(fake.tokens().len(), 1);
}
