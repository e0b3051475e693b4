//! Group commit: handlers hand events to a few writer tasks, each of which decides whatever has
//! queued up (`decide`) and commits it in one INSERT, launches included. Under load one commit
//! carries hundreds of events; idle, one.

use crate::config::IngestSettings;
use crate::decide::Decider;
use crate::domain::LaunchState;
use crate::error::ApiError;
use crate::event::Event;
use crate::store::events::{insert_batch, Decided, EventState, Insert, NewEvent};
use chrono::Utc;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// What each commit writer shares.
#[derive(Clone)]
struct Writer {
    pool: PgPool,
    max: usize,
    timeout: Duration,
    /// Decides events before their commit; None stores them `pending` for the dispatcher.
    decider: Option<Decider>,
    /// Notified after a commit that stored `pending` events: this replica's dispatcher.
    wake_dispatch: Arc<Notify>,
    /// Notified after a commit that planned launches: this replica's launcher.
    wake_launch: Arc<Notify>,
    /// Fault injection for tests (`workers::Hooks::panic_commit_writer`).
    panic_hook: Arc<AtomicBool>,
    /// Commits in flight, and a notice when one ends (with several writers).
    busy: Arc<AtomicUsize>,
    finished: Arc<Notify>,
    /// The smallest batch a writer commits while another writer's commit is in flight.
    min_parallel: usize,
}

/// The writers' wiring (`Inbox::start`).
pub struct InboxWiring {
    pub decider: Option<Decider>,
    pub wake_dispatch: Arc<Notify>,
    pub wake_launch: Arc<Notify>,
    pub panic_hook: Arc<AtomicBool>,
}

impl Inbox {
    /// Starts the writers. They stop once every `Inbox` clone is dropped and the queue is empty.
    pub fn start(
        pool: PgPool,
        s: &IngestSettings,
        wiring: InboxWiring,
    ) -> (Inbox, Vec<JoinHandle<()>>) {
        let (tx, rx) = mpsc::channel(s.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let timeout = Duration::from_millis(s.commit_timeout_ms);
        let w = Writer {
            pool,
            max: s.batch_max,
            timeout,
            decider: wiring.decider,
            wake_dispatch: wiring.wake_dispatch,
            wake_launch: wiring.wake_launch,
            panic_hook: wiring.panic_hook,
            busy: Arc::new(AtomicUsize::new(0)),
            finished: Arc::new(Notify::new()),
            min_parallel: s.parallel_batch_min,
        };
        let handles = (0..s.writers)
            .map(|_| tokio::spawn(writer(w.clone(), rx.clone())))
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

async fn writer(w: Writer, rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            drain(&mut rx, &mut batch, w.max);
            // While another writer commits, a small batch waits for more events or for that
            // commit to end: a commit costs about as much for 5 events as for 30.
            let finished = w.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            while batch.len() < w.min_parallel && w.busy.load(Ordering::SeqCst) > 0 {
                tokio::select! {
                    job = rx.recv() => match job {
                        Some(job) => {
                            batch.push(job);
                            drain(&mut rx, &mut batch, w.max);
                        }
                        None => break,
                    },
                    _ = finished.as_mut() => break,
                }
            }
            w.busy.fetch_add(1, Ordering::SeqCst);
        }
        // Counted down even if the commit panics, so the other writer never waits on it.
        let _in_flight = InFlight(&w);
        if w.panic_hook.swap(false, Ordering::SeqCst) {
            panic!("fault injection: commit writer panics");
        }
        commit(&w, batch).await;
    }
}

struct InFlight<'a>(&'a Writer);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        self.0.finished.notify_waiters();
    }
}

