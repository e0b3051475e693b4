//! The other auth modes against the fake: session + CSRF, OAuth2 application, Tower authtoken,
//! static token and basic; a 401 re-authenticates once, never in a loop.

use crate::support::controller_settings;
use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use aap_bridge::controller::{Controller, ControllerError, TemplateKind};
use serde_json::json;

fn client(fake: &FakeController, auth: &str) -> Controller {
    Controller::new("default", &controller_settings(&fake.url(), auth, ""), None).unwrap()
}

const SESSION: &str = "    mode: session\n    username: svc\n    password: svc-pass\n";

#[tokio::test]
async fn session_login_with_csrf_and_relogin_after_expiry() {
    for flavour in [Flavour::Awx, Flavour::Aap] {
        let fake = FakeController::start(flavour).await;
        let tpl = fake.add_job_template(TemplateSpec::default());
        let c = client(&fake, SESSION);
        assert_eq!(c.me().await.unwrap().username, "svc");
        // An unsafe call needs the CSRF header, which the client takes from the rotated cookie.
        let out = c
            .launch(TemplateKind::Job, tpl, &json!({"extra_vars": {"a": 1}}))
            .await
            .unwrap();
        assert!(out.launched().job_id > 0);
        let login = match flavour {
            Flavour::Awx => "/api/login/",
            Flavour::Aap => "/api/gateway/v1/login/",
        };
        assert_eq!(fake.requests("POST", login), 1);

        fake.expire_sessions();
        c.me()
            .await
            .expect("logs in again after the session expired");
        assert_eq!(fake.requests("POST", login), 2);
        c.launch(TemplateKind::Job, tpl, &json!({})).await.unwrap();
        assert_eq!(fake.jobs_launched(), 2);
    }
}

#[tokio::test]
async fn oauth2_application_password_grant_then_refresh() {
    for flavour in [Flavour::Awx, Flavour::Aap] {
        let fake = FakeController::start(flavour).await;
        let auth = "    mode: oauth2_app\n    username: svc\n    password: svc-pass\n    client_id: bridge-app\n    client_secret: bridge-app-secret\n";
        let c = client(&fake, auth);
        c.me().await.unwrap();
        let token_path = match flavour {
            Flavour::Awx => "/api/o/token/",
            Flavour::Aap => "/o/token/",
        };
        assert_eq!(fake.requests("POST", token_path), 1);
        fake.expire_oauth_access_tokens();
        c.me().await.expect("refreshes after a 401");
        assert_eq!(fake.requests("POST", token_path), 2);
    }
}

#[tokio::test]
async fn oauth2_bad_client_secret_is_unauthorized() {
    let fake = FakeController::start(Flavour::Awx).await;
    let auth = "    mode: oauth2_app\n    username: svc\n    password: svc-pass\n    client_id: bridge-app\n    client_secret: nope\n";
    let err = client(&fake, auth).me().await.unwrap_err();
    assert!(matches!(err, ControllerError::Unauthorized(_)), "{err}");
}

#[tokio::test]
async fn tower_authtoken_login() {
    let fake = FakeController::start(Flavour::Awx).await;
    let auth = "    mode: tower_authtoken\n    username: svc\n    password: svc-pass\n";
    let c = client(&fake, auth);
    c.me().await.unwrap();
    c.me().await.unwrap();
    assert_eq!(
        fake.requests("POST", "/api/v2/authtoken/"),
        1,
        "the token is reused while valid"
    );
}

#[tokio::test]
async fn basic_auth_and_static_token() {
    let fake = FakeController::start(Flavour::Awx).await;
    let basic = "    mode: basic\n    username: svc\n    password: svc-pass\n";
    assert_eq!(client(&fake, basic).me().await.unwrap().username, "svc");

    let bad = "    mode: token\n    token: not-a-token\n";
    fake.reset_requests();
    let err = client(&fake, bad).me().await.unwrap_err();
    assert!(matches!(err, ControllerError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("controller.auth"), "{err}");
    assert_eq!(
        fake.requests("GET", "/api/v2/me/"),
        1,
        "a static token is not retried"
    );
}

#[tokio::test]
async fn revoked_static_token_does_not_loop() {
    let fake = FakeController::start(Flavour::Awx).await;
    let pw = crate::support::SVC_PASSWORD_AUTH;
    // Create a real token through password mode, then use it as a static token and revoke it.
    let managed = client(&fake, pw);
    managed.me().await.unwrap();
    let (id, _, _) = fake.tokens()[0].clone();
    fake.revoke_token(id);
    fake.reset_requests();
    let c = client(&fake, "    mode: token\n    token: whatever\n");
    assert!(c.me().await.is_err());
    assert!(fake.requests("GET", "/api/v2/me/") <= 2);
}
