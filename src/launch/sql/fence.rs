//! The fenced launch attempt (README "Launch protocol"). A claim bumps `attempts`; that number
//! is the fencing token. Every transition out of `launching` is an UPDATE guarded by id, attempt
//! and state, so an attempt that lost its lease can change nothing. Nothing is POSTed unless
//! `confirm_send` (owner still holds a live lease) succeeds, and it stamps `sent_at`.

use super::rows::{LaunchRow, LaunchState, COLUMNS};
use crate::domain::LaunchId;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

/// One attempt at one launch, as the replica that claimed it knows it.
#[derive(Debug, Clone)]
pub struct Fence {
    pub id: LaunchId,
    pub attempt: i32,
    pub owner: String,
}

impl Fence {
    pub fn of(row: &LaunchRow, owner: &str) -> Self {
        Fence {
            id: row.id,
            attempt: row.attempts,
            owner: owner.to_string(),
        }
    }
}

/// Serializes claims across replicas, and orders pauses (`sql::pauses`) against them: one
/// lock per transaction, so lock order cannot deadlock. Held until the caller's transaction ends.
pub async fn lock_claims(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aap-bridge:claim', 0))")
        .execute(conn)
        .await
        .map(|_| ())
}

/// The claim as one statement: the claim lock already serializes claims, so selecting and
/// updating together is safe and saves a round trip. Public (the caller adds RETURNING) so `bench
/// explain` shows the plan of this very statement.
pub const CLAIM_PLANNED: &str = "WITH due AS (
             SELECT id, rule, max_concurrent, next_attempt_at, created_at,
                    row_number() OVER (PARTITION BY rule ORDER BY next_attempt_at, created_at) AS turn
             FROM launches WHERE state = 'planned' AND next_attempt_at <= now()
               AND controller = $5
               AND rule NOT IN (SELECT rule FROM rule_pauses WHERE paused_at IS NOT NULL)
         ), busy AS (
             SELECT rule, count(*) AS n FROM launches
             WHERE state IN ('launching', 'launched')
               AND rule IN (SELECT rule FROM due WHERE max_concurrent IS NOT NULL)
             GROUP BY rule
         ), pick AS (
             SELECT d.id FROM due d LEFT JOIN busy b USING (rule)
             WHERE d.max_concurrent IS NULL OR d.turn <= d.max_concurrent - COALESCE(b.n, 0)
             ORDER BY d.turn, d.next_attempt_at, d.created_at
             LIMIT $1
         )
         UPDATE launches SET state = 'launching', attempts = attempts + 1, owner = $2,
             launching_at = now(),
             sent_at = CASE WHEN $3 AND template_id IS NOT NULL THEN now() END,
             sends = sends + CASE WHEN $3 AND template_id IS NOT NULL THEN 1 ELSE 0 END,
             first_empty_read_at = NULL,
             reconcile_errors = 0, lease_until = now() + make_interval(secs => $4),
             updated_at = now()
         WHERE id IN (SELECT id FROM pick) AND state = 'planned'";

/// Claims up to `limit` due planned launches, fairly: each rule's oldest first, round-robin
/// across rules, and a rule at its `max_concurrent` cap is skipped without holding back others.
/// Paused rules are skipped (the caller holds their launches first, `held::hold_planned`).
/// With `ready` (the controller is discovered and reachable), a row whose template id is known
/// needs no preparation: its claim is its owner check and stamps `sent_at`, saving a commit
/// (an fsync) on the way to the POST. The others confirm with `confirm_send` after preparing.
/// Run inside the caller's transaction, after `lock_claims`.
pub async fn claim_planned(
    conn: &mut PgConnection,
    limit: i64,
    lease_secs: u64,
    owner: &str,
    ready: bool,
    controller: &str,
) -> Result<Vec<LaunchRow>, sqlx::Error> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    sqlx::query_as(&format!("{CLAIM_PLANNED} RETURNING {COLUMNS}"))
        .bind(limit)
        .bind(owner)
        .bind(ready)
        .bind(lease_secs as f64)
        .bind(controller)
        .fetch_all(conn)
        .await
}

