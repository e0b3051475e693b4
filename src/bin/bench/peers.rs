//! The bridge beside a peer under the same load: adnanh/webhook (Debian's `webhook`), checking
//! the same HMAC-SHA256 signature on the same unique bodies, then the full bridge. webhook keeps
//! nothing (it runs a command per request and forgets); every 202 of the bridge is committed.

use crate::ingest::drive;
use crate::{rules_file, Server, SECRET};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::Command;

const WEBHOOK: &str = "/usr/bin/webhook";

pub async fn run(db: &str, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let warmup = 2;
    let peer = if std::path::Path::new(WEBHOOK).exists() {
        Some(webhook(connections, seconds, warmup).await?)
    } else {
        println!("adnanh/webhook: not installed ({WEBHOOK}; apt-get install webhook): skipped");
        None
    };
    let rules = rules_file("peers", "rules: []\n")?;
    let server = Server::start(
        db,
        &format!("mappings: {{path: \"{}\"}}\n", rules.display()),
    )
    .await?;
    let bridge = drive(
        &server.base,
        server.child.id(),
        connections,
        seconds,
        warmup,
    )
    .await?;
    let rss = server.peak_rss_kib();
    server.stop().await?;
    println!("aap-bridge (full service, log level info, every 202 committed):");
    bridge.print();
    if let Some(kib) = rss {
        println!("  service peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    if let Some(peer) = peer {
        println!(
            "aap-bridge / webhook: {:.2}x the requests/s",
            bridge.rate() / peer.rate().max(1.0)
        );
    }
    Ok(())
}

async fn webhook(
    connections: usize,
    seconds: u64,
    warmup: u64,
) -> anyhow::Result<crate::ingest::Seen> {
    let dir = std::env::temp_dir().join(format!("bench-webhook-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let hooks = dir.join("hooks.json");
    std::fs::write(
        &hooks,
        serde_json::to_vec_pretty(&serde_json::json!([{
            "id": "gh",
            "execute-command": "/bin/true",
            "response-message": "ok",
            "trigger-rule": {"match": {
                "type": "payload-hmac-sha256",
                "secret": SECRET,
                "parameter": {"source": "header", "name": "X-Hub-Signature-256"}
            }}
        }]))?,
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new(WEBHOOK)
        .args(["-hooks", hooks.to_str().unwrap(), "-ip", "127.0.0.1"])
        .args(["-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "webhook did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap_or_default();
    let seen = drive(&base, pid, connections, seconds, warmup).await?;
    child.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "adnanh/webhook (payload-hmac-sha256 rule, runs /bin/true per request, keeps nothing):"
    );
    seen.print();
    Ok(seen)
}
