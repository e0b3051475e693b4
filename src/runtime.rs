//! What every background worker shares: its context, the loop that runs a step, and the
//! supervised set its detached work runs in. Below the lifecycles (`launch`, `postback`) that
//! run on it, above the clients they use.

use crate::config::WorkerSettings;
use crate::controller::{Controller, ControllerHealth};
use crate::mapping::SharedMappings;
use crate::notify::{DownSources, Notifier};
use sqlx::PgPool;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// The configured name of `controller`: this context's launcher and tracker serve the
    /// launches of that controller only (`default` with one controller, and in dry-run).
    pub lane: String,
    /// Controllers marked `dry_run: true`: the dispatcher records their launches `dry_run`.
    pub dry_controllers: std::collections::BTreeSet<String>,
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
    pub down_sources: DownSources,
    /// Launch attempts in flight, drained at shutdown.
    pub attempts: Detached,
    /// Failure post-backs waiting for their job's output, drained at shutdown.
    pub output_waits: Detached,
}

impl Context {
    /// The context of one controller's launcher and tracker when there are several: the shared
    /// parts of `self`, with that controller's own client, health, launch slots, wake and
    /// supervised attempts, so a slow or absent controller holds up only its own launches.
    pub fn for_lane(
        &self,
        lane: &str,
        controller: Arc<Controller>,
        health: Arc<ControllerHealth>,
        settle_secs: u64,
    ) -> Context {
        Context {
            pool: self.pool.clone(),
            settings: self.settings.clone(),
            controller: Some(controller),
            lane: lane.to_string(),
            dry_controllers: self.dry_controllers.clone(),
            mappings: self.mappings.clone(),
            record_skipped: self.record_skipped,
            notifier: self.notifier.clone(),
            wake_dispatch: self.wake_dispatch.clone(),
            wake_launch: Arc::new(Notify::new()),
            wake_notify: self.wake_notify.clone(),
            hooks: self.hooks.clone(),
            retention: self.retention.clone(),
            replica: self.replica.clone(),
            launch_slots: Arc::new(tokio::sync::Semaphore::new(
                self.settings.launch_concurrency,
            )),
            notify_slots: self.notify_slots.clone(),
            launch_starved: Default::default(),
            health,
            settle_secs,
            down_sources: DownSources::new(Duration::from_millis(
                self.settings.probe_interval_ms.max(50),
            )),
            attempts: Detached::new("launch attempt"),
            output_waits: Detached::new("job output wait"),
        }
    }
}

/// Work a loop hands off (a launch attempt, a wait for a job's output): owned by the supervisor,
/// drained at shutdown, and a panic is logged and counted instead of vanishing.
#[derive(Clone)]
pub struct Detached {
    name: &'static str,
    tasks: TaskTracker,
}

impl Detached {
    pub fn new(name: &'static str) -> Self {
        Detached {
            name,
            tasks: TaskTracker::new(),
        }
    }

    pub fn spawn<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = self.name;
        let inner = tokio::spawn(work);
        self.tasks.spawn(async move {
            if let Err(e) = inner.await {
                if e.is_panic() {
                    let p = e.into_panic();
                    let message = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(task = name, panic = %message, "detached work panicked");
                    metrics::counter!("aap_bridge_task_panics_total", "task" => name).increment(1);
                }
            }
        });
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Takes no more work and waits for what runs (the caller bounds the wait).
    pub async fn drain(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The loop, then the work it handed off: at shutdown that work finishes (within the shutdown
/// grace, which aborts what is left) instead of being dropped half-done.
pub fn then_drain<D>((name, handle): Task, drain: D) -> Task
where
    D: Future<Output = ()> + Send + 'static,
{
    let handle = tokio::spawn(async move {
        if let Err(e) = handle.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        drain.await;
    });
    (name, handle)
}

/// Runs `step` until cancelled: again at once while it finds work, else after a wake-up or `every`.
/// It ends only when cancelled; a panic in `step` ends it too, and startup's supervision then
/// stops the process so that it is restarted.
pub fn spawn_loop<F, Fut>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn detached_work_is_drained_and_a_panic_ends_only_its_own_task() {
        let set = Detached::new("test work");
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..3 {
            let done = done.clone();
            set.spawn(async move {
                tokio::time::sleep(Duration::from_millis(50 * i)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        set.spawn(async { panic!("a bug in one attempt") });
        tokio::time::timeout(Duration::from_secs(5), set.drain())
            .await
            .expect("drained");
        assert_eq!(done.load(Ordering::SeqCst), 3, "every task finished first");
        assert!(set.is_empty());
    }
}