fn drain(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max: usize) {
    while batch.len() < max {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

async fn commit(w: &Writer, mut batch: Vec<Job>) {
    // In key order, so that two writers (or replicas) whose batches share keys wait for each
    // other's rows in the same order and never deadlock. Stable: identical deliveries keep
    // their arrival order.
    batch.sort_by(|a, b| key(&a.event).cmp(&key(&b.event)));
    let (batch, replies): (Vec<(Uuid, Event)>, Vec<_>) = batch
        .into_iter()
        .map(|j| ((j.id, j.event), j.reply))
        .unzip();
    // Identical deliveries racing each other in one batch (adjacent once sorted): the first is
    // inserted, the rest are answered as its duplicates.
    let mut unique: Vec<usize> = Vec::new();
    let mut owner = Vec::with_capacity(batch.len());
    for (i, (_, event)) in batch.iter().enumerate() {
        match unique.last() {
            Some(&u) if key(&batch[u].1) == key(event) => {}
            _ => unique.push(i),
        }
        owner.push(unique.len() - 1);
    }
    // Decided under one snapshot of the rules, whose version each decided row records: a
    // reload meanwhile applies from the next batch on.
    let decided: Vec<Option<Decided>> = match &w.decider {
        Some(d) => {
            let rules = d.mappings.current();
            let now = Utc::now();
            unique
                .iter()
                .map(|&i| d.decide(&rules, batch[i].0, &batch[i].1, now))
                .collect()
        }
        None => vec![None; unique.len()],
    };
    let items: Vec<NewEvent> = unique
        .iter()
        .zip(&decided)
        .map(|(&i, d)| NewEvent {
            id: batch[i].0,
            event: &batch[i].1,
            decided: d.as_ref(),
        })
        .collect();
    let mut first = tokio::time::timeout(w.timeout, insert_batch(&w.pool, &items)).await;
    if matches!(&first, Ok(Err(e)) if is_connection_error(e)) {
        // A connection that died while idle (pool connections are not pinged): once more on
        // a fresh one. Nothing was committed, or the retry finds the rows as duplicates.
        first = tokio::time::timeout(w.timeout, insert_batch(&w.pool, &items)).await;
    }
    let results = match first {
        Ok(Ok(r)) => r.into_iter().map(Ok).collect(),
        Ok(Err(e)) if is_data_error(&e) && items.len() > 1 => one_by_one(&w.pool, &items).await,
        Ok(Err(e)) => vec![Err(store_error(&e)); items.len()],
        Err(_) => vec![Err(ApiError::unavailable("the event store timed out; retry")); items.len()],
    };
    // Answered before the log lines are formatted: the requests wait on this writer.
    for (i, reply) in replies.into_iter().enumerate() {
        let slot = owner[i];
        let id = batch[i].0;
        let answer = match &results[slot] {
            Ok(Insert::New) if unique[slot] == i => Ok(Stored::Accepted(id)),
            Ok(Insert::New) => Ok(Stored::Duplicate(items[slot].id)),
            // A retried commit finding the first attempt's own row: it was accepted.
            Ok(Insert::Existing(existing)) if *existing == id => Ok(Stored::Accepted(id)),
            Ok(Insert::Existing(existing)) => Ok(Stored::Duplicate(*existing)),
            Err(e) => Err(e.clone()),
        };
        // The requester may have timed out; the event is stored all the same.
        let _ = reply.send(answer);
    }
    let (mut pending, mut planned) = (false, false);
    for (item, r) in items.iter().zip(&results) {
        if !matches!(r, Ok(Insert::New)) {
            continue;
        }
        match item.decided {
            Some(d) => planned |= log_decided(item, d),
            None => pending |= item.event.ignored.is_none(),
        }
    }
    if pending {
        w.wake_dispatch.notify_one();
    }
    if planned {
        w.wake_launch.notify_one();
    }
}

/// The same lines the dispatcher logs for a decision; true when a launch is to be sent.
fn log_decided(item: &NewEvent, d: &Decided) -> bool {
    let e = item.event;
    if d.state != EventState::Dispatched {
        let reason = d.reason.as_deref().unwrap_or_default();
        tracing::info!(event_id = %item.id, source = %e.source, delivery_id = %e.delivery_id,
            state = %d.state, %reason, "event not launched");
    }
    for l in &d.launches {
        tracing::info!(event_id = %item.id, source = %e.source, delivery_id = %e.delivery_id,
            launch_id = %l.id, rule = %l.rule, state = %l.state, "launch planned");
    }
    d.launches.iter().any(|l| l.state == LaunchState::Planned)
}

/// What identical deliveries share.
fn key(e: &Event) -> (&str, &str) {
    (e.source.as_str(), e.dedupe_key.as_str())
}

/// A row Postgres refuses (bad encoding, say) must not fail the other events of its batch.
async fn one_by_one(pool: &PgPool, items: &[NewEvent<'_>]) -> Vec<Result<Insert, ApiError>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(match insert_batch(pool, std::slice::from_ref(item)).await {
            Ok(mut r) => Ok(r.remove(0)),
            Err(e) => Err(store_error(&e)),
        });
    }
    out
}

fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
    )
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
