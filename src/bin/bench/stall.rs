//! Stall: N uploads each declare a body just under the 5 MiB limit, send all of it but the last
//! 100 bytes, and stop. Reports how many were held or shed, whether a normal delivery is still
//! accepted meanwhile, and the service's peak RSS.

use crate::{rules_file, sample_body, signature, Server};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

const LIMIT: usize = 5 * 1024 * 1024;

pub async fn run(db: &str, uploads: usize, hold: u64, exe: Option<PathBuf>) -> anyhow::Result<()> {
    let rules = rules_file("stall", "rules: []\n")?;
    let mappings = format!("mappings: {{path: \"{}\"}}\n", rules.display());
    let server = Server::start_exe(exe, db, &mappings).await?;
    let addr = server.base.trim_start_matches("http://").to_string();
    let len = LIMIT - 1024;
    let (release, released) = watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..uploads {
        let (addr, mut released) = (addr.clone(), released.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(&addr).await else {
                return "connect failed".to_string();
            };
            let head = format!(
                "POST /hooks/gh HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n\
                 X-GitHub-Event: issues\r\nX-GitHub-Delivery: stall-{i}\r\n\
                 X-Hub-Signature-256: sha256=00\r\nContent-Length: {len}\r\n\r\n"
            );
            let body = vec![b' '; len - 100];
            let wrote = async {
                s.write_all(head.as_bytes()).await?;
                s.write_all(&body).await
            }
            .await;
            // Wait for an answer (shed) or the end of the hold (still held).
            let mut buf = vec![0u8; 4096];
            let answer = tokio::select! {
                n = s.read(&mut buf) => match n {
                    Ok(n) if n > 0 => String::from_utf8_lossy(&buf[..n]).chars().take(12).collect(),
                    _ => "closed".to_string(),
                },
                _ = released.wait_for(|r| *r) => match wrote {
                    Ok(()) => "held".to_string(),
                    Err(_) => "write failed".to_string(),
                },
            };
            drop(s);
            answer
        }));
    }
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let delivery = deliver(&server.base).await;
    let rss = server.peak_rss_kib();
    let _ = release.send(true);
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        *outcomes.entry(t.await?).or_default() += 1;
    }
    println!("stall: {uploads} uploads of {len} bytes, all but 100 sent, held {hold} s");
    for (what, n) in &outcomes {
        println!("  {what}: {n}");
    }
    println!("  a normal delivery meanwhile: {delivery}");
    if let Some(kib) = rss {
        println!("  service peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    server.stop().await
}

async fn deliver(base: &str) -> String {
    let body = sample_body("stall-check");
    let r = reqwest::Client::new()
        .post(format!("{base}/hooks/gh"))
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("x-github-event", "issues")
        .header("x-github-delivery", "stall-check")
        .header("x-hub-signature-256", signature(&body))
        .body(body)
        .send()
        .await;
    match r {
        Ok(r) => r.status().to_string(),
        Err(e) => format!("failed: {e}"),
    }
}
