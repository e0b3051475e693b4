//! Approval from the ticket (README "Approval"): a rule with `approval:` plans its launch
//! `awaiting_approval`, tells the ticket how to approve it, and a person's `/approve` or
//! `/deny` on the same ticket decides it.
//!
//! ```text
//!   plan ──▶ awaiting_approval ──/approve, allowed──▶ planned ──▶ the launch path (once)
//!                 │   ├──────────/deny, allowed─────▶ denied  (ticket told)
//!                 │   └──────────expires_at passed──▶ expired (ticket told)
//!                 └─ a command not allowed (not a writer, not an approver, self) changes
//!                    nothing; the ticket is told once per launch
//! ```
//!
//! Commands arrive as signed webhooks like any event; the bridge's own post-backs are ignored
//! at ingest, so a note quoting `/approve` cannot approve anything. The dispatcher stores each
//! command (`approval_commands`, one per event, so a redelivery is one command); any replica's
//! worker applies it with a decision fenced on the launch's state (`launch::sql::approval`).

mod check;
mod command;
mod operator;
mod sql;

pub use crate::domain::approval::{may_be_command, Field, Policy, Stored};
pub use command::{command_of, raised_by, ticket_key, Command, Verb};
pub use operator::{decide as decide_by_operator, NotDecided};

use crate::domain::{LaunchId, LaunchState, SourceKind};
use crate::launch::sql::approval as launches;
use crate::launch::sql::rows;
use crate::launch::LaunchRow;
use crate::mapping::{EventView, Planned};
use crate::postback::{self, PostbackNews};
use crate::runtime::Context;
use check::{may_decide, Ask, Verdict};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::sync::Arc;

/// A permission check that keeps failing gives up after this many tries (refused, said so).
const MAX_CHECKS: i32 = 8;
/// Expired requests settled per round.
const EXPIRE_BATCH: i64 = 100;

/// Stores the command of event `e` (the dispatcher's transaction).
pub async fn record(conn: &mut PgConnection, e: &EventView, c: &Command) -> anyhow::Result<()> {
    sql::record(conn, e.id, c).await?;
    tracing::info!(event_id = %e.id, verb = c.verb.as_str(), actor = %c.actor, ticket = %c.ticket,
        "approval command stored");
    Ok(())
}

/// A launch just planned `awaiting_approval`: records the request and tells the ticket how to
/// approve it (in the dispatcher's transaction).
pub async fn request(
    conn: &mut PgConnection,
    ctx: &Context,
    e: &EventView,
    p: &Planned,
    launch: LaunchId,
) -> anyhow::Result<()> {
    let Some(policy) = &p.approval else {
        return Ok(());
    };
    let Some(ticket) = ticket_key(&e.source, e.kind, &e.ticket) else {
        // No ticket to take a command from: only the console can approve it.
        tracing::warn!(event_id = %e.id, rule = %p.rule, "the event names no ticket: approve it from the console");
        return Ok(());
    };
    let stored = Stored {
        approvers: policy.approvers.clone(),
        allow_self_approval: policy.allow_self_approval,
        raised_by: raised_by(e),
        field: policy.field(),
    };
    let Some(expires) =
        launches::request(conn, launch, &stored, &ticket, policy.timeout_secs).await?
    else {
        return Ok(());
    };
    let row = rows::get(conn, launch).await?;
    let text = how_to_approve(&row, &stored, expires);
    postback::enqueue(conn, ctx, &row.target(), PostbackNews::Approval { text }).await?;
    tracing::info!(launch_id = %launch, rule = %p.rule, %expires, "launch awaits approval");
    Ok(())
}

fn how_to_approve(row: &LaunchRow, s: &Stored, expires: DateTime<Utc>) -> String {
    let when = expires.format("%Y-%m-%d %H:%M UTC");
    let who = match (row.kind, s.approvers.is_empty()) {
        (SourceKind::Github, true) => "someone with write access".to_string(),
        (SourceKind::Github, false) => format!(
            "someone with write access (or one of {})",
            s.approvers.join(", ")
        ),
        (_, _) => format!("one of {}", s.approvers.join(", ")),
    };
    let what = row.target().template_label();
    if let Some(f) = &s.field {
        let who = match s.approvers.is_empty() {
            true => "someone".to_string(),
            false => format!("one of {}", s.approvers.join(", ")),
        };
        return format!(
            "Awaiting approval: {what} for rule {} will run when {who} sets {} to {} \
             (expires {when}); {} cancels it.",
            row.rule, f.name, f.approve, f.deny
        );
    }
    let how = match row.kind {
        SourceKind::Pagerduty => "adds a note",
        _ => "comments",
    };
    format!(
        "Awaiting approval: {what} for rule {} will run when {who} {how} `/approve` (expires \
         {when}); `/deny` cancels it.",
        row.rule
    )
}

/// One round of the approvals worker: settles expired requests, then applies one command.
/// True when there may be more to do at once.
pub async fn step(ctx: Arc<Context>) -> anyhow::Result<bool> {
    let expired = expire(&ctx).await?;
    let applied = apply_next(&ctx).await?;
    Ok(expired == EXPIRE_BATCH as usize || applied)
}

