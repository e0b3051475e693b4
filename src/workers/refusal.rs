//! A launch the bridge itself refused because of a rendered value (see `mapping::guard`): it is
//! recorded as a `rejected` launch with the reason, and the ticket is told, all in the
//! dispatcher's transaction, so nobody waits for a job that is not coming.

use super::dispatcher::insert_launch;
use super::postback::{self, Outcome};
use super::Context;
use crate::mapping::{EventView, Refused};
use crate::notify::Phase;
use crate::store::launches::{self, LaunchState};
use uuid::Uuid;

pub async fn record(
    conn: &mut sqlx::PgConnection,
    ctx: &Context,
    e: &EventView,
    r: &Refused,
) -> anyhow::Result<()> {
    let id = Uuid::now_v7();
    insert_launch(conn, e, &r.launch, id, LaunchState::Rejected, (None, None)).await?;
    // Nothing changed: this event's rule already has a launch (a replay); tell nobody twice.
    let set =
        sqlx::query("UPDATE launches SET last_error = $2 WHERE id = $1 AND state = 'rejected'")
            .bind(id)
            .bind(&r.reason)
            .execute(&mut *conn)
            .await?;
    if set.rows_affected() == 0 {
        return Ok(());
    }
    tracing::warn!(event_id = %e.id, launch_id = %id, rule = %r.launch.rule, reason = %r.reason,
        "launch refused: a rendered value is not safe to send");
    metrics::counter!("aap_bridge_launches_total", "result" => "rejected").increment(1);
    // Dry-run posts nothing back.
    if ctx.controller.is_none() {
        return Ok(());
    }
    let row = launches::get(conn, id).await?;
    let outcome = Outcome {
        job_id: 0,
        url: "",
        status: Some(LaunchState::Rejected.as_str()),
        elapsed: None,
        stdout_tail: None,
        problem: Some(format!("the bridge refused it: {}", r.reason)),
    };
    postback::enqueue(conn, ctx, &row, Phase::Finished, outcome).await?;
    Ok(())
}
