//! The binary itself: `controller check` as an operator runs it, and `check` on bad config.

use crate::support::fake_controller::{FakeController, Flavour};
use std::process::Output;

async fn run(args: &[&str], config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.yaml");
    std::fs::write(&path, config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_aap-bridge"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("AAP_BRIDGE_CONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn controller_check_prints_flavour_user_and_auth() {
    let fake = FakeController::start(Flavour::Aap).await;
    let config = format!(
        "controller:\n  url: \"{}\"\n  allow_insecure_http: true\n  auth:\n    mode: basic\n    username: svc\n    password: svc-pass\n",
        fake.url()
    );
    let out = run(&["controller", "check"], &config).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Aap, API /api/controller/v2/"), "{stdout}");
    assert!(stdout.contains("user: svc"), "{stdout}");
    assert!(stdout.contains("\"mode\":\"basic\""), "{stdout}");
    assert!(!stdout.contains("svc-pass"), "the password never prints");
}

#[tokio::test]
async fn controller_check_checks_each_controller_or_the_one_named() {
    let (awx, aap) = (
        FakeController::start(Flavour::Awx).await,
        FakeController::start(Flavour::Aap).await,
    );
    let one = |url: String| {
        format!("{{url: \"{url}\", allow_insecure_http: true, auth: {{mode: basic, username: svc, password: svc-pass}}}}")
    };
    let config = format!(
        "controller: {}\ncontrollers:\n  lab: {}\n",
        one(awx.url()),
        one(aap.url())
    );
    let out = run(&["controller", "check"], &config).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let (default_at, lab_at) = (
        stdout.find("== default").unwrap(),
        stdout.find("== lab").unwrap(),
    );
    assert!(default_at < lab_at, "{stdout}");
    assert!(
        stdout[default_at..lab_at].contains("Awx, API /api/v2/"),
        "{stdout}"
    );
    assert!(
        stdout[lab_at..].contains("Aap, API /api/controller/v2/"),
        "{stdout}"
    );

    let out = run(&["controller", "check", "--name", "lab"], &config).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !stdout.contains("== "), "{stdout}");
    assert!(
        stdout.contains("Aap, API") && !stdout.contains("Awx, API"),
        "{stdout}"
    );

    let out = run(&["controller", "check", "--name", "prod"], &config).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no controller is named `prod` (configured: default, lab)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn controller_check_without_controller_says_dry_run() {
    let out = run(&["controller", "check"], "log:\n  level: warn\n").await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dry-run"));
}

#[tokio::test]
async fn bad_config_names_the_problem() {
    let out = run(
        &["check"],
        "controller:\n  url: \"ftp://x\"\n  auth: {mode: basic, username: a, password: b}\n",
    )
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("controller.url must be http"), "{err}");
}

const EXAMPLE_SOURCES: &str = "sources:\n  github: {kind: github, secrets: [cli-test-github-hmac-key]}\n  pagerduty: {kind: pagerduty, secrets: [cli-test-pagerduty-key]}\n  servicenow: {kind: servicenow, secrets: [cli-test-servicenow-key]}\n";

#[tokio::test]
async fn check_passes_on_each_shipped_mapping_file() {
    let root = env!("CARGO_MANIFEST_DIR");
    for file in ["servicenow.yaml", "github.yaml", "pagerduty.yaml"] {
        let config = format!("{EXAMPLE_SOURCES}mappings: {{path: \"{root}/mappings/{file}\"}}\n");
        let out = run(&["check"], &config).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("configuration OK"), "{stdout}");
    }
}

#[tokio::test]
async fn check_names_file_and_line_of_a_broken_rule() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("broken.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - name: ok\n    source: github\n    launch: 1\n  - name: bad\n    source: github\n    launch: 2\n    extra_vars:\n      x: \"{{ payload.a \"\n",
    )
    .unwrap();
    let config = format!(
        "{EXAMPLE_SOURCES}mappings: {{path: \"{}\"}}\n",
        rules.display()
    );
    let out = run(&["check"], &config).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:9:", rules.display())), "{err}");
}

