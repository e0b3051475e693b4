//! The deliveries log: one row per request to `/hooks/{source}`, refused ones included, so an
//! operator sees what each sender sent and what it was answered (as GitHub's "Recent deliveries").
//!
//! It must never stand in ingest's way. A handler hands its record to a bounded queue without
//! waiting; when the queue is full (a flood) the record is dropped and counted in
//! `aap_bridge_deliveries_dropped_total`. One writer per replica inserts what has queued in one
//! statement into an unlogged table, and trims it to `retention.deliveries_max_rows` every tenth
//! of that many rows and whenever a second passes without a record: a flood of refused requests
//! costs one insert per batch and never grows the table past its bound by more than a tenth.
//! Bodies are never stored: a refused body may be anything.

pub mod sql;

use crate::config::RetentionSettings;
use crate::domain::DeliveryOutcome;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Records waiting for the writer; past this a flood's records are dropped, not queued.
const QUEUE: usize = 8192;
/// Most records in one INSERT.
const BATCH: usize = 1000;
/// Under load the writer waits this long between INSERTs so that each carries many rows: the
/// log is not what a sender waits for, and one statement per few rows cost more service CPU
/// than the events' own commits (README "Benchmark").
const LINGER: Duration = Duration::from_millis(100);

/// One request to `/hooks/{source}`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: DateTime<Utc>,
    pub source: String,
    pub known: bool,
    pub client: Option<String>,
    pub delivery_id: Option<String>,
    pub status: u16,
    pub outcome: DeliveryOutcome,
    pub reason: Option<String>,
    pub size: Option<i64>,
    pub event_id: Option<Uuid>,
}

impl Delivery {
    /// The outcome an answer stands for: 2xx by its `status` word, 4xx refused, 5xx unavailable.
    pub fn outcome_of(status: u16, word: Option<&str>) -> DeliveryOutcome {
        match (status, word) {
            (200..=299, Some("duplicate")) => DeliveryOutcome::Duplicate,
            (200..=299, Some("ignored")) => DeliveryOutcome::Ignored,
            (200..=299, _) => DeliveryOutcome::Accepted,
            (500.., _) => DeliveryOutcome::Unavailable,
            _ => DeliveryOutcome::Refused,
        }
    }
}

/// Where handlers hand their records. Cheap to clone; `off()` records nothing.
#[derive(Clone, Default)]
pub struct DeliveryLog {
    tx: Option<mpsc::Sender<Delivery>>,
}

/// How much of the log is kept.
#[derive(Debug, Clone, Copy)]
pub struct Keep {
    pub max_rows: i64,
    /// None: no age limit.
    pub max_age: Option<Duration>,
}

impl Keep {
    pub fn from_settings(r: &RetentionSettings) -> Self {
        Keep {
            max_rows: r.deliveries_max_rows,
            max_age: (r.deliveries_max_age_days > 0)
                .then(|| Duration::from_secs(u64::from(r.deliveries_max_age_days) * 86_400)),
        }
    }
}

impl DeliveryLog {
    /// Starts the writer. It ends once every clone is dropped and the queue is written.
    pub fn start(pool: PgPool, keep: Keep) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = tokio::spawn(writer(pool, rx, keep));
        (DeliveryLog { tx: Some(tx) }, handle)
    }

    pub fn off() -> Self {
        DeliveryLog { tx: None }
    }

    /// Queues the record, or drops and counts it when the queue is full: never waits.
    pub fn record(&self, d: Delivery) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(d).is_err() {
            metrics::counter!("aap_bridge_deliveries_dropped_total").increment(1);
        }
    }
}

async fn writer(pool: PgPool, mut rx: mpsc::Receiver<Delivery>, keep: Keep) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut aged_at: Option<tokio::time::Instant> = None;
    // Trimming in large steps keeps its cost per row small; the table then holds at most a
    // tenth more than its bound while deliveries stream in, and exactly its bound when idle.
    let step = (keep.max_rows / 10).max(1);
    let mut since_trim = 0;
    loop {
        let got = if since_trim > 0 {
            match tokio::time::timeout(IDLE, rx.recv_many(&mut batch, BATCH)).await {
                Ok(n) => n,
                Err(_) => {
                    trim(&pool, keep.max_rows, &mut since_trim).await;
                    continue;
                }
            }
        } else {
            rx.recv_many(&mut batch, BATCH).await
        };
        if got == 0 {
            trim(&pool, keep.max_rows, &mut since_trim).await;
            return;
        }
        let n = batch.len();
        let started = tokio::time::Instant::now();
        if let Err(e) = sql::insert(&pool, &mut batch).await {
            tracing::warn!(error = %e, rows = n, "deliveries log: rows not written");
            metrics::counter!("aap_bridge_deliveries_dropped_total").increment(n as u64);
        }
        since_trim += n as i64;
        batch.clear();
        if since_trim >= step {
            trim(&pool, keep.max_rows, &mut since_trim).await;
        }
        // Age is checked once a minute: a scan of the bounded table, not worth every batch.
        if let Some(age) = keep.max_age {
            if aged_at.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                aged_at = Some(tokio::time::Instant::now());
                if let Err(e) = sql::expire(&pool, age).await {
                    tracing::warn!(error = %e, "deliveries log: age trim failed");
                }
            }
        }
        if n < BATCH {
            tokio::time::sleep_until(started + LINGER).await;
        }
    }
}

/// After this long without a record, what was written since the last trim is trimmed.
const IDLE: Duration = Duration::from_secs(1);

async fn trim(pool: &PgPool, max_rows: i64, since: &mut i64) {
    if *since == 0 {
        return;
    }
    *since = 0;
    if let Err(e) = sql::trim(pool, max_rows).await {
        tracing::warn!(error = %e, "deliveries log: trim failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_the_answer() {
        use DeliveryOutcome::*;
        assert_eq!(Delivery::outcome_of(202, None), Accepted);
        assert_eq!(Delivery::outcome_of(200, Some("duplicate")), Duplicate);
        assert_eq!(Delivery::outcome_of(200, Some("ignored")), Ignored);
        assert_eq!(Delivery::outcome_of(401, None), Refused);
        assert_eq!(Delivery::outcome_of(404, None), Refused);
        assert_eq!(Delivery::outcome_of(503, None), Unavailable);
    }
}
