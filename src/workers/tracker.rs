//! Polls every running job in batches (200 per request), records status changes, and on a
//! terminal status enqueues the outcome post-back. One replica polls per round.

use super::postback::{self, Outcome};
use super::Context;
use crate::controller::{is_terminal, JobState};
use crate::notify::Phase;
use crate::store::launches::{self, Progress};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let controller = ctx
        .controller
        .clone()
        .expect("tracker runs with a controller");
    // Holding the transaction holds the lock for the round.
    let mut lock = ctx.pool.begin().await?;
    let ours: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('aap-bridge:tracker', 0))",
    )
    .fetch_one(&mut *lock)
    .await?;
    if !ours {
        return Ok(false);
    }
    let tracked = launches::launched(&ctx.pool, 20_000).await?;
    if tracked.is_empty() {
        return Ok(false);
    }
    let ids: Vec<i64> = tracked.iter().map(|t| t.job_id).collect();
    let states: HashMap<i64, JobState> = controller
        .job_states(&ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    for t in &tracked {
        let Some(s) = states.get(&t.job_id) else {
            continue;
        };
        let terminal = is_terminal(&s.status);
        // A row still `launched` with a terminal status (e.g. found by reconciliation) must finish.
        if t.job_status.as_deref() == Some(s.status.as_str()) && !terminal {
            continue;
        }
        let tail = if terminal && s.status != "successful" && s.job_type == "job" {
            controller
                .stdout_tail(t.job_id, ctx.settings.stdout_tail_lines)
                .await
                .map_err(|e| tracing::debug!(job_id = t.job_id, error = %e, "no stdout tail"))
                .ok()
        } else {
            None
        };
        let mut tx = ctx.pool.begin().await?;
        let p = Progress {
            status: &s.status,
            started: parse_time(s.started.as_deref()),
            finished: parse_time(s.finished.as_deref()),
            elapsed: terminal.then_some(s.elapsed),
            terminal,
        };
        if launches::progress(&mut tx, t.id, &p).await? && terminal {
            let row = launches::get(&mut tx, t.id).await?;
            let url = row.job_url.clone().unwrap_or_default();
            let outcome = Outcome {
                job_id: t.job_id,
                url: &url,
                status: Some(&s.status),
                elapsed: Some(s.elapsed),
                stdout_tail: tail,
                problem: None,
            };
            postback::enqueue(&mut tx, &ctx, &row, Phase::Finished, outcome).await?;
            tracing::info!(launch_id = %t.id, job_id = t.job_id, status = %s.status, "job finished");
        }
        tx.commit().await?;
    }
    lock.commit().await?;
    Ok(false)
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc))
}