#[sqlx::test]
async fn health_command_checks_the_service(pool: sqlx::PgPool) {
    let app = crate::support::TestApp::spawn(pool).await;
    let ok = run(
        &["health", "--url", &format!("{}/healthz", app.base)],
        "log: {level: warn}\n",
    )
    .await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = run(
        &[
            "health",
            "--url",
            &format!("http://127.0.0.1:{port}/healthz"),
        ],
        "log: {level: warn}\n",
    )
    .await;
    assert!(!down.status.success());
}

/// The real binary at debug level: no secret, token or signature reaches the logs.
#[sqlx::test]
async fn secrets_and_signatures_never_reach_the_logs(pool: sqlx::PgPool) {
    use crate::support::Sender;
    let extra = format!(
        "dev_mode: true\n\
         log: {{level: debug, format: json}}\n\
         mappings: {{path: \"{root}/tests/support/no-rules.yaml\"}}\n\
         admin: {{token: admin-token-xyzzy}}\n\
         sources:\n  gh: {{kind: github, secrets: [github-new]}}\n",
        root = env!("CARGO_MANIFEST_DIR")
    );
    let served = crate::support::binary::serve(&pool, &extra).await;
    let base = served.base.clone();
    let client = reqwest::Client::new();
    let body = Sender::Github.body("log-1");
    let good = Sender::Github.signed_headers("github-new", "log-1", &body);
    let bad = Sender::Github.signed_headers("not-the-secret", "log-2", &body);
    let mut signatures = Vec::new();
    for headers in [&good, &bad] {
        let mut req = client.post(format!("{base}/hooks/gh")).body(body.clone());
        for (k, v) in headers.iter() {
            if k == "X-Hub-Signature-256" {
                signatures.push(v.trim_start_matches("sha256=").to_string());
            }
            req = req.header(k, v);
        }
        req.send().await.unwrap();
    }
    client
        .get(format!("{base}/api/v1/events"))
        .bearer_auth("wrong-admin-token-qwerty")
        .send()
        .await
        .unwrap();
    let (out, logs) = served.stop().await;
    assert!(
        out.status.success(),
        "exit 0 after SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        logs.contains("delivery refused"),
        "the refusal is logged: {logs}"
    );
    for secret in [
        "github-new",
        "admin-token-xyzzy",
        "wrong-admin-token-qwerty",
        &signatures[0],
        &signatures[1],
    ] {
        assert!(!logs.contains(secret), "`{secret}` leaked into the logs");
    }
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn an_unreachable_database_names_the_address_and_the_setting() {
    let port = closed_port();
    let config = format!("database: {{url: \"postgres://postgres@127.0.0.1:{port}/x\"}}\n");
    for args in [&["events"][..], &["migrate"][..]] {
        let out = run(args, &config).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.contains(&format!("cannot reach PostgreSQL at 127.0.0.1:{port}"))
                && err.contains("database.url")
                && err.contains("AAP_BRIDGE__DATABASE__URL")
                && err.contains("Start PostgreSQL"),
            "{args:?}: {err}"
        );
    }
}

#[tokio::test]
async fn a_busy_port_names_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = format!("server: {{listen: \"{addr}\"}}\n");
    // Bounded: a serve that did start would never return by itself.
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), run(&["serve"], &config))
        .await
        .expect("serve stops at once on a busy port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot listen on {addr}"))
            && err.contains("another process listens there")
            && err.contains("server.listen"),
        "{err}"
    );
    drop(taken);
}

/// A data command's stdout is its answer only: the migrations' notices and every log line go to
/// stderr, so `aap-bridge events | jq` works on a database already migrated.
#[sqlx::test]
async fn a_data_command_prints_only_data_on_stdout(pool: sqlx::PgPool) {
    let url = crate::admin::database_url(&pool);
    let config = format!("database: {{url: \"{url}\"}}\nlog: {{level: debug}}\n");
    for _ in 0..2 {
        let out = run(&["events", "--limit", "5"], &config).await;
        let text = crate::admin::stdout(&out);
        assert!(
            !text.contains("_sqlx_migrations") && !text.contains("INFO") && !text.contains("DEBUG"),
            "{text}"
        );
        assert!(text.contains("(no events)"), "{text}");
    }
}
