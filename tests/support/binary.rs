//! The real `aap-bridge serve` as a child process on a free port and the test's database, its
//! log read from its piped output (as under systemd: not a terminal).

use sqlx::PgPool;
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Served {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

/// Starts `serve` with a config of `server:` (a free port, no drain), `database:` (the test's)
/// and `extra` (other top-level keys), and waits until `/readyz` answers 200.
pub async fn serve(pool: &PgPool, extra: &str) -> Served {
    let db = pool.connect_options();
    let db = db.get_database().unwrap_or("postgres").to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bridge.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{listen: \"127.0.0.1:{port}\", drain_secs: 0, shutdown_grace_secs: 2}}\n\
             database: {{url: \"postgres://postgres@127.0.0.1:5432/{db}\"}}\n{extra}"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_aap-bridge"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .env_remove("AAP_BRIDGE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    super::pipeline::wait_for("the service", 20, || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    Served {
        child,
        base,
        _dir: dir,
    }
}

impl Served {
    /// SIGTERM, then the process's exit and its whole output (stdout and stderr).
    pub async fn stop(self) -> (Output, String) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let out = tokio::time::timeout(Duration::from_secs(15), self.child.wait_with_output())
            .await
            .expect("stops on SIGTERM")
            .unwrap();
        let logs = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, logs)
    }
}
