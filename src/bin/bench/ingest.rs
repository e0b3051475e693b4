//! Ingest: committed events/s and latency at N keep-alive connections, then the same load
//! against the HTTP + HMAC ceiling and the storage ceiling (`ceiling.rs`), and the full figure
//! as a fraction of each.

use crate::ceiling::{self, CeilingServer};
use crate::{proc_cpu_secs, quantile_ms, rules_file, sample_body, signature, Server};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One `bench ingest` run.
pub struct Load {
    pub connections: usize,
    pub seconds: u64,
    pub warmup: u64,
    /// Also measure the HTTP + HMAC and storage ceilings.
    pub ceilings: bool,
    /// Every event matches a rule and plans a (dry-run) launch.
    pub matching: bool,
    /// Connections sending refused requests (bad signatures) alongside.
    pub flood: usize,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            connections: 64,
            seconds: 10,
            warmup: 2,
            ceilings: true,
            matching: false,
            flood: 0,
        }
    }
}

/// A rule every bench delivery matches: one dry-run launch per event, rendered from the ticket.
const MATCH_ALL: &str = r#"rules:
  - name: bench-all
    source: gh
    launch: 7
    extra_vars:
      repo: "{{ ticket.repo }}"
      issue: "{{ ticket.number }}"
"#;

/// What one load run saw in its measured window.
pub(crate) struct Seen {
    ok: u64,
    other: u64,
    lat: Vec<u64>,
    elapsed: f64,
    /// CPU seconds of the server process and of Postgres in the window.
    cpu: (Option<f64>, f64),
}

impl Seen {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed
    }

    pub(crate) fn print(&self) {
        let pct = |p: f64| quantile_ms(&self.lat, p);
        println!("  accepted (2xx): {}  other: {}", self.ok, self.other);
        println!("  throughput: {:.0} events/s", self.rate());
        println!(
            "  latency: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
        // CPU per event, which is steadier than events/s on a shared machine.
        if let Some(server) = self.cpu.0 {
            let per = |secs: f64| secs * 1e6 / self.ok.max(1) as f64;
            println!(
                "  CPU per event: server {:.0} us, Postgres {:.0} us",
                per(server),
                per(self.cpu.1)
            );
        }
    }
}

