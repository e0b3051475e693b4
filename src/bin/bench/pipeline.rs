//! Event -> launch latency against an instant controller, and what one tracker round costs.

use crate::{fake, quantile_ms, rules_file, sample_body, signature, Server};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RULES: &str = "rules:\n  - name: bench\n    source: gh\n    category: disk_full\n    launch: 15\n    reply: none\n";

pub async fn run(db: &str, events: usize, rate: u64) -> anyhow::Result<()> {
    let (controller, rec) = fake::start().await?;
    let rules = rules_file("pipeline", RULES)?;
    let extra = format!(
        "mappings: {{path: \"{}\"}}\nworkers: {{tracker_interval_ms: 1000}}\n\
         controller: {{url: \"{controller}\", allow_insecure_http: true, flavour: awx, auth: {{mode: basic, username: bench, password: bench}}}}\n",
        rules.display()
    );
    let server = Server::start(db, &extra).await?;
    let client = reqwest::Client::new();
    let url = Arc::new(format!("{}/hooks/gh", server.base));
    let gap = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let mut sends = tokio::task::JoinSet::new();
    let started = Instant::now();
    for n in 0..events {
        tokio::time::sleep_until((started + gap * n as u32).into()).await;
        let (client, url) = (client.clone(), url.clone());
        let body = sample_body(&format!("pipe-{n}"));
        let sig = signature(&body);
        sends.spawn(async move {
            let sent = Instant::now();
            let r = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("x-github-event", "issues")
                .header("x-github-delivery", format!("pipe-{n}"))
                .header("x-hub-signature-256", sig)
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(
                r.status().as_u16() == 202,
                "delivery answered {}",
                r.status()
            );
            let v: serde_json::Value = r.json().await?;
            Ok((v["event_id"].as_str().unwrap_or_default().to_string(), sent))
        });
    }
    let mut sent_at = Vec::with_capacity(events);
    while let Some(r) = sends.join_next().await {
        sent_at.push(r??);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while rec.launches.lock().unwrap().len() < events {
        anyhow::ensure!(
            Instant::now() < deadline,
            "not every event launched within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let launched = rec.launches.lock().unwrap().clone();
    let mut lat: Vec<u64> = sent_at
        .iter()
        .filter_map(|(id, sent)| {
            launched
                .get(id)
                .map(|t| t.duration_since(*sent).as_micros() as u64)
        })
        .collect();
    lat.sort_unstable();
    println!("pipeline: {events} events at {rate}/s, instant controller, one rule, reply none");
    println!(
        "  event -> launch POST: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} launches)",
        quantile_ms(&lat, 0.5),
        quantile_ms(&lat, 0.99),
        quantile_ms(&lat, 1.0),
        lat.len()
    );

    // Every job stays running, so each tracker round polls all of them.
    rec.polls.lock().unwrap().clear();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let polls = rec.polls.lock().unwrap().clone();
    let rounds = polls
        .windows(2)
        .filter(|w| w[1].duration_since(w[0]) > Duration::from_millis(300))
        .count()
        + usize::from(!polls.is_empty());
    println!(
        "  tracker: {} running jobs, {} unified_jobs requests in {} rounds = {:.1} per round",
        events,
        polls.len(),
        rounds,
        polls.len() as f64 / rounds.max(1) as f64
    );
    if let Some(kib) = server.peak_rss_kib() {
        println!("  service peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    server.stop().await
}
