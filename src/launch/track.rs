//! `launched → finished`: polls every running job in batches (200 per request), records status
//! changes, and on a terminal status enqueues the outcome post-back and counts the end toward
//! the rule's breaker. One replica polls per round.
//!
//! A failed job's output is saved after its status turns terminal, so its post-back waits (at
//! most `stdout_wait_secs`) on the supervised set `Context::output_waits`; the round goes on
//! tracking the other jobs.

use super::sql::rows::{self as launches, Progress, Tracked};
use crate::controller::{Controller, JobState};
use crate::domain::{JobStatus, LaunchId};
use crate::postback::{self, PostbackNews};
use crate::runtime::Context;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Failure post-backs waiting for their job's output at once, per process.
const OUTPUT_WAITS: usize = 16;

/// Launches whose failure post-back is being prepared in this process, so a later round does
/// not start a second wait. (Another replica may: the guarded UPDATE lets only one finish it.)
static WAITING: LazyLock<Mutex<HashSet<LaunchId>>> = LazyLock::new(Default::default);
static PERMITS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(OUTPUT_WAITS)));

/// Removes the launch from `WAITING` however its task ends.
struct Waiting(LaunchId);

impl Waiting {
    fn claim(id: LaunchId) -> Option<Waiting> {
        let fresh = WAITING.lock().unwrap_or_else(|e| e.into_inner()).insert(id);
        // Built only when claimed: a dropped `Waiting` releases the claim.
        fresh.then(|| Waiting(id))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let controller = ctx
        .controller
        .clone()
        .expect("tracker runs with a controller");
    // Holding the transaction holds the lock for the round.
    let mut lock = ctx.pool.begin().await?;
    // One lock per controller: each controller's jobs are polled by one replica per round.
    let key = match ctx.lane.as_str() {
        crate::config::DEFAULT_CONTROLLER => "aap-bridge:tracker".to_string(),
        lane => format!("aap-bridge:tracker:{lane}"),
    };
    let ours: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(key)
            .fetch_one(&mut *lock)
            .await?;
    if !ours {
        return Ok(false);
    }
    let tracked = launches::launched(&ctx.pool, 20_000, &ctx.lane).await?;
    if tracked.is_empty() {
        return Ok(false);
    }
    let ids: Vec<i64> = tracked.iter().map(|t| t.job_id).collect();
    let read = controller.job_states(&ids).await?;
    let unread: HashSet<i64> = read.unread.into_iter().collect();
    let states: HashMap<i64, JobState> = read.found.into_iter().map(|s| (s.id, s)).collect();
    // Status changes short of the end are written together, in one statement per round.
    let mut moved: Vec<(LaunchId, JobStatus, Option<DateTime<Utc>>)> = Vec::new();
    for t in &tracked {
        if unread.contains(&t.job_id) {
            continue;
        }
        let Some(s) = states.get(&t.job_id) else {
            missing(&ctx, t).await?;
            continue;
        };
        if t.missing_polls > 0 {
            launches::set_missing(&ctx.pool, t.id, false).await?;
        }
        let Ok(status) = s.status.parse::<JobStatus>() else {
            tracing::warn!(launch_id = %t.id, job_id = t.job_id, status = %s.status,
                "the controller reports a job status this bridge does not know; still tracking");
            continue;
        };
        let terminal = status.is_terminal();
        // A row still `launched` with a terminal status (e.g. found by reconciliation) must finish.
        if t.job_status == Some(status) && !terminal {
            continue;
        }
        if !terminal {
            moved.push((t.id, status, parse_time(s.started.as_deref())));
            continue;
        }
        if status != JobStatus::Successful && s.job_type == "job" {
            if let Some(claim) = Waiting::claim(t.id) {
                let (ctx, c, t, s) = (ctx.clone(), controller.clone(), t.clone(), s.clone());
                let waits = ctx.output_waits.clone();
                waits.spawn(async move {
                    if let Err(e) = finish_with_output(&ctx, &c, &t, &s, status).await {
                        tracing::warn!(launch_id = %t.id, error = %e, "recording the job's end failed; next round retries");
                    }
                    drop(claim);
                });
            }
            continue;
        }
        record(&ctx, t, s, status, None).await?;
    }
    launches::progress_many(&ctx.pool, &moved).await?;
    lock.commit().await?;
    Ok(false)
}

/// Waits (bounded) for the failed job's output to be saved, then finishes it with the tail.
async fn finish_with_output(
    ctx: &Context,
    c: &Controller,
    t: &Tracked,
    s: &JobState,
    status: JobStatus,
) -> anyhow::Result<()> {
    let _permit = PERMITS.clone().acquire_owned().await?;
    let wait = Duration::from_secs(ctx.settings.stdout_wait_secs);
    if !c.output_settled(t.job_id, wait).await {
        tracing::info!(
            job_id = t.job_id,
            wait_secs = wait.as_secs(),
            "the controller has not finished saving the job's output; quoting what there is"
        );
    }
    let tail = c
        .stdout_tail(t.job_id, ctx.settings.stdout_tail_lines)
        .await
        .map_err(|e| tracing::debug!(job_id = t.job_id, error = %e, "no stdout tail"))
        .ok();
    record(ctx, t, s, status, tail).await
}

/// Records the job's end: finishes the launch, enqueues the outcome post-back and counts the
/// end toward the rule's breaker, in one transaction.
async fn record(
    ctx: &Context,
    t: &Tracked,
    s: &JobState,
    status: JobStatus,
    tail: Option<String>,
) -> anyhow::Result<()> {
    let terminal = status.is_terminal();
    let mut tx = ctx.pool.begin().await?;
    let p = Progress {
        status,
        started: parse_time(s.started.as_deref()),
        finished: parse_time(s.finished.as_deref()),
        elapsed: terminal.then_some(s.elapsed),
        terminal,
    };
    if launches::progress(&mut tx, t.id, &p).await? && terminal {
        let row = launches::get(&mut tx, t.id).await?;
        let url = row.job_url.clone().unwrap_or_default();
        let news = PostbackNews::Finished {
            job_id: t.job_id,
            url: &url,
            status,
            elapsed: Some(s.elapsed),
            stdout_tail: tail,
            problem: None,
        };
        postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
        // Same transaction as the end itself, so each job counts once toward its rule's breaker.
        super::breaker::job_ended(&mut tx, ctx, &row, status, t.job_id).await?;
        tracing::info!(launch_id = %t.id, job_id = t.job_id, %status, "job finished");
    }
    tx.commit().await?;
    Ok(())
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}

/// Polls in a row without the job before the launch is given up as `missing`.
const MISSING_POLLS: i32 = 3;

/// The controller no longer lists the job (deleted, or hidden from the service user). After a
/// few polls in a row the launch is finished as `missing`, so it stops holding a `max_concurrent`
/// slot, and the ticket is told.
async fn missing(ctx: &Context, t: &launches::Tracked) -> anyhow::Result<()> {
    let polls = launches::set_missing(&ctx.pool, t.id, true).await?;
    if polls < MISSING_POLLS {
        return Ok(());
    }
    let mut tx = ctx.pool.begin().await?;
    let p = Progress {
        status: JobStatus::Missing,
        started: None,
        finished: None,
        elapsed: None,
        terminal: true,
    };
    if launches::progress(&mut tx, t.id, &p).await? {
        let row = launches::get(&mut tx, t.id).await?;
        let url = row.job_url.clone().unwrap_or_default();
        let problem = format!(
            "job {} is no longer listed by the controller (deleted?); its outcome is unknown",
            t.job_id
        );
        let news = PostbackNews::Finished {
            job_id: t.job_id,
            url: &url,
            status: JobStatus::Missing,
            elapsed: None,
            stdout_tail: None,
            problem: Some(problem),
        };
        postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
        tracing::warn!(launch_id = %t.id, job_id = t.job_id, "job vanished from the controller");
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_is_waited_for_once_at_a_time() {
        let id = LaunchId::new();
        let first = Waiting::claim(id).expect("free");
        assert!(Waiting::claim(id).is_none(), "already waiting");
        assert!(
            Waiting::claim(id).is_none(),
            "a refused claim keeps the first"
        );
        drop(first);
        assert!(Waiting::claim(id).is_some(), "released when the task ends");
    }
}
