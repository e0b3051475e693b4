//! The two ceilings `bench ingest` compares the full service with:
//!
//! - HTTP + HMAC: `bench ceiling-server`, a child process (so its CPU is its own, as the
//!   service's is) that serves POST /hooks/{source}, checks the same HMAC-SHA256 signature over
//!   the raw body with the same secret and answers 202 with a JSON body. No parsing, no storage,
//!   no logging.
//! - Storage: the service's own group-commit writer (`aap_bridge::ingest::Inbox`, which calls
//!   `store::events::insert_batch`) with the default ingest settings, fed by N concurrent tasks
//!   with the normalized event of the same body (a unique dedupe key each), into a fresh
//!   database. No HTTP, no dispatcher.

use crate::{sample_body, signature, SECRET};
use aap_bridge::config::{IngestSettings, SourceSettings};
use aap_bridge::decide::Decider;
use aap_bridge::ingest::{Inbox, InboxWiring};
use aap_bridge::mapping::{Mappings, SharedMappings};
use aap_bridge::sources::Source;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::migrate::MigrateDatabase;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The sample delivery, verified and normalized as the service does it: what the storage
/// benchmarks store copies of.
pub fn sample_event() -> anyhow::Result<aap_bridge::event::Event> {
    let settings: SourceSettings =
        serde_json::from_value(json!({"kind": "github", "secrets": [SECRET]}))?;
    let source = Source::new("gh", &settings, 5 << 20);
    let body = sample_body("0-0");
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_static("issues"));
    headers.insert("x-github-delivery", HeaderValue::from_static("0-0"));
    headers.insert("x-hub-signature-256", signature(&body).parse()?);
    source
        .accept(&headers, &body)
        .map_err(|e| anyhow::anyhow!("sample body refused: {}", e.message))
}

fn body_hash(bytes: &[u8]) -> String {
    use sha2::Digest;
    aap_bridge::signature::to_hex(&sha2::Sha256::digest(bytes))
}

/// The hidden `ceiling-server` subcommand.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    let secrets = Arc::new(vec![SecretString::from(SECRET.to_string())]);
    let app = Router::new()
        .route("/hooks/{source}", post(hook))
        .route("/readyz", get(|| async { "ok" }))
        .with_state(secrets);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn hook(
    State(secrets): State<Arc<Vec<SecretString>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let sig = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok());
    let authentic =
        sig.is_some_and(|sig| aap_bridge::signature::matches_any(&secrets, &[&body], &[sig]));
    if authentic {
        (
            StatusCode::ACCEPTED,
            Json(json!({"status": "accepted", "event_id": uuid::Uuid::now_v7()})),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "signature does not match"})),
        )
    }
}

/// The ceiling server as a child process of this harness.
pub struct CeilingServer {
    child: Child,
    pub base: String,
}

impl CeilingServer {
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(std::env::current_exe()?)
            .args(["ceiling-server", "--port", &port.to_string()])
            .spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(client.get(format!("{base}/readyz")).send().await,
                        Ok(r) if r.status().is_success())
        {
            anyhow::ensure!(Instant::now() < deadline, "ceiling server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(CeilingServer { child, base })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct StorageRun {
    pub stored: u64,
    pub failed: u64,
    pub elapsed: f64,
    pub postgres_cpu: f64,
}

/// Storage only: `connections` tasks store events through the group-commit writer.
pub async fn storage(
    server_url: &str,
    connections: usize,
    seconds: u64,
    warmup: u64,
) -> anyhow::Result<StorageRun> {
    let db_url = crate::database_url(server_url, "storage")?;
    sqlx::Postgres::create_database(&db_url).await?;
    let result = storage_on(&db_url, connections, seconds, warmup).await;
    sqlx::Postgres::force_drop_database(&db_url).await.ok();
    result
}

async fn storage_on(
    db_url: &str,
    connections: usize,
    seconds: u64,
    warmup: u64,
) -> anyhow::Result<StorageRun> {
    // The service's pool size (database.max_connections default).
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect_with(aap_bridge::store::options_from_url(db_url)?)
        .await?;
    aap_bridge::store::MIGRATOR.run(&pool).await?;
    let template = sample_event()?;
    // The defaults (src/config/defaults.yaml `ingest`).
    let ingest = IngestSettings {
        writers: 2,
        parallel_batch_min: 16,
        batch_max: 1000,
        queue_capacity: 16384,
        commit_timeout_ms: 3000,
    };
    // Decided as the service decides them with no rules (stored `unmapped`, one write each).
    let decider = Decider {
        mappings: SharedMappings::new(Mappings::empty()),
        dry_run: true,
        dry_controllers: Default::default(),
        record_skipped: false,
    };
    let wiring = InboxWiring {
        decider: Some(decider),
        wake_dispatch: Arc::new(tokio::sync::Notify::new()),
        wake_launch: Arc::new(tokio::sync::Notify::new()),
        panic_hook: Arc::new(AtomicBool::new(false)),
    };
    let (inbox, writers) = Inbox::start(pool.clone(), &ingest, wiring);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (inbox, template) = (inbox.clone(), template.clone());
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                // Keys shaped like the service's: a GUID delivery id, the body's SHA-256.
                let mut event = template.clone();
                let id = uuid::Uuid::new_v4();
                event.delivery_id = id.to_string();
                event.dedupe_key = format!("sha256:{}", body_hash(id.as_bytes()));
                let r = inbox.store(event).await;
                if measuring.load(Ordering::Relaxed) {
                    if r.is_ok() {
                        ok += 1
                    } else {
                        failed += 1
                    }
                }
            }
            (ok, failed)
        }));
    }
    drop(inbox);
    tokio::time::sleep(Duration::from_secs(warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let pg_before = crate::postgres_cpu_secs();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let pg_after = crate::postgres_cpu_secs();
    stop.store(true, Ordering::Relaxed);
    let (mut stored, mut failed) = (0, 0);
    for t in tasks {
        let (o, f) = t.await?;
        stored += o;
        failed += f;
    }
    for w in writers {
        w.await?;
    }
    pool.close().await;
    Ok(StorageRun {
        stored,
        failed,
        elapsed,
        postgres_cpu: pg_after - pg_before,
    })
}