async fn expire(ctx: &Context) -> anyhow::Result<usize> {
    let mut tx = ctx.pool.begin().await?;
    let rows = launches::expire(&mut tx, EXPIRE_BATCH).await?;
    for row in &rows {
        let text = format!(
            "Not launched: nobody approved {} for rule {} in time; the request expired.",
            row.target().template_label(),
            row.rule
        );
        let news = PostbackNews::ApprovalDecided { text };
        postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
        tracing::info!(launch_id = %row.id, rule = %row.rule, "approval request expired");
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// Applies the oldest due command, if any. The command's row stays locked while its permission
/// is checked, so no other replica applies it meanwhile; the launches are not (an operator's
/// decision or the expiry never waits on GitHub), since each decision is fenced on its state.
async fn apply_next(ctx: &Context) -> anyhow::Result<bool> {
    let mut tx = ctx.pool.begin().await?;
    let Some(cmd) = sql::claim(&mut tx).await? else {
        return Ok(false);
    };
    let verb = cmd.verb();
    let awaiting = launches::awaiting(&mut tx, &cmd.ticket).await?;
    if awaiting.is_empty() {
        let outcome = late(&mut tx, ctx, &cmd.ticket, verb, &cmd.actor).await?;
        sql::settle(&mut tx, cmd.event_id, "moot", &outcome).await?;
        tx.commit().await?;
        return Ok(true);
    }
    let mut outcomes = Vec::new();
    let mut refused = false;
    for a in &awaiting {
        let row = rows::get(&mut tx, a.id).await?;
        let policy = a.approval.as_ref().map(|p| p.0.clone()).unwrap_or(Stored {
            approvers: Vec::new(),
            allow_self_approval: false,
            raised_by: None,
            field: None,
        });
        let ask = Ask {
            notifier: &ctx.notifier,
            source: &row.source,
            kind: row.kind,
            repo: row.ticket.0.get("repo").and_then(|r| r.as_str()),
            policy: &policy,
            verb,
            actor: &cmd.actor,
        };
        let why = match may_decide(&ask).await {
            Verdict::Allowed(why) => {
                outcomes.push(decide(&mut tx, ctx, &row, verb, &cmd.actor, &why).await?);
                continue;
            }
            Verdict::Unknown(why) if cmd.attempts + 1 < MAX_CHECKS => {
                // Tried again later; nothing decided, nothing said.
                drop(tx);
                let mut conn = ctx.pool.acquire().await?;
                let delay = 2f64.powi(cmd.attempts.min(8));
                sql::retry(&mut conn, cmd.event_id, delay, &why).await?;
                tracing::warn!(actor = %cmd.actor, %why, "approval command: permission not checked; retrying");
                return Ok(false);
            }
            Verdict::Unknown(why) => format!("the permission could not be checked ({why})"),
            Verdict::Refused(why) => why,
        };
        refused = true;
        let text = format!(
            "`/{}` from {} changes nothing: {why}.",
            verb.as_str(),
            cmd.actor
        );
        let news = PostbackNews::ApprovalRefused { text };
        postback::enqueue(&mut tx, ctx, &row.target(), news).await?;
        tracing::warn!(launch_id = %row.id, actor = %cmd.actor, %why, "approval command refused");
        outcomes.push(format!("launch {}: refused: {why}", row.id));
    }
    let state = if refused { "refused" } else { "applied" };
    sql::settle(&mut tx, cmd.event_id, state, &outcomes.join("; ")).await?;
    tx.commit().await?;
    ctx.wake_launch.notify_one();
    Ok(true)
}

/// Applies an allowed decision to one launch (fenced: the first decision wins).
async fn decide(
    conn: &mut PgConnection,
    ctx: &Context,
    row: &LaunchRow,
    verb: Verb,
    actor: &str,
    why: &str,
) -> anyhow::Result<String> {
    match verb {
        Verb::Approve => {
            if launches::approve(conn, row.id, actor).await?.is_some() {
                tracing::info!(launch_id = %row.id, rule = %row.rule, %actor, %why, "launch approved");
                metrics::counter!("aap_bridge_approvals_total", "result" => "approved")
                    .increment(1);
                return Ok(format!("launch {}: approved ({why})", row.id));
            }
        }
        Verb::Deny => {
            if let Some(denied) = launches::deny(conn, row.id, actor).await? {
                let text = format!(
                    "Not launched: {} for rule {} was denied by {actor}.",
                    denied.target().template_label(),
                    denied.rule
                );
                let news = PostbackNews::ApprovalDecided { text };
                postback::enqueue(conn, ctx, &denied.target(), news).await?;
                tracing::info!(launch_id = %row.id, rule = %row.rule, %actor, "launch denied");
                metrics::counter!("aap_bridge_approvals_total", "result" => "denied").increment(1);
                return Ok(format!("launch {}: denied ({why})", row.id));
            }
        }
    }
    Ok(format!("launch {}: already decided", row.id))
}

/// A command on a ticket where nothing awaits approval: if something was decided there, the
/// ticket is told once ("already approved by …").
async fn late(
    conn: &mut PgConnection,
    ctx: &Context,
    ticket: &str,
    verb: Verb,
    actor: &str,
) -> anyhow::Result<String> {
    let Some((id, state, by)) = launches::last_decided(conn, ticket).await? else {
        return Ok("nothing awaits approval on this ticket".into());
    };
    let what = match (state.parse::<LaunchState>().ok(), by) {
        (Some(LaunchState::Denied), Some(by)) => format!("it was already denied by {by}"),
        (Some(LaunchState::Expired), _) => "its approval request already expired".to_string(),
        (_, Some(by)) => format!("it was already approved by {by}"),
        (_, None) => return Ok("nothing awaits approval on this ticket".into()),
    };
    let row = rows::get(conn, id).await?;
    let text = format!("`/{}` from {actor} changes nothing: {what}.", verb.as_str());
    postback::enqueue(
        conn,
        ctx,
        &row.target(),
        PostbackNews::ApprovalLate { text },
    )
    .await?;
    Ok(what)
}
