//! Benchmark harness. `cargo run --release --bin bench -- ingest` starts `aap-bridge serve` as a
//! child process against a fresh database and drives signed GitHub deliveries at it.

use aap_bridge::signature::{hmac_sha256, to_hex};
use clap::{Parser, Subcommand};
use sqlx::migrate::MigrateDatabase;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Measure aap-bridge: ingest throughput and latency")]
struct Args {
    /// Postgres server URL (a fresh database is created on it and dropped afterwards).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Durable events/s and p50/p99 latency of POST /hooks/{source}.
    Ingest {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 2)]
        warmup_seconds: u64,
    },
}

const SECRET: &str = "bench-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.what {
        What::Ingest {
            connections,
            seconds,
            warmup_seconds,
        } => ingest(&args.database_url, connections, seconds, warmup_seconds).await,
    }
}

struct Server {
    child: Child,
    base: String,
    db_url: String,
}

impl Server {
    async fn start(server_url: &str) -> anyhow::Result<Self> {
        let name = format!("aap_bridge_bench_{}", std::process::id());
        let db_url = match server_url.rsplit_once('/') {
            Some((root, _)) => format!("{root}/{name}"),
            None => anyhow::bail!("database url needs a path"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = std::env::temp_dir().join(format!("{name}.yaml"));
        std::fs::write(
            &config,
            format!(
                "server:\n  listen: \"127.0.0.1:{port}\"\ndatabase:\n  url: \"{db_url}\"\n\
                 log:\n  level: warn\nsources:\n  gh:\n    kind: github\n    secrets: [{SECRET}]\n"
            ),
        )?;
        let exe = sibling("aap-bridge")?;
        let child = Command::new(exe)
            .args(["--config", config.to_str().unwrap(), "serve"])
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "service did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Server {
            child,
            base,
            db_url,
        })
    }

    /// Peak resident set size of the service, from /proc.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        sqlx::Postgres::drop_database(&self.db_url).await.ok();
        Ok(())
    }
}

fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found: build it first (cargo build --release)",
        path.display()
    );
    Ok(path)
}

fn sample_body() -> Vec<u8> {
    let labels: Vec<_> = (0..5)
        .map(|i| serde_json::json!({"id": i, "name": format!("label-{i}"), "color": "ededed"}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "action": "labeled",
        "label": {"name": "disk_full"},
        "issue": {"number": 42, "title": "Disk full on web01", "state": "open",
                  "html_url": "https://github.com/acme/ops/issues/42", "labels": labels,
                  "body": "The /var partition on web01 is at 99%. ".repeat(10)},
        "repository": {"full_name": "acme/ops", "private": true,
                       "html_url": "https://github.com/acme/ops"},
        "sender": {"login": "octocat", "id": 1}
    }))
    .unwrap()
}

async fn ingest(db: &str, connections: usize, seconds: u64, warmup: u64) -> anyhow::Result<()> {
    let server = Server::start(db).await?;
    let body = bytes::Bytes::from(sample_body());
    let sig = format!(
        "sha256={}",
        to_hex(&hmac_sha256(SECRET.as_bytes(), &[&body]))
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let url = format!("{}/hooks/gh", server.base);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, url, body, sig) = (client.clone(), url.clone(), body.clone(), sig.clone());
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut other) = (0u64, 0u64);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "issues")
                    .header("x-github-delivery", format!("{c}-{n}"))
                    .header("x-hub-signature-256", &sig)
                    .body(body.clone())
                    .send()
                    .await;
                let accepted = matches!(&r, Ok(r) if r.status().as_u16() == 202);
                if measuring.load(Ordering::Relaxed) {
                    lat.push(t.elapsed().as_micros() as u32);
                    if accepted {
                        ok += 1
                    } else {
                        other += 1
                    }
                }
            }
            (lat, ok, other)
        }));
    }
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut ok, mut other) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, o, x) = t.await?;
        lat.extend(l);
        ok += o;
        other += x;
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let pool = sqlx::PgPool::connect(&server.db_url).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    println!("ingest: {connections} connections, {seconds} s measured after {warmup} s warm-up, body {} bytes", body.len());
    println!("  accepted (202, committed): {ok}  other: {other}");
    println!("  throughput: {:.0} events/s", ok as f64 / elapsed);
    println!(
        "  latency: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!("  rows in events (incl. warm-up): {stored}");
    if let Some(kib) = server.peak_rss_kib() {
        println!("  service peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    server.stop().await
}
