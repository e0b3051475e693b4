//! The rule's `on_ignored_fields` as stored on the launch, and the `rejected` transition for a
//! job whose template dropped fields.

use crate::domain::LaunchId;
use crate::mapping::OnIgnored;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgConnection;

pub async fn on_ignored_fields<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    id: LaunchId,
) -> Result<OnIgnored, sqlx::Error> {
    let s: Option<String> =
        sqlx::query_scalar("SELECT on_ignored_fields FROM launches WHERE id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(s.as_deref().and_then(OnIgnored::parse).unwrap_or_default())
}

/// The fields the controller ignored at launch, as recorded on the row.
pub async fn ignored_fields<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    id: LaunchId,
) -> Result<Option<Value>, sqlx::Error> {
    let v: Option<Option<Json<Value>>> =
        sqlx::query_scalar("SELECT ignored_fields FROM launches WHERE id = $1")
            .bind(id)
            .fetch_optional(ex)
            .await?;
    Ok(v.flatten().map(|j| j.0))
}

pub struct Refused<'a> {
    pub job_id: i64,
    pub url: &'a str,
    pub ignored_fields: &'a Value,
    pub reason: &'a str,
}

/// `launching` -> `rejected` for a job that was created and then canceled because the template
/// ignored fields the rule needs. Keeps the job id and link. False if no longer `launching`.
pub async fn reject_ignored(
    conn: &mut PgConnection,
    f: &super::fence::Fence,
    r: &Refused<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE launches SET state = 'rejected', job_id = $2, job_url = $3, ignored_fields = $4,
             last_error = $5, lease_until = NULL, owner = NULL, updated_at = now()
         WHERE id = $1 AND attempts = $6 AND state = 'launching'",
    )
    .bind(f.id)
    .bind(r.job_id)
    .bind(r.url)
    .bind(Json(r.ignored_fields))
    .bind(r.reason)
    .bind(f.attempt)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
