//! Benchmark harness. Each subcommand starts `aap-bridge serve` as a child process against a
//! fresh database (so the service's CPU and RSS are its own) and measures it from outside.
//!
//! - `ingest`: signed GitHub deliveries at 64 connections: committed events/s, p50/p99; then
//!   the same load against an HTTP + HMAC-only server and the storage path alone (`ceiling.rs`).
//! - `pipeline`: event -> launch latency against an instant fake controller, and the controller
//!   requests one tracker round costs for 1,000 running jobs.
//! - `stall`: uploads that stop just short of the end of a near-limit body: held or shed, and
//!   the service's memory.
//! - `all`: `ingest` and `pipeline`, with their defaults. Each prints the service's peak RSS.
//! - `explain`: the plans of the hot queries on a fresh database (`explain.rs`).
//!
//! The service runs at its default log level (`info`), its output going to a file.

mod ceiling;
mod client;
mod copy;
mod explain;
mod fake;
mod ingest;
mod peers;
mod pipeline;
mod stall;

use aap_bridge::signature::{hmac_sha256, to_hex};
use clap::{Parser, Subcommand};
use sqlx::migrate::MigrateDatabase;
use std::path::PathBuf;
use std::process::{Child, Command};
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
    /// Pad every delivery body to about this many bytes (the issue body grows); 0: the sample
    /// as it is (945 bytes).
    #[arg(long, global = true, default_value_t = 0)]
    body_bytes: usize,
    #[command(subcommand)]
    what: What,
}

/// `--body-bytes`, for `sample_body`.
static BODY_BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

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
        /// Only the full service: skip the HTTP + HMAC and storage ceilings.
        #[arg(long)]
        no_ceilings: bool,
        /// Every event matches a rule and plans a (dry-run) launch, instead of matching none.
        #[arg(long)]
        matching: bool,
        /// Also this many connections sending refused requests (bad signatures) throughout:
        /// what a flood costs accepted deliveries, with the deliveries log on.
        #[arg(long, default_value_t = 0)]
        flood: usize,
    },
    /// The plans (EXPLAIN) of the hot queries, on a fresh database with representative rows.
    Explain,
    /// The events INSERT through UNNEST against COPY into a staging table + INSERT … SELECT.
    Copy,
    /// The HTTP + HMAC ceiling server `ingest` starts as a child process.
    #[command(hide = true)]
    CeilingServer {
        #[arg(long)]
        port: u16,
    },
    /// The same load against adnanh/webhook (Debian's `webhook`), when installed, then the bridge.
    Peers {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Everything, with defaults: `ingest` then `pipeline`.
    All,
    /// Event -> launch latency (p50/p99) with an instant controller; tracker cost for 1,000 jobs.
    Pipeline {
        /// Events to send (each launches one job).
        #[arg(long, default_value_t = 1000)]
        events: usize,
        /// Deliveries per second.
        #[arg(long, default_value_t = 200)]
        rate: u64,
    },
    /// Peak RSS under N uploads that stall 100 bytes before the end of a near-5 MiB body.
    Stall {
        #[arg(long, default_value_t = 100)]
        uploads: usize,
        /// Seconds the uploads are held before RSS is read.
        #[arg(long, default_value_t = 10)]
        hold_seconds: u64,
        /// The service binary (default: `aap-bridge` beside this one), to compare builds.
        #[arg(long)]
        exe: Option<PathBuf>,
    },
}

const SECRET: &str = "bench-secret";

// The same allocator as the service, so the HTTP + HMAC ceiling (`ceiling-server`) compares.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    BODY_BYTES.set(args.body_bytes).ok();
    match args.what {
        What::Ingest {
            connections,
            seconds,
            warmup_seconds,
            no_ceilings,
            matching,
            flood,
        } => {
            let load = ingest::Load {
                connections,
                seconds,
                warmup: warmup_seconds,
                ceilings: !no_ceilings,
                matching,
                flood,
            };
            ingest::run(&args.database_url, &load).await
        }
        What::Explain => explain::run(&args.database_url).await,
        What::Copy => copy::run(&args.database_url).await,
        What::CeilingServer { port } => ceiling::serve(port).await,
        What::Pipeline { events, rate } => pipeline::run(&args.database_url, events, rate).await,
        What::Stall {
            uploads,
            hold_seconds,
            exe,
        } => stall::run(&args.database_url, uploads, hold_seconds, exe).await,
        What::Peers {
            connections,
            seconds,
        } => peers::run(&args.database_url, connections, seconds).await,
        What::All => {
            ingest::run(&args.database_url, &ingest::Load::default()).await?;
            let matching = ingest::Load {
                ceilings: false,
                matching: true,
                ..ingest::Load::default()
            };
            ingest::run(&args.database_url, &matching).await?;
            pipeline::run(&args.database_url, 1000, 200).await
        }
    }
}

struct Server {
    child: Child,
    base: String,
    db_url: String,
    log: PathBuf,
}

