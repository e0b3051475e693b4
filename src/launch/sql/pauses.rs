//! `rule_pauses`: the circuit breaker per rule (README "Circuit breaker"): how many jobs in a
//! row failed, and whether the rule is paused, since when, by whom and why. Every replica reads
//! it, so a pause takes effect everywhere.
//!
//! Lock order: a pause or a resume locks the rule's row, then takes `fence::lock_claims`, so a
//! claim (which holds paused rules' planned launches first, `claim::step`) runs wholly before or
//! wholly after it: no planned launch slips past a pause, and no held launch is left behind by a
//! resume.

use super::fence as attempts;
use crate::domain::JobStatus;
pub use crate::domain::PausedBy;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// A paused rule.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Pause {
    pub rule: String,
    pub paused_at: DateTime<Utc>,
    pub paused_by: PausedBy,
    pub reason: Option<String>,
}

impl Pause {
    /// Why the rule is paused, for a ticket or a log line.
    pub fn why(&self) -> String {
        let who = match self.paused_by {
            PausedBy::Auto => "paused automatically",
            PausedBy::Operator => "paused by an operator",
        };
        match self
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            Some(r) => format!("{who}: {r}"),
            None => who.to_string(),
        }
    }
}

const PAUSE: &str = "rule, paused_at, paused_by, reason";

/// The paused rules among `rules`. With `share`, their rows stay locked `FOR SHARE` until the
/// transaction ends, so no resume can pass launches being held meanwhile. A claim (under
/// `lock_claims`) reads without it: no pause or resume can commit while it holds that lock.
pub async fn paused_among(
    conn: &mut PgConnection,
    rules: &[String],
    share: bool,
) -> Result<Vec<Pause>, sqlx::Error> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let lock = if share { "FOR SHARE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {PAUSE} FROM rule_pauses WHERE paused_at IS NOT NULL AND rule = ANY($1)
         ORDER BY rule {lock}"
    ))
    .bind(rules)
    .fetch_all(conn)
    .await
}

/// The rule's pause, its row locked until the transaction ends (None: not paused).
async fn lock_paused(conn: &mut PgConnection, rule: &str) -> Result<Option<Pause>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAUSE} FROM rule_pauses WHERE rule = $1 AND paused_at IS NOT NULL FOR UPDATE"
    ))
    .bind(rule)
    .fetch_optional(conn)
    .await
}

/// Pauses `rule`. An existing pause is kept as it is; the flag says whether this one is new.
pub async fn pause(
    conn: &mut PgConnection,
    rule: &str,
    by: PausedBy,
    reason: Option<&str>,
) -> Result<(Pause, bool), sqlx::Error> {
    if let Some(p) = lock_paused(conn, rule).await? {
        return Ok((p, false));
    }
    let p = sqlx::query_as(&format!(
        "INSERT INTO rule_pauses AS p (rule, paused_at, paused_by, reason)
         VALUES ($1, now(), $2, $3)
         ON CONFLICT (rule) DO UPDATE SET paused_at = COALESCE(p.paused_at, excluded.paused_at),
             paused_by = COALESCE(p.paused_by, excluded.paused_by),
             reason = CASE WHEN p.paused_at IS NULL THEN excluded.reason ELSE p.reason END,
             updated_at = now()
         RETURNING {PAUSE}"
    ))
    .bind(rule)
    .bind(by)
    .bind(reason)
    .fetch_one(&mut *conn)
    .await?;
    attempts::lock_claims(conn).await?;
    Ok((p, true))
}

