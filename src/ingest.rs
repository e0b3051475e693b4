//! Group commit: handlers hand events to a few writer tasks, each of which commits whatever has
//! queued up in one INSERT. Under load one commit carries hundreds of events; idle, one.

use crate::config::IngestSettings;
use crate::error::ApiError;
use crate::event::Event;
use crate::store::events::{insert_batch, Insert};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Mutex, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Accepted(Uuid),
    Duplicate(Uuid),
}

struct Job {
    id: Uuid,
    event: Event,
    reply: oneshot::Sender<Result<Stored, ApiError>>,
}

#[derive(Clone)]
pub struct Inbox {
    tx: mpsc::Sender<Job>,
    timeout: Duration,
}

impl Inbox {
    /// Starts the writers. They stop once every `Inbox` clone is dropped and the queue is empty.
    /// `committed` is notified after each commit, so this replica's dispatcher starts at once.
    /// `panic_hook` is fault injection for tests (`workers::Hooks::panic_commit_writer`).
    pub fn start(
        pool: PgPool,
        s: &IngestSettings,
        committed: Arc<Notify>,
        panic_hook: Arc<AtomicBool>,
    ) -> (Inbox, Vec<JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(s.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let timeout = Duration::from_millis(s.commit_timeout_ms);
        let handles = (0..s.writers)
            .map(|_| {
                let w = writer(
                    pool.clone(),
                    rx.clone(),
                    s.batch_max,
                    timeout,
                    committed.clone(),
                    panic_hook.clone(),
                );
                tokio::spawn(w)
            })
            .collect();
        (Inbox { tx, timeout }, handles)
    }

    /// Stores the event durably; returns only after the commit (or with 503 when it cannot).
    pub async fn store(&self, event: Event) -> Result<Stored, ApiError> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            id: Uuid::now_v7(),
            event,
            reply,
        };
        let wait = async {
            self.tx
                .send(job)
                .await
                .map_err(|_| ApiError::unavailable("the service is shutting down; retry"))?;
            rx.await
                .map_err(|_| ApiError::unavailable("the event store stopped; retry"))?
        };
        match tokio::time::timeout(self.timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(ApiError::unavailable(format!(
                "the event store did not commit within {} ms; retry",
                self.timeout.as_millis()
            ))),
        }
    }
}

async fn writer(
    pool: PgPool,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max: usize,
    timeout: Duration,
    committed: Arc<Notify>,
    panic_hook: Arc<AtomicBool>,
) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < max {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        if panic_hook.swap(false, Ordering::SeqCst) {
            panic!("fault injection: commit writer panics");
        }
        commit(&pool, batch, timeout).await;
        committed.notify_one();
    }
}

async fn commit(pool: &PgPool, batch: Vec<Job>, timeout: Duration) {
    // Identical deliveries racing each other in one batch: the first is inserted, the rest are
    // answered as its duplicates.
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    let mut unique = Vec::new();
    let mut owner = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        let key = (job.event.source.as_str(), job.event.dedupe_key.as_str());
        let slot = *first.entry(key).or_insert_with(|| {
            unique.push(i);
            unique.len() - 1
        });
        owner.push(slot);
    }
    let items: Vec<(Uuid, &Event)> = unique
        .iter()
        .map(|&i| (batch[i].id, &batch[i].event))
        .collect();
    let results = match tokio::time::timeout(timeout, insert_batch(pool, &items)).await {
        Ok(Ok(r)) => r.into_iter().map(Ok).collect(),
        Ok(Err(e)) if is_data_error(&e) && items.len() > 1 => one_by_one(pool, &items).await,
        Ok(Err(e)) => vec![Err(store_error(&e)); items.len()],
        Err(_) => vec![Err(ApiError::unavailable("the event store timed out; retry")); items.len()],
    };
    let ids: Vec<Uuid> = items.iter().map(|(id, _)| *id).collect();
    drop(items);
    for (i, job) in batch.into_iter().enumerate() {
        let slot = owner[i];
        let reply = match &results[slot] {
            Ok(Insert::New) if unique[slot] == i => Ok(Stored::Accepted(job.id)),
            Ok(Insert::New) => Ok(Stored::Duplicate(ids[slot])),
            Ok(Insert::Existing(id)) => Ok(Stored::Duplicate(*id)),
            Err(e) => Err(e.clone()),
        };
        // The requester may have timed out; the event is stored all the same.
        let _ = job.reply.send(reply);
    }
}

/// A row Postgres refuses (bad encoding, say) must not fail the other events of its batch.
async fn one_by_one(pool: &PgPool, items: &[(Uuid, &Event)]) -> Vec<Result<Insert, ApiError>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(match insert_batch(pool, std::slice::from_ref(item)).await {
            Ok(mut r) => Ok(r.remove(0)),
            Err(e) => Err(store_error(&e)),
        });
    }
    out
}

fn is_data_error(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")))
}

fn store_error(e: &sqlx::Error) -> ApiError {
    if is_data_error(e) {
        return ApiError::bad_request(format!("payload could not be stored: {e}"));
    }
    tracing::warn!(error = %e, "event store unavailable");
    ApiError::unavailable("the event store is unavailable; retry later")
}
