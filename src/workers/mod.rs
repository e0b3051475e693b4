//! Starts the background loops: each lifecycle's own (the launcher and tracker of `launch`, the
//! notifier of `postback`) and the chores no lifecycle owns (the dispatcher for events stored
//! `pending`, retention, catch-up). Each claims rows with `FOR UPDATE SKIP LOCKED`, so any
//! number of replicas can share one database.

pub mod catch_up;
mod dispatcher;
pub mod retention;

pub use crate::notify::DownSources;
pub use crate::runtime::{Context, Detached, Hooks, Task};

use crate::runtime::{spawn_loop, then_drain};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The loops every replica runs once, whatever the controllers: the dispatcher, the notifier,
/// approvals and retention. Each controller's launcher and tracker come from `start_lane`.
pub fn start(ctx: Arc<Context>, cancel: CancellationToken) -> Vec<Task> {
    let every = Duration::from_millis(ctx.settings.poll_interval_ms);
    let c = ctx.clone();
    let slots = ctx.notify_slots.clone();
    let all = crate::postback::NOTIFY_CONCURRENCY as u32;
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
        then_drain(
            spawn_loop(
                "notifier",
                cancel.clone(),
                ctx.wake_notify.clone(),
                every,
                {
                    let c = c.clone();
                    move || crate::postback::step(c.clone())
                },
            ),
            async move {
                let _ = slots.acquire_many(all).await;
            },
        ),
    ];
    // Approval commands and expiries: polled, since a person's answer is not in a hurry.
    handles.push(spawn_loop(
        "approvals",
        cancel.clone(),
        Arc::new(Notify::new()),
        every,
        {
            let c = c.clone();
            move || crate::approval::step(c.clone())
        },
    ));
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
    handles
}

/// One controller's launcher and tracker (none in dry-run). With one controller they run on
/// the context `start` got; with several, each on its own (`Context::for_lane`).
pub fn start_lane(ctx: Arc<Context>, cancel: CancellationToken) -> Vec<Task> {
    let every = Duration::from_millis(ctx.settings.poll_interval_ms);
    let track_every = Duration::from_millis(ctx.settings.tracker_interval_ms);
    let c = ctx.clone();
    let mut handles = Vec::new();
    if ctx.controller.is_some() {
        let attempts = ctx.attempts.clone();
        handles.push(then_drain(
            spawn_loop(
                "launcher",
                cancel.clone(),
                ctx.wake_launch.clone(),
                every,
                {
                    let c = c.clone();
                    move || crate::launch::step(c.clone())
                },
            ),
            async move { attempts.drain().await },
        ));
        let waits = ctx.output_waits.clone();
        handles.push(then_drain(
            spawn_loop("tracker", cancel, Arc::new(Notify::new()), track_every, {
                let c = c.clone();
                move || crate::launch::track(c.clone())
            }),
            async move { waits.drain().await },
        ));
    }
    handles
}

/// Fans the shared launch wake (what the commit writer, the dispatcher and the admin actions
/// notify) out to every controller's launcher.
pub async fn fan_out(shared: Arc<Notify>, lanes: Vec<Arc<Notify>>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            () = shared.notified() => lanes.iter().for_each(|w| w.notify_one()),
            () = cancel.cancelled() => return,
        }
    }
}
