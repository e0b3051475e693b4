//! No PostgreSQL answering: `serve` in dev_mode starts a private one from the installed binaries,
//! keeps the data across restarts and leaves no server running after SIGTERM; outside dev_mode
//! the same address is an error naming `database.url`.

use crate::quickstart::{bridge, copy_dir, free_port, run, ROOT};
use std::path::Path;
use std::time::Duration;

/// The shipped configuration in `dir`, on `port`, with a database address nothing answers.
fn shipped_in(dir: &Path, port: u16, dev_mode: bool) {
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("aap-bridge.yaml")).unwrap();
    let closed = free_port();
    let config = shipped
        .replace(
            "listen: \"127.0.0.1:8080\"",
            &format!("listen: \"127.0.0.1:{port}\""),
        )
        .replace(
            "postgres://postgres@127.0.0.1:5432/aap_bridge",
            &format!("postgres://postgres@127.0.0.1:{closed}/aap_bridge"),
        )
        .replace("dev_mode: true", &format!("dev_mode: {dev_mode}"));
    std::fs::write(dir.join("aap-bridge.yaml"), config).unwrap();
    copy_dir(&Path::new(ROOT).join("mappings"), &dir.join("mappings"));
    copy_dir(&Path::new(ROOT).join("examples"), &dir.join("examples"));
}

/// `serve` in `dir` until `/readyz` answers; its log file.
async fn serve(
    dir: &Path,
    base: &str,
    log_name: &str,
) -> (tokio::process::Child, std::path::PathBuf) {
    let log_path = dir.join(log_name);
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = bridge(dir)
        .arg("serve")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    for i in 0.. {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        let text = || std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited with {status}:\n{}", text());
        }
        assert!(i < 900, "serve not ready within 90 s:\n{}", text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, log_path)
}

/// SIGTERM, then the exit within 30 s.
async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("serve stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn dev_mode_starts_a_private_postgres_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    // As root the server runs as `postgres`, which must be able to reach the folder.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    shipped_in(dir.path(), port, true);

    let (mut child, log) = serve(dir.path(), &base, "serve-1.log").await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("dev_mode started a private PostgreSQL") && text.contains("database.url"),
        "{text}"
    );
    let (out, stdout, stderr) = run(
        dir.path(),
        &["send", "github", "examples/github-issue.json"],
    )
    .await;
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("HTTP 202 Accepted"), "{stdout}");
    terminate(&mut child).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("private PostgreSQL stopped"), "{text}");
    let (_, status, _) = run(dir.path(), &["db", "status"]).await;
    assert!(
        status.contains(": stopped"),
        "no server left running: {status}"
    );

    // A second start reuses the data: the event is still there.
    let (mut child, _) = serve(dir.path(), &base, "serve-2.log").await;
    let events: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/events"))
        .bearer_auth("dev-only-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sources: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert_eq!(sources, ["github"], "{events}");
    // The other commands find the running private server too.
    let (out, listed, said) = run(dir.path(), &["events"]).await;
    assert!(out.status.success(), "{listed}\n{said}");
    assert!(listed.contains("github"), "{listed}");
    assert!(said.contains("using the private PostgreSQL"), "{said}");
    let (_, status, _) = run(dir.path(), &["db", "status"]).await;
    assert!(status.contains(": running"), "{status}");
    terminate(&mut child).await;
    let (_, status, _) = run(dir.path(), &["db", "status"]).await;
    assert!(status.contains(": stopped"), "{status}");
}

#[tokio::test]
async fn outside_dev_mode_an_unreachable_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "database: {{url: \"postgres://postgres@127.0.0.1:{}/x\"}}\n",
        free_port()
    );
    std::fs::write(dir.path().join("aap-bridge.yaml"), config).unwrap();
    let (out, _, stderr) = run(dir.path(), &["serve"]).await;
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach PostgreSQL") && stderr.contains("database.url"),
        "{stderr}"
    );
    assert!(
        !dir.path().join(".aap-bridge").exists(),
        "no private server was tried"
    );
}