pub async fn run(db: &str, load: &Load) -> anyhow::Result<()> {
    let (connections, seconds, warmup) = (load.connections, load.seconds, load.warmup);
    // No rules: every event is decided (unmapped) and stored in the same write. With
    // `matching`, every event plans a launch (dry-run: no controller).
    let rules = match load.matching {
        true => rules_file("ingest-matching", MATCH_ALL)?,
        false => rules_file("ingest", "rules: []\n")?,
    };
    let server = Server::start(
        db,
        &format!("mappings: {{path: \"{}\"}}\n", rules.display()),
    )
    .await?;
    let flood = Flood::start(&server.base, load.flood);
    let full = drive(
        &server.base,
        server.child.id(),
        connections,
        seconds,
        warmup,
    )
    .await?;
    let refused = flood.stop().await;
    let pool = sqlx::PgPool::connect(&server.db_url).await?;
    let (stored, pending, launches): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'pending'),
                (SELECT count(*) FROM launches) FROM events",
    )
    .fetch_one(&pool)
    .await?;
    let (logged, max_id): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), max(id) FROM deliveries")
            .fetch_one(&pool)
            .await?;
    println!(
        "  deliveries log: {logged} rows kept of {} written",
        max_id.unwrap_or(0)
    );
    pool.close().await;
    println!("ingest: {connections} connections, {seconds} s measured after {warmup} s warm-up, body {} bytes", sample_body(&uuid::Uuid::nil().to_string()).len());
    // RUST_LOG, when set, wins over the config's level in the service too.
    let level = std::env::var("RUST_LOG")
        .map(|l| format!("RUST_LOG={l}"))
        .unwrap_or_else(|_| "info, the default".into());
    let rules = match load.matching {
        true => "every event matches one rule and plans a dry-run launch",
        false => "no event matches a rule",
    };
    println!("full service (log level {level}; log to a file; {rules}):");
    full.print();
    if load.flood > 0 {
        let secs = (seconds + warmup) as f64;
        println!(
            "  flood alongside: {} connections, {refused} refused requests ({:.0}/s over the run)",
            load.flood,
            refused as f64 / secs
        );
    }
    println!(
        "  rows in events (incl. warm-up): {stored}, launches: {launches}, left pending for the dispatcher: {pending}"
    );
    if let Some(kib) = server.peak_rss_kib() {
        println!("  service peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
    let log_lines = server.log_lines();
    server.stop().await?;
    if let Some(lines) = log_lines {
        println!("  service log: {lines} lines");
    }
    if !load.ceilings {
        return Ok(());
    }

    let http = CeilingServer::start().await?;
    let ceiling_http = drive(&http.base, http.pid(), connections, seconds, warmup).await?;
    http.stop();
    println!(
        "HTTP + HMAC ceiling (same load; verify and answer 202, no parsing, no storage, no log):"
    );
    ceiling_http.print();

    let storage = ceiling::storage(db, connections, seconds, warmup).await?;
    let storage_rate = storage.stored as f64 / storage.elapsed;
    println!(
        "storage ceiling ({connections} tasks -> the group-commit writer -> insert_batch; no HTTP, no dispatcher):"
    );
    println!(
        "  committed: {}  failed: {}",
        storage.stored, storage.failed
    );
    println!("  throughput: {storage_rate:.0} events/s");
    println!(
        "  CPU per event: Postgres {:.0} us",
        storage.postgres_cpu * 1e6 / storage.stored.max(1) as f64
    );
    println!(
        "full: {:.0}/s = {:.0} % of the HTTP + HMAC ceiling, {:.0} % of the storage ceiling",
        full.rate(),
        100.0 * full.rate() / ceiling_http.rate().max(1.0),
        100.0 * full.rate() / storage_rate.max(1.0)
    );
    Ok(())
}

/// Connections that send deliveries with a wrong signature as fast as they are answered.
struct Flood {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Flood {
    fn start(base: &str, connections: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::new();
        let url = format!("{base}/hooks/gh");
        let tasks = (0..connections)
            .map(|c| {
                let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let body = sample_body(&format!("flood-{c}-{n}"));
                        let _ = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-github-event", "issues")
                            .header("x-github-delivery", format!("flood-{c}-{n}"))
                            .header("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))
                            .body(body)
                            .send()
                            .await;
                    }
                    n
                })
            })
            .collect();
        Flood { stop, tasks }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let mut n = 0;
        for t in self.tasks {
            n += t.await.unwrap_or(0);
        }
        n
    }
}

/// Signed GitHub deliveries to `{base}/hooks/gh` from `connections` keep-alive connections;
/// `pid` is the server whose CPU is counted.
pub(crate) async fn drive(
    base: &str,
    pid: u32,
    connections: usize,
    seconds: u64,
    warmup: u64,
) -> anyhow::Result<Seen> {
    let template = crate::client::Template::new();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut conn = crate::client::Conn::new(base, "/hooks/gh");
        let template = template.clone();
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut other) = (0u64, 0u64);
            let mut body = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // A GUID, as GitHub sends (PagerDuty's are alike): random ids are what the
                // search indexes must take.
                let delivery = uuid::Uuid::new_v4().to_string();
                template.body(&delivery, &mut body);
                let sig = signature(&body);
                let t = Instant::now();
                let r = conn.post(&delivery, &sig, &body).await;
                // 202 from the bridge; a peer that answers 200 counts too.
                let accepted = matches!(r, Ok(200 | 202));
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
    let cpu_before = (proc_cpu_secs(pid), crate::postgres_cpu_secs());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = (proc_cpu_secs(pid), crate::postgres_cpu_secs());
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut ok, mut other) = (Vec::new(), 0, 0);
    for t in tasks {
        let (l, o, x) = t.await?;
        lat.extend(l);
        ok += o;
        other += x;
    }
    lat.sort_unstable();
    let server_cpu = match (cpu_before.0, cpu_after.0) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    Ok(Seen {
        ok,
        other,
        lat,
        elapsed,
        cpu: (server_cpu, cpu_after.1 - cpu_before.1),
    })
}