/// Counts a job of `rule` that ended with `status`: `failed` and `error` add one to the run of
/// failures, `successful` ends the run, anything else (`canceled`, `missing`) leaves it as it
/// is. When the run reaches `threshold` and the rule is not paused, pauses it (`auto`) and
/// returns the pause. Runs in the transaction that records the job's end (so each job counts
/// once); the row lock orders the counts of several replicas.
pub async fn count_job_end(
    conn: &mut PgConnection,
    rule: &str,
    status: JobStatus,
    threshold: Option<u32>,
    job_id: i64,
) -> Result<Option<Pause>, sqlx::Error> {
    match status {
        JobStatus::Successful => {
            sqlx::query(
                "UPDATE rule_pauses SET failures = 0, updated_at = now()
                 WHERE rule = $1 AND failures <> 0",
            )
            .bind(rule)
            .execute(conn)
            .await?;
            return Ok(None);
        }
        JobStatus::Failed | JobStatus::Error => {}
        _ => return Ok(None),
    }
    let (failures, paused): (i32, bool) = sqlx::query_as(
        "INSERT INTO rule_pauses AS p (rule, failures) VALUES ($1, 1)
         ON CONFLICT (rule) DO UPDATE SET failures = p.failures + 1, updated_at = now()
         RETURNING failures, paused_at IS NOT NULL",
    )
    .bind(rule)
    .fetch_one(&mut *conn)
    .await?;
    let Some(n) = threshold else { return Ok(None) };
    if paused || failures < n as i32 {
        return Ok(None);
    }
    let reason = format!(
        "{failures} jobs in a row did not succeed (the last, job {job_id}, ended {status}); \
         pause_after_failures is {n}"
    );
    attempts::lock_claims(conn).await?;
    sqlx::query_as(&format!(
        "UPDATE rule_pauses SET paused_at = now(), paused_by = 'auto', reason = $2,
             updated_at = now()
         WHERE rule = $1 AND paused_at IS NULL RETURNING {PAUSE}"
    ))
    .bind(rule)
    .bind(&reason)
    .fetch_optional(conn)
    .await
}

/// Lifts the rule's pause and resets its failure count. Returns the pause that was lifted
/// (None: the rule was not paused, and nothing changed).
pub async fn resume(conn: &mut PgConnection, rule: &str) -> Result<Option<Pause>, sqlx::Error> {
    let Some(p) = lock_paused(conn, rule).await? else {
        return Ok(None);
    };
    sqlx::query(
        "UPDATE rule_pauses SET paused_at = NULL, paused_by = NULL, reason = NULL, failures = 0,
             updated_at = now()
         WHERE rule = $1",
    )
    .bind(rule)
    .execute(&mut *conn)
    .await?;
    attempts::lock_claims(conn).await?;
    Ok(Some(p))
}

/// A rule's breaker as stored: its run of failures, its pause, its held launches.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Breaker {
    pub rule: String,
    pub failures: i32,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_by: Option<PausedBy>,
    pub reason: Option<String>,
    pub held: i64,
}

/// Every rule with a breaker row or held launches, by name.
pub async fn breakers(pool: &PgPool) -> Result<Vec<Breaker>, sqlx::Error> {
    sqlx::query_as(
        "SELECT COALESCE(p.rule, h.rule) AS rule, COALESCE(p.failures, 0) AS failures,
                p.paused_at, p.paused_by, p.reason, COALESCE(h.n, 0) AS held
         FROM rule_pauses p
         FULL JOIN (SELECT rule, count(*) AS n FROM launches WHERE state = 'held' GROUP BY rule) h
           ON h.rule = p.rule
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
}

/// Whether the database knows the rule: a breaker row or held launches.
pub async fn known(pool: &PgPool, rule: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rule_pauses WHERE rule = $1)
             OR EXISTS (SELECT 1 FROM launches WHERE state = 'held' AND rule = $1)",
    )
    .bind(rule)
    .fetch_one(pool)
    .await
}

/// (rule, paused) for every breaker row, for the `aap_bridge_rule_paused` gauge.
pub async fn paused_flags(pool: &PgPool) -> Result<Vec<(String, bool)>, sqlx::Error> {
    sqlx::query_as("SELECT rule, paused_at IS NOT NULL FROM rule_pauses")
        .fetch_all(pool)
        .await
}
