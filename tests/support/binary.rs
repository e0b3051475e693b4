//! The real `aap-bridge serve` as a child process on a free port and the test's database, its
//! log read from its piped output (as under systemd: not a terminal).

use sqlx::PgPool;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub struct Served {
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
    /// stdout and stderr as read so far, and the tasks reading them.
    out: [Arc<Mutex<Vec<u8>>>; 2],
    readers: Vec<JoinHandle<()>>,
}

/// Reads a pipe to its end into `buf`, as it comes.
fn drain<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    mut pipe: R,
    buf: Arc<Mutex<Vec<u8>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buf.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    })
}

/// Starts `serve` with a config of `server:` (a free port, no drain), `database:` (the test's)
/// and `extra` (other top-level keys), and waits until `/readyz` answers 200.
pub async fn serve(pool: &PgPool, extra: &str) -> Served {
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
             database: {{url: \"{}\"}}\n{extra}",
            super::database_url(pool)
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
    let mut child = child;
    let out: [Arc<Mutex<Vec<u8>>>; 2] = [Arc::default(), Arc::default()];
    let readers = vec![
        drain(child.stdout.take().unwrap(), out[0].clone()),
        drain(child.stderr.take().unwrap(), out[1].clone()),
    ];
    Served {
        child,
        base,
        _dir: dir,
        out,
        readers,
    }
}

impl Served {
    /// Its whole output so far (stdout, then stderr).
    pub fn logs(&self) -> String {
        let part =
            |b: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&b.lock().unwrap()).into_owned();
        format!("{}{}", part(&self.out[0]), part(&self.out[1]))
    }

    /// Waits until its output holds `needle` (bounded), and returns the output.
    pub async fn wait_for_log(&self, needle: &str, secs: u64) -> String {
        super::pipeline::wait_for(needle, secs, || async {
            let logs = self.logs();
            logs.contains(needle).then_some(logs)
        })
        .await
    }

    /// SIGTERM, then the process's exit and its whole output (stdout and stderr).
    pub async fn stop(mut self) -> (Output, String) {
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("stops on SIGTERM")
            .unwrap();
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        let logs = self.logs();
        let take = |b: &Arc<Mutex<Vec<u8>>>| b.lock().unwrap().clone();
        let out = Output {
            status,
            stdout: take(&self.out[0]),
            stderr: take(&self.out[1]),
        };
        (out, logs)
    }
}
