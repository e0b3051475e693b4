//! A launch answered 201 with `ignored_fields`: the template does not prompt for them, so the job
//! runs without them (for extra_vars, the bridge's markers too). The rule's `on_ignored_fields`
//! decides: `warn` keeps the job (the "launched" post-back names the fields), `fail` cancels it
//! and settles the launch `rejected`, telling the ticket.

use super::sql::fence::Fence;
use super::sql::policy::{self as launch_policy, Refused};
use super::sql::rows::LaunchRow;
use crate::controller::{Canceled, Controller, ControllerError, Launched};
use crate::domain::LaunchState;
use crate::mapping::OnIgnored;
use crate::postback::{self, field_names, PostbackNews};
use crate::runtime::Context;
use serde_json::{Map, Value};

/// What the launcher does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Record the launch as usual (`mark_launched` with `ignored_fields`); the "launched"
    /// post-back enqueued in that transaction names the ignored fields.
    Keep,
    /// Done: the job was canceled (or had already ended), the launch settled `rejected` with
    /// `reason`, and the ticket told. Record nothing else.
    Rejected { reason: String },
}

/// Call after a launch POST answered `LaunchOutcome::Partial`, before recording it. Reads the
/// rule's choice from the launch row, and for `fail` cancels the job and settles the launch.
/// Errors are store errors, or a cancel the controller would not do (the launch is then left
/// `launching`, for the caller to handle like any failed bookkeeping).
pub async fn on_ignored_fields(
    ctx: &Context,
    c: &Controller,
    row: &LaunchRow,
    fence: &Fence,
    launched: &Launched,
    ignored: &Map<String, Value>,
) -> anyhow::Result<Verdict> {
    let all = Value::Object(ignored.clone());
    let fields = field_names(Some(&all));
    if fields.is_empty() {
        return Ok(Verdict::Keep);
    }
    let choice = launch_policy::on_ignored_fields(&ctx.pool, row.id).await?;
    tracing::warn!(launch_id = %row.id, job_id = launched.job_id, ignored = ?fields,
        on_ignored_fields = choice.as_str(), "the controller ignored fields the template does not prompt for");
    if choice == OnIgnored::Warn {
        return Ok(Verdict::Keep);
    }
    let canceled = cancel(c, launched).await?;
    let reason = rejection_reason(&row.rule, &fields, launched.job_id, canceled);
    let api = c.api().await?;
    let url = c.job_link(api, launched.kind, launched.job_id);
    let mut tx = ctx.pool.begin().await?;
    let refused = Refused {
        job_id: launched.job_id,
        url: &url,
        ignored_fields: &all,
        reason: &reason,
    };
    let settled = launch_policy::reject_ignored(&mut tx, fence, &refused).await?;
    if settled {
        let news = PostbackNews::NoJob {
            state: LaunchState::Rejected,
            problem: reason.clone(),
            job: Some((launched.job_id, &url)),
        };
        postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
    }
    tx.commit().await?;
    if settled {
        metrics::counter!("aap_bridge_launches_total", "controller" => ctx.lane.clone(), "result" => "rejected")
            .increment(1);
    }
    Ok(Verdict::Rejected { reason })
}

async fn cancel(c: &Controller, l: &Launched) -> Result<Canceled, ControllerError> {
    let result = c.cancel_job(l.kind, l.job_id).await?;
    match result {
        Canceled::Canceled => tracing::info!(job_id = l.job_id, "canceled the job"),
        Canceled::AlreadyDone => tracing::info!(job_id = l.job_id, "the job had already ended"),
        Canceled::Gone => tracing::info!(job_id = l.job_id, "the job is already gone"),
    }
    Ok(result)
}

/// The launch's `last_error`, and what the ticket reads.
pub fn rejection_reason(rule: &str, fields: &[String], job_id: i64, c: Canceled) -> String {
    let what = match c {
        Canceled::Canceled => format!("job {job_id} was canceled"),
        Canceled::AlreadyDone => format!("job {job_id} had already ended"),
        Canceled::Gone => format!("job {job_id} is gone"),
    };
    format!(
        "the controller ignored {} (the template does not prompt for {} on launch) and rule {rule} \
         sets on_ignored_fields: fail, so {what}",
        fields.join(", "),
        if fields.len() == 1 { "it" } else { "them" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_fields_rule_and_job() {
        let r = rejection_reason("r1", &["extra_vars".into()], 12, Canceled::Canceled);
        assert_eq!(
            r,
            "the controller ignored extra_vars (the template does not prompt for it on launch) \
             and rule r1 sets on_ignored_fields: fail, so job 12 was canceled"
        );
        let r = rejection_reason(
            "r1",
            &["extra_vars".into(), "limit".into()],
            3,
            Canceled::AlreadyDone,
        );
        assert!(
            r.contains("extra_vars, limit")
                && r.contains("them")
                && r.ends_with("job 3 had already ended")
        );
    }
}
