//! The controller over real HTTPS (a test CA): verification on by default, `ca` trusted, wrong
//! CA or host refused with a clear error, session login with the Referer Django requires, and
//! pagination links to another origin refused.

use crate::support::controller_settings;
use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use crate::support::tls::TestCa;
use aap_bridge::controller::{Controller, TemplateKind};
use serde_json::json;

const SESSION: &str = "    mode: session\n    username: svc\n    password: svc-pass\n";
const OAUTH: &str = "    mode: oauth2_app\n    username: svc\n    password: svc-pass\n    client_id: bridge-app\n    client_secret: bridge-app-secret\n";
const BASIC: &str = "    mode: basic\n    username: svc\n    password: svc-pass\n";

fn trusting(ca: &TestCa) -> String {
    format!("  ca: {}\n", serde_json::to_string(&ca.pem()).unwrap())
}

fn client(fake: &FakeController, auth: &str, extra: &str) -> Controller {
    Controller::new(
        "default",
        &controller_settings(&fake.url(), auth, extra),
        None,
    )
    .unwrap()
}

#[tokio::test]
async fn session_over_https_with_the_configured_ca_sends_a_same_origin_referer() {
    let ca = TestCa::new("bridge test CA");
    for flavour in [Flavour::Awx, Flavour::Aap] {
        let fake = FakeController::start_tls(flavour, ca.server(&["127.0.0.1", "localhost"])).await;
        assert!(fake.url().starts_with("https://"));
        let tpl = fake.add_job_template(TemplateSpec::default());
        let c = client(&fake, SESSION, &trusting(&ca));
        assert_eq!(c.me().await.unwrap().username, "svc");
        // An unsafe call on the session: the fake refuses it without a same-origin Referer.
        let out = c
            .launch(TemplateKind::Job, tpl, &json!({}))
            .await
            .expect("launch over HTTPS with session auth");
        assert!(out.launched().job_id > 0);
    }
}

#[tokio::test]
async fn the_fake_refuses_unsafe_session_calls_without_referer_like_django() {
    use reqwest::cookie::CookieStore;
    let ca = TestCa::new("bridge test CA");
    let fake = FakeController::start_tls(Flavour::Awx, ca.server(&["127.0.0.1"])).await;
    let tpl = fake.add_job_template(TemplateSpec::default());
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base: reqwest::Url = fake.url().parse().unwrap();
    let csrf = || {
        let cookies = jar.cookies(&base).unwrap();
        let text = cookies.to_str().unwrap().to_string();
        text.split("; ")
            .find_map(|kv| kv.strip_prefix("csrftoken=").map(str::to_string))
            .unwrap()
    };
    let login = format!("{}/api/login/", fake.url());
    http.get(&login).send().await.unwrap();
    let token = csrf();
    let form = [
        ("username", "svc"),
        ("password", "svc-pass"),
        ("next", "/api/"),
        ("csrfmiddlewaretoken", token.as_str()),
    ];
    let refused = http.post(&login).form(&form).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Referer checking failed - no Referer."),
        "{page}"
    );

    let ok = http
        .post(&login)
        .header("Referer", &login)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 302);
    let launch = format!("{}/api/v2/job_templates/{tpl}/launch/", fake.url());
    let resp = http
        .post(&launch)
        .header("X-CSRFToken", csrf())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap(),
        json!({"detail": "CSRF Failed: Referer checking failed - no Referer."})
    );
    let elsewhere = http
        .post(&launch)
        .header("X-CSRFToken", csrf())
        .header("Referer", "https://evil.example/")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
    assert_eq!(fake.jobs_launched(), 0);
}

#[tokio::test]
async fn verification_is_on_by_default_and_names_the_problem() {
    let ca = TestCa::new("bridge test CA");
    let fake = FakeController::start_tls(Flavour::Awx, ca.server(&["127.0.0.1"])).await;
    let err = client(&fake, BASIC, "").me().await.unwrap_err().to_string();
    assert!(
        err.starts_with("could not connect to the controller: ")
            && err.contains("invalid peer certificate: UnknownIssuer")
            && err.ends_with(
                "(the controller's TLS certificate was refused: trust its CA with \
                 controller.ca_file, or use the host name the certificate names)"
            ),
        "{err}"
    );

    let other = TestCa::new("another CA");
    let err = client(&fake, BASIC, &trusting(&other))
        .me()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("UnknownIssuer"), "a wrong CA: {err}");

    let misnamed = FakeController::start_tls(Flavour::Awx, ca.server(&["aap.example.com"])).await;
    let err = client(&misnamed, BASIC, &trusting(&ca))
        .me()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("certificate not valid for name \"127.0.0.1\""),
        "a wrong host name: {err}"
    );

    // insecure_skip_verify connects anyway (and warns at start-up).
    let c = client(&fake, BASIC, "  insecure_skip_verify: true\n");
    assert_eq!(c.me().await.unwrap().username, "svc");
}

#[tokio::test]
async fn a_next_link_to_another_origin_is_refused() {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = client(&fake, BASIC, "");
    let tpl = fake.add_job_template(TemplateSpec::default());
    let job = c
        .launch(TemplateKind::Job, tpl, &json!({}))
        .await
        .unwrap()
        .launched()
        .job_id;
    assert_eq!(c.job_states(&[job]).await.unwrap().found.len(), 1);

    fake.set_next_origin(Some("http://evil.example:8443"));
    let err = c.job_states(&[job]).await.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "unexpected answer from the controller: the `next` link of unified jobs points to \
             http://evil.example:8443, not to the controller ({}); not following it with \
             credentials",
            fake.url()
        )
    );
    assert_eq!(
        fake.requests("GET", "/api/v2/unified_jobs/"),
        2,
        "never sent there"
    );
}

#[tokio::test]
async fn insecure_skip_verify_and_a_missing_token_key_are_warned_at_start_up() {
    let ca = TestCa::new("bridge test CA");
    let fake = FakeController::start_tls(Flavour::Awx, ca.server(&["127.0.0.1"])).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.yaml");
    let config = format!(
        "controller:\n  url: \"{}\"\n  insecure_skip_verify: true\n  auth:\n{OAUTH}",
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
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("controller.insecure_skip_verify is on: TLS certificates are NOT verified"),
        "{all}"
    );
    assert!(
        all.contains(
            "controller.token_key is not set: the controller token is stored in plain text"
        ),
        "{all}"
    );
    assert!(out.status.success(), "{all}");
}
