//! Background workers. Each claims rows with `FOR UPDATE SKIP LOCKED`, so any number of replicas
//! can share one database.

pub mod breaker;
pub mod catch_up;
mod dispatcher;
mod down;
pub mod ignored;
mod launcher;
pub mod notifier;
mod postback;
mod reconcile;
mod refusal;
pub mod retention;
mod tracker;

/// The launch markers, for the admin `simulate` call.
pub use crate::decide::{outcome, with_marker};

use crate::config::WorkerSettings;
use crate::controller::{Controller, ControllerHealth};
use crate::mapping::SharedMappings;
use crate::notify::Notifier;
use sqlx::PgPool;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use down::DownSources;
use tokio_util::sync::CancellationToken;

/// Fault injection for tests.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Behave like a crash right after a launch POST succeeded: nothing is committed.
    pub crash_after_launch_post: Arc<AtomicBool>,
    /// The next batch a commit writer takes makes it panic, as a bug would.
    pub panic_commit_writer: Arc<AtomicBool>,
    /// Catch-up passes skip their lock, as if two replicas ran one at the same moment.
    pub catch_up_without_lock: Arc<AtomicBool>,
}

/// A background task and the name supervision reports it by.
pub type Task = (&'static str, JoinHandle<()>);

pub struct Context {
    pub pool: PgPool,
    pub settings: WorkerSettings,
    /// None: dry-run.
    pub controller: Option<Arc<Controller>>,
    pub mappings: SharedMappings,
    /// `mappings.record_skipped`.
    pub record_skipped: bool,
    pub notifier: Arc<Notifier>,
    pub wake_dispatch: Arc<Notify>,
    pub wake_launch: Arc<Notify>,
    pub wake_notify: Arc<Notify>,
    pub hooks: Hooks,
    pub retention: crate::config::RetentionSettings,
    /// This replica's name in launch leases (`owner`).
    pub replica: String,
    /// Launch attempts in flight on this replica (`launch_concurrency`).
    pub launch_slots: Arc<tokio::sync::Semaphore>,
    /// Post-backs in flight on this replica (`notifier::NOTIFY_CONCURRENCY`).
    pub notify_slots: Arc<tokio::sync::Semaphore>,
    /// Set when a launcher step found no free slot: the next attempt to finish wakes it.
    pub launch_starved: std::sync::atomic::AtomicBool,
    pub health: Arc<ControllerHealth>,
    /// The settle window for unclear launch answers (`WorkerSettings::settle_secs`).
    pub settle_secs: u64,
    /// Ticket APIs found down, probed every `probe_interval_ms`.
    pub down_sources: down::DownSources,
}

pub fn start(ctx: Arc<Context>, cancel: CancellationToken) -> Vec<Task> {
    let every = Duration::from_millis(ctx.settings.poll_interval_ms);
    let track_every = Duration::from_millis(ctx.settings.tracker_interval_ms);
    let c = ctx.clone();
    let mut handles = vec![
        spawn_loop(
            "dispatcher",
            cancel.clone(),
            ctx.wake_dispatch.clone(),
            every,
            {
                let c = c.clone();
                move || dispatcher::step(c.clone())
            },
        ),
        drained(
            spawn_loop(
                "notifier",
                cancel.clone(),
                ctx.wake_notify.clone(),
                every,
                {
                    let c = c.clone();
                    move || notifier::step(c.clone())
                },
            ),
            ctx.notify_slots.clone(),
        ),
    ];
    let prune_every = Duration::from_secs(ctx.retention.interval_secs.max(1));
    handles.push(spawn_loop(
        "retention",
        cancel.clone(),
        Arc::new(Notify::new()),
        prune_every,
        {
            let c = c.clone();
            move || {
                let c = c.clone();
                async move {
                    retention::prune(&c.pool, &c.retention).await?;
                    Ok(false)
                }
            }
        },
    ));
    if ctx.controller.is_some() {
        handles.push(spawn_loop(
            "launcher",
            cancel.clone(),
            ctx.wake_launch.clone(),
            every,
            {
                let c = c.clone();
                move || launcher::step(c.clone())
            },
        ));
        handles.push(spawn_loop(
            "tracker",
            cancel,
            Arc::new(Notify::new()),
            track_every,
            {
                let c = c.clone();
                move || tracker::step(c.clone())
            },
        ));
    }
    handles
}

/// Runs `step` until cancelled: again at once while it finds work, else after a wake-up or `every`.
/// It ends only when cancelled; a panic in `step` ends it too, and startup's supervision then
/// stops the process so that it is restarted.
/// The loop, then the deliveries it started: at shutdown they finish (within the shutdown
/// grace, which aborts what is left) instead of being dropped half-sent.
fn drained((name, handle): Task, slots: Arc<tokio::sync::Semaphore>) -> Task {
    let all = notifier::NOTIFY_CONCURRENCY as u32;
    let handle = tokio::spawn(async move {
        if let Err(e) = handle.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        let _ = slots.acquire_many(all).await;
    });
    (name, handle)
}

fn spawn_loop<F, Fut>(
    name: &'static str,
    cancel: CancellationToken,
    wake: Arc<Notify>,
    every: Duration,
    mut step: F,
) -> Task
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<bool>> + Send,
{
    let handle = tokio::spawn(async move {
        let mut failures = 0u32;
        while !cancel.is_cancelled() {
            let pause = match step().await {
                Ok(true) => {
                    failures = 0;
                    continue;
                }
                Ok(false) => {
                    failures = 0;
                    every
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(worker = name, error = %e, "worker step failed");
                    every * failures.min(10)
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
        tracing::debug!(worker = name, "stopped");
    });
    (name, handle)
}
