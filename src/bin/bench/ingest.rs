//! Ingest: committed events/s and latency at N keep-alive connections.

use crate::{quantile_ms, rules_file, sample_body, signature, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(db: &str, connections: usize, seconds: u64, warmup: u64) -> anyhow::Result<()> {
    // No rules: the dispatcher still runs (as in production) and records events as unmapped.
    let rules = rules_file("ingest", "rules: []\n")?;
    let server = Server::start(
        db,
        &format!("mappings: {{path: \"{}\"}}\n", rules.display()),
    )
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let url = format!("{}/hooks/gh", server.base);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (client, url) = (client.clone(), url.clone());
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut other) = (0u64, 0u64);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let delivery = format!("{c}-{n}");
                let body = sample_body(&delivery);
                let sig = signature(&body);
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-event", "issues")
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await;
                let accepted = matches!(&r, Ok(r) if r.status().as_u16() == 202);
                if measuring.load(Ordering::Relaxed) {
                    lat.push(t.elapsed().as_micros() as u64);
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
    let cpu_before = (server.cpu_secs(), crate::postgres_cpu_secs());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = (server.cpu_secs(), crate::postgres_cpu_secs());
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut ok, mut other) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, o, x) = t.await?;
        lat.extend(l);
        ok += o;
        other += x;
    }
    lat.sort_unstable();
    let pct = |p: f64| quantile_ms(&lat, p);
    let pool = sqlx::PgPool::connect(&server.db_url).await?;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    println!("ingest: {connections} connections, {seconds} s measured after {warmup} s warm-up, body {} bytes", sample_body("0-1").len());
    println!("  accepted (202, committed): {ok}  other: {other}");
    println!("  throughput: {:.0} events/s", ok as f64 / elapsed);
    println!(
        "  latency: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
    println!("  rows in events (incl. warm-up): {stored}");
    // CPU per event, which is steadier than events/s on a shared machine.
    if let (Some(a), Some(b)) = (cpu_before.0, cpu_after.0) {
        let per = |secs: f64| secs * 1e6 / ok.max(1) as f64;
        println!(
            "  CPU per event: service {:.0} us, Postgres {:.0} us",
            per(b - a),
            per(cpu_after.1 - cpu_before.1)
        );
    }
    if let Some(kib) = server.peak_rss_kib() {
        println!("  service peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    server.stop().await
}
