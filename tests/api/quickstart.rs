//! The first five minutes, with the real binary: `serve` with no flags in a directory holding
//! the shipped `aap-bridge.yaml` (its database and port pointed at this test's), signed
//! deliveries of each kind, and `aap-bridge send` for each example.

use aap_bridge::signature::{hmac_sha256, to_base64, to_hex};
use sqlx::PgPool;
use std::path::Path;
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

pub(crate) const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary in `dir` with no --config, no AAP_BRIDGE_CONFIG and no AAP_BRIDGE__* overrides.
pub(crate) fn bridge(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aap-bridge"));
    cmd.current_dir(dir)
        .env_remove("AAP_BRIDGE_CONFIG")
        .env_remove("RUST_LOG");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AAP_BRIDGE__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub(crate) async fn run(dir: &Path, args: &[&str]) -> (Output, String, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), bridge(dir).args(args).output())
        .await
        .expect("the command ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Headers as each sender builds them, written out here from the documented formats (not with
/// the code `send` uses), with the shipped development secrets.
fn signed(kind: &str, body: &[u8], delivery: &str) -> Vec<(String, String)> {
    let mac = |key: &str, parts: &[&[u8]]| hmac_sha256(key.as_bytes(), parts);
    let json = ("Content-Type".to_string(), "application/json".to_string());
    let h = |k: &str, v: String| (k.to_string(), v);
    match kind {
        "github" => vec![
            json,
            h("X-GitHub-Event", "issues".into()),
            h("X-GitHub-Delivery", delivery.into()),
            h(
                "X-Hub-Signature-256",
                format!("sha256={}", to_hex(&mac("dev-only-github-key", &[body]))),
            ),
        ],
        "pagerduty" => vec![
            json,
            h(
                "X-PagerDuty-Signature",
                format!("v1={}", to_hex(&mac("dev-only-pagerduty-key", &[body]))),
            ),
        ],
        _ => {
            let ts = chrono::Utc::now().timestamp().to_string();
            let parts: [&[u8]; 5] = [ts.as_bytes(), b".", delivery.as_bytes(), b".", body];
            vec![
                json,
                h("X-ServiceNow-Timestamp", ts.clone()),
                h("X-ServiceNow-Delivery", delivery.into()),
                h(
                    "X-ServiceNow-Signature",
                    to_base64(&mac("dev-only-servicenow-key", &parts)),
                ),
            ]
        }
    }
}

#[sqlx::test]
async fn serve_reads_aap_bridge_yaml_and_send_shows_each_decision(pool: PgPool) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("aap-bridge.yaml")).unwrap();
    let (listen, url) = (
        "listen: \"127.0.0.1:8080\"",
        "postgres://postgres@127.0.0.1:5432/aap_bridge",
    );
    assert!(shipped.contains(listen) && shipped.contains(url));
    let config = shipped
        .replace(listen, &format!("listen: \"127.0.0.1:{port}\""))
        .replace(url, &crate::support::database_url(&pool));
    std::fs::write(dir.path().join("aap-bridge.yaml"), config).unwrap();
    copy_dir(
        &Path::new(ROOT).join("mappings"),
        &dir.path().join("mappings"),
    );
    copy_dir(
        &Path::new(ROOT).join("examples"),
        &dir.path().join("examples"),
    );

    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = bridge(dir.path())
        .arg("serve")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let serve_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    for i in 0.. {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited with {status}:\n{}", serve_log());
        }
        assert!(i < 300, "serve not ready within 30 s:\n{}", serve_log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        serve_log().contains("configuration file: ./aap-bridge.yaml"),
        "serve says which file it read:\n{}",
        serve_log()
    );

    // A signed delivery of each kind, as the sender would post it.
    let bodies = [
        ("github", crate::support::Sender::Github),
        ("pagerduty", crate::support::Sender::PagerDuty),
        ("servicenow", crate::support::Sender::ServiceNow),
    ];
    for (source, sender) in bodies {
        let body = sender.body("quickstart-1");
        let mut req = client
            .post(format!("{base}/hooks/{source}"))
            .body(body.clone());
        for (k, v) in signed(source, &body, "quickstart-1") {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        assert_eq!(status, 202, "{source}: {}", resp.text().await.unwrap());
    }

    // `send` for each example: the answer, then the decision with a dry-run launch.
    for (source, file, rule, var) in [
        (
            "github",
            "examples/github-issue.json",
            "github-disk-cleanup",
            "\"issue\": \"42\"",
        ),
        (
            "pagerduty",
            "examples/pagerduty-incident.json",
            "pagerduty-web-tier",
            "\"incident_id\": \"PDEV001\"",
        ),
        (
            "servicenow",
            "examples/servicenow-incident.json",
            "snow-remediation",
            "\"incident_number\": \"INC0010001\"",
        ),
    ] {
        let (out, stdout, stderr) = run(dir.path(), &["send", source, file]).await;
        assert!(out.status.success(), "{source}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("configuration file: ./aap-bridge.yaml"),
            "{stderr}"
        );
        for expected in [
            "HTTP 202 Accepted",
            ": dispatched (1 rule(s) matched)",
            &format!("matched rules: {rule}"),
            &format!("launch by rule {rule} of "),
            "dry run: no controller is configured",
            var,
        ] {
            assert!(
                stdout.contains(expected),
                "{source}: `{expected}` in\n{stdout}"
            );
        }
    }

    // The same GitHub body again is a duplicate; `send` shows the first event's decision.
    let (out, stdout, _) = run(
        dir.path(),
        &["send", "github", "examples/github-issue.json"],
    )
    .await;
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("HTTP 200 OK"), "{stdout}");
    assert!(stdout.contains("delivered before"), "{stdout}");
    assert!(
        stdout.contains("matched rules: github-disk-cleanup"),
        "{stdout}"
    );

    // All six events stored and decided, each with one dry-run launch.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT e.source, e.state, count(l.id) FILTER (WHERE l.state = 'dry_run')
             FROM events e LEFT JOIN launches l ON l.event_id = e.id
             GROUP BY e.id, e.source, e.state",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if rows.len() == 6
            && rows
                .iter()
                .all(|(_, state, n)| state == "dispatched" && *n == 1)
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // With no file in the directory: built-in defaults, and it says so.
    let empty = tempfile::tempdir().unwrap();
    let health = format!("{base}/healthz");
    let (out, _, stderr) = run(empty.path(), &["health", "--url", &health]).await;
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no configuration file"), "{stderr}");
    child.kill().await.unwrap();
}
