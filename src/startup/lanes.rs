//! One lane per live controller: its own client, health, launcher and tracker, so one
//! controller's outage never holds up another's launches.

use super::supervise::Tasks;
use crate::config::Settings;
use crate::controller::{Controller, ControllerHealth, Fleet, Lane};
use crate::workers::{self, Context};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The live controllers (`dry_run` ones are listed, not connected to).
pub fn fleet(settings: &Settings, pool: &PgPool) -> anyhow::Result<Fleet> {
    let probe_every = probe_every(settings);
    let mut lanes = Vec::new();
    for (name, c) in settings.controllers() {
        if c.dry_run {
            tracing::warn!(
                controller = name,
                "DRY-RUN controller: its launches are recorded, not sent"
            );
            continue;
        }
        let controller = Arc::new(Controller::new(name, c, Some(pool.clone()))?);
        // In the background: a controller that is down must not hold up the start.
        let probe = controller.clone();
        tokio::spawn(async move { probe.warn_about_jinja().await });
        lanes.push(Lane {
            name: name.to_string(),
            controller,
            health: Arc::new(ControllerHealth::named(name, probe_every)),
        });
    }
    let fleet = Fleet::new(lanes, settings.dry_run_controllers());
    if fleet.is_empty() {
        tracing::warn!("no controller configured: DRY-RUN mode, launches are recorded, not sent");
    }
    Ok(fleet)
}

pub fn probe_every(settings: &Settings) -> Duration {
    Duration::from_millis(settings.workers.probe_interval_ms.max(50))
}

/// Each lane's launcher and tracker. With one controller, `ctx` (already that controller's) is
/// the lane; with several, each gets its own context and the launch wake is fanned out.
pub fn start(
    ctx: &Arc<Context>,
    fleet: &Fleet,
    settings: &Settings,
    shutdown: &CancellationToken,
    tasks: &mut Tasks,
) {
    if fleet.lanes().len() <= 1 {
        for (name, handle) in workers::start_lane(ctx.clone(), shutdown.child_token()) {
            tasks.add(name, handle);
        }
        return;
    }
    let mut wakes = Vec::new();
    for l in fleet.lanes() {
        let timeout = settings
            .controllers()
            .get(l.name.as_str())
            .map_or(30, |c| c.timeout_secs);
        let settle = settings.workers.settle_secs(timeout);
        let lane = Arc::new(ctx.for_lane(&l.name, l.controller.clone(), l.health.clone(), settle));
        wakes.push(lane.wake_launch.clone());
        for (task, handle) in workers::start_lane(lane, shutdown.child_token()) {
            tasks.add(task, handle);
        }
    }
    let fan = workers::fan_out(ctx.wake_launch.clone(), wakes, shutdown.child_token());
    tasks.add("launch wake fan-out", tokio::spawn(fan));
}