/// `launching` rows whose lease ran out (owner dead or stalled) or whose unclear launch is due
/// for its next check. The caller reconciles them; it never POSTs for a row with `sent_at`.
/// Like every claim it bumps `attempts`, so a stalled owner that wakes up changes nothing.
pub async fn claim_stale(
    pool: &PgPool,
    limit: i64,
    lease_secs: u64,
    owner: &str,
    controller: &str,
) -> Result<Vec<LaunchRow>, sqlx::Error> {
    if limit <= 0 {
        return Ok(Vec::new());
    }
    sqlx::query_as(&format!(
        "UPDATE launches SET owner = $3, attempts = attempts + 1,
             lease_until = now() + make_interval(secs => $2), updated_at = now()
         WHERE id IN (SELECT id FROM launches WHERE state = 'launching' AND lease_until < now()
                        AND controller = $4
                      ORDER BY lease_until LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(limit)
    .bind(lease_secs as f64)
    .bind(owner)
    .bind(controller)
    .fetch_all(pool)
    .await
}

/// Extends the lease while this attempt works. False: another replica owns the row now.
pub async fn heartbeat(pool: &PgPool, f: &Fence, lease_secs: u64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET lease_until = now() + make_interval(secs => $4)
         WHERE id = $1 AND attempts = $2 AND owner = $3 AND state = 'launching'",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(&f.owner)
    .bind(lease_secs as f64)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The owner check right before the POST: still ours, lease still live, not sent yet, and its
/// rule not paused. Stamps `sent_at`. False: do not POST.
pub async fn confirm_send(pool: &PgPool, f: &Fence, lease_secs: u64) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET sent_at = now(), sends = sends + 1,
             lease_until = now() + make_interval(secs => $4),
             updated_at = now()
         WHERE id = $1 AND attempts = $2 AND owner = $3 AND state = 'launching'
           AND sent_at IS NULL AND lease_until > now()
           AND rule NOT IN (SELECT rule FROM rule_pauses WHERE paused_at IS NOT NULL)",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(&f.owner)
    .bind(lease_secs as f64)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_template_id(
    pool: &PgPool,
    f: &Fence,
    template_id: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE launches SET template_id = $3 WHERE id = $1 AND attempts = $2")
        .bind(f.id)
        .bind(f.attempt)
        .bind(template_id)
        .execute(pool)
        .await
        .map(|_| ())
}

pub struct Started<'a> {
    pub job_id: i64,
    pub status: crate::domain::JobStatus,
    pub url: &'a str,
    pub ignored_fields: Option<&'a Value>,
}

/// `launching` -> `launched`. False if this attempt no longer owns the row's state.
pub async fn mark_launched(
    conn: &mut PgConnection,
    f: &Fence,
    s: &Started<'_>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET state = 'launched', job_id = $3, job_status = $4, job_url = $5,
             ignored_fields = $6, launched_at = now(), lease_until = NULL, owner = NULL,
             last_error = NULL, updated_at = now()
         WHERE id = $1 AND attempts = $2 AND state = 'launching'",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(s.job_id)
    .bind(s.status)
    .bind(s.url)
    .bind(s.ignored_fields.map(Json))
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// `launching` -> `planned` after `delay_ms`: nothing reached the controller, or reconciliation
/// proved that nothing launched. False if the attempt lost the row.
pub async fn back_to_planned(
    pool: &PgPool,
    f: &Fence,
    error: &str,
    delay_ms: u64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET state = 'planned', last_error = $3, lease_until = NULL, owner = NULL,
             sent_at = NULL, next_attempt_at = now() + make_interval(secs => $4), updated_at = now()
         WHERE id = $1 AND attempts = $2 AND state = 'launching'",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(error)
    .bind(delay_ms as f64 / 1000.0)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The launch may exist: stays `launching`, ownerless, and is read again after `after_secs`.
pub async fn check_later(
    pool: &PgPool,
    f: &Fence,
    error: &str,
    after_secs: f64,
    count_error: bool,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET last_error = $3, owner = NULL,
             lease_until = now() + make_interval(secs => $4),
             reconcile_errors = reconcile_errors + CASE WHEN $5 THEN 1 ELSE 0 END,
             updated_at = now()
         WHERE id = $1 AND attempts = $2 AND state = 'launching' AND sent_at IS NOT NULL",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(error)
    .bind(after_secs.max(0.0))
    .bind(count_error)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a read (after the settle window) that found no job with the marker. Returns true
/// when an earlier such read happened at least `gap_secs` ago: two reads apart, both empty.
pub async fn empty_read(pool: &PgPool, f: &Fence, gap_secs: u64) -> Result<bool, sqlx::Error> {
    let concluded: Option<bool> = sqlx::query_scalar(
        "UPDATE launches SET first_empty_read_at = COALESCE(first_empty_read_at, now()),
             updated_at = now()
         WHERE id = $1 AND attempts = $2 AND state = 'launching'
         RETURNING first_empty_read_at <= now() - make_interval(secs => $3)",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(gap_secs as f64)
    .fetch_optional(pool)
    .await?;
    Ok(concluded.unwrap_or(false))
}

/// `launching` -> `rejected` or `unknown`, with the reason. False if the attempt lost the row.
pub async fn settle<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    f: &Fence,
    state: LaunchState,
    error: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE launches SET state = $3, last_error = $4, lease_until = NULL, owner = NULL,
             updated_at = now()
         WHERE id = $1 AND attempts = $2 AND state = 'launching'",
    )
    .bind(f.id)
    .bind(f.attempt)
    .bind(state)
    .bind(error)
    .execute(ex)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// The controller answers again: launches that waited for it are due now, and unclear ones
/// are read again at once (instead of each at the end of its own backoff).
pub async fn release_waiting(pool: &PgPool, controller: &str) -> Result<u64, sqlx::Error> {
    let planned = sqlx::query(
        "UPDATE launches SET next_attempt_at = now()
         WHERE state = 'planned' AND next_attempt_at > now() AND controller = $1",
    )
    .bind(controller)
    .execute(pool)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE launches SET lease_until = now()
         WHERE state = 'launching' AND owner IS NULL AND lease_until > now() AND controller = $1",
    )
    .bind(controller)
    .execute(pool)
    .await?;
    Ok(planned)
}
