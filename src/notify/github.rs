//! GitHub: an issue or pull-request comment, or a commit status.

use super::{first_chars, Message, Phase, Prepared, Quote};
use crate::event::POSTBACK_MARKER;
use serde_json::{json, Map, Value};

/// GitHub refuses commit status descriptions longer than this.
const DESCRIPTION_MAX_CHARS: usize = 140;

/// `POST /repos/{owner}/{repo}/issues/{number}/comments` with `{"body": text}`.
/// Pull requests take comments through the same issue endpoint.
pub(super) fn prepare_comment(repo: &str, number: u64, msg: &Message) -> Result<Prepared, String> {
    Ok(Prepared {
        method: "POST".into(),
        path: format!("/repos/{repo}/issues/{number}/comments"),
        body: json!({ "body": msg.text(Quote::Fenced) }),
    })
}

/// `POST /repos/{owner}/{repo}/statuses/{sha}`: pending at launch, then success, failure or
/// error. A dry run reports success with a "would launch" description, since no job will
/// ever move the status on from pending.
pub(super) fn prepare_status(
    repo: &str,
    sha: &str,
    msg: &Message,
    context: &str,
) -> Result<Prepared, String> {
    let approval = matches!(
        msg.phase,
        Phase::Approval | Phase::ApprovalRefused | Phase::ApprovalLate | Phase::ApprovalDecided
    );
    let (state, description) = if approval {
        // Waiting for a person's yes is pending; a denial or expiry ends it.
        let state = match msg.phase {
            Phase::ApprovalDecided => "error",
            _ => "pending",
        };
        let problem = msg.problem.as_deref().unwrap_or("awaiting approval");
        (state, format!("{POSTBACK_MARKER} {problem}"))
    } else if msg.phase == Phase::Held {
        (
            "pending",
            format!(
                "{POSTBACK_MARKER} Held: rule {} is paused; not launched yet",
                msg.rule
            ),
        )
    } else if msg.phase == Phase::Dropped {
        (
            "error",
            format!(
                "{POSTBACK_MARKER} Not launched: dropped while rule {} was paused",
                msg.rule
            ),
        )
    } else if let Some(problem) = &msg.problem {
        (
            "error",
            format!("{POSTBACK_MARKER} Not launched: {problem}"),
        )
    } else if msg.dry_run {
        (
            "success",
            format!("{POSTBACK_MARKER} Dry run: would launch {}", msg.template),
        )
    } else {
        match msg.phase {
            Phase::Launched if !msg.ignored_fields.is_empty() => (
                "pending",
                format!(
                    "{POSTBACK_MARKER} Job {} running; controller ignored {} ({})",
                    msg.job_id,
                    msg.ignored_fields.join(", "),
                    msg.template
                ),
            ),
            Phase::Launched => (
                "pending",
                format!(
                    "{POSTBACK_MARKER} Job {} running ({})",
                    msg.job_id, msg.template
                ),
            ),
            _ => {
                let state = match msg.status.as_deref() {
                    Some("successful") => "success",
                    Some("failed") => "failure",
                    _ => "error",
                };
                (
                    state,
                    format!(
                        "{POSTBACK_MARKER} Job {} {}{}",
                        msg.job_id,
                        msg.status.as_deref().unwrap_or("finished"),
                        msg.after()
                    ),
                )
            }
        }
    };
    let mut body = Map::new();
    body.insert("state".into(), state.into());
    if msg.job_url.starts_with("https://") || msg.job_url.starts_with("http://") {
        body.insert("target_url".into(), msg.job_url.clone().into());
    }
    body.insert(
        "description".into(),
        first_chars(&description, DESCRIPTION_MAX_CHARS).into(),
    );
    body.insert("context".into(), context.into());
    Ok(Prepared {
        method: "POST".into(),
        path: format!("/repos/{repo}/statuses/{sha}"),
        body: Value::Object(body),
    })
}