impl Server {
    /// `extra` is appended to the service's config (controller, mappings, sources).
    async fn start(server_url: &str, extra: &str) -> anyhow::Result<Self> {
        // AAP_BRIDGE_BENCH_EXE: another service binary, to compare builds with one harness.
        let exe = std::env::var_os("AAP_BRIDGE_BENCH_EXE").map(PathBuf::from);
        Self::start_exe(exe, server_url, extra).await
    }

    /// Like `start`, with another service binary.
    async fn start_exe(
        exe: Option<PathBuf>,
        server_url: &str,
        extra: &str,
    ) -> anyhow::Result<Self> {
        // One database per server, also when `all` starts several.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("aap_bridge_bench_{}_{n}", std::process::id());
        let db_url = database_url(server_url, &n.to_string())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = std::env::temp_dir().join(format!("{name}.yaml"));
        std::fs::write(
            &config,
            format!(
                "dev_mode: true\nserver:\n  listen: \"127.0.0.1:{port}\"\n  drain_secs: 0\ndatabase:\n  url: \"{db_url}\"\n\
                 sources:\n  gh:\n    kind: github\n    secrets: [{SECRET}]\n{extra}"
            ),
        )?;
        let exe = match exe {
            Some(exe) => exe,
            None => sibling("aap-bridge")?,
        };
        // The default log level (info, as in production), written to a file as a log collector
        // would read it, so the harness's own output stays readable.
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = Command::new(exe)
            .args(["--config", config.to_str().unwrap(), "serve"])
            .stdout(out.try_clone()?)
            .stderr(out)
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
            log,
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

    /// Lines the service has logged so far.
    fn log_lines(&self) -> Option<usize> {
        Some(std::fs::read_to_string(&self.log).ok()?.lines().count())
    }

    async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::remove_file(&self.log).ok();
        sqlx::Postgres::force_drop_database(&self.db_url).await.ok();
        Ok(())
    }
}

/// User + system CPU seconds of a process, from /proc (clock ticks at 100 Hz); with
/// `children`, also of the children it has reaped (Postgres backends that ended).
fn proc_stat_secs(pid: u32, children: bool) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    let ticks = f.first()? + f.get(1)? + if children { f.get(2)? + f.get(3)? } else { 0 };
    Some(ticks as f64 / 100.0)
}

fn proc_cpu_secs(pid: u32) -> Option<f64> {
    proc_stat_secs(pid, false)
}

/// CPU seconds of every local Postgres process, plus the backends the postmaster has reaped.
pub fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            continue;
        }
        let ppid_is_init = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.split_whitespace().nth(1) == Some("1"))
            })
            .unwrap_or(false);
        total += proc_stat_secs(pid, ppid_is_init).unwrap_or(0.0);
    }
    total
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

/// A typical `issues.labeled` body. `delivery` makes each body unique: the bridge dedupes GitHub
/// deliveries on the SHA-256 of the (signed) body, not on the unsigned delivery header.
pub fn sample_body(delivery: &str) -> Vec<u8> {
    let labels: Vec<_> = (0..5)
        .map(|i| serde_json::json!({"id": i, "name": format!("label-{i}"), "color": "ededed"}))
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "action": "labeled",
        "label": {"name": "disk_full"},
        "issue": {"number": 42, "title": "Disk full on web01", "state": "open",
                  "html_url": "https://github.com/acme/ops/issues/42", "labels": labels,
                  "body": "The /var partition on web01 is at 99%. ".repeat(10)},
        "repository": {"full_name": "acme/ops", "private": true,
                       "html_url": "https://github.com/acme/ops"},
        "sender": {"login": "octocat", "id": 1},
        "bench_delivery": delivery
    }))
    .unwrap();
    padded(body)
}

/// Grows the issue body (inside a JSON string, so the document stays valid) to `--body-bytes`.
fn padded(body: Vec<u8>) -> Vec<u8> {
    let want = BODY_BYTES.get().copied().unwrap_or(0);
    if want <= body.len() {
        return body;
    }
    let text = String::from_utf8(body).expect("JSON is UTF-8");
    let marker = "The /var partition";
    let pad = "x".repeat(want - text.len());
    text.replacen(marker, &format!("{pad}{marker}"), 1)
        .into_bytes()
}

/// The URL of this run's database `aap_bridge_bench_{pid}_{suffix}` on the server at `server_url`.
pub fn database_url(server_url: &str, suffix: &str) -> anyhow::Result<String> {
    let name = format!("aap_bridge_bench_{}_{suffix}", std::process::id());
    match server_url.rsplit_once('/') {
        Some((root, _)) => Ok(format!("{root}/{name}")),
        None => anyhow::bail!("database url needs a path"),
    }
}

/// Writes a mappings file for the service and returns its path.
pub fn rules_file(name: &str, text: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!(
        "aap_bridge_bench_{}_{name}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, text)?;
    Ok(path)
}

pub fn signature(body: &[u8]) -> String {
    format!(
        "sha256={}",
        to_hex(&hmac_sha256(SECRET.as_bytes(), &[body]))
    )
}

/// The `p` quantile of sorted microseconds, in milliseconds.
pub fn quantile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i] as f64 / 1000.0
}
