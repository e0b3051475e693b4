//! Why an open launch (`planned`, `launching`, `held`) waits, as data: the same words the API,
//! the CLI and the console show. Decided from the row, its rule's pause and storm cap, and this
//! replica's view of the launch's own controller, in the order the claim decides them.

use super::sql::rows::{self, OpenLaunch};
use crate::controller::{Health, HealthByName};
use crate::domain::{EventId, LaunchId, LaunchState};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;

/// Why a launch waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The controller does not answer (or its gateway cannot reach it); probed every second.
    ControllerUnreachable,
    /// The controller answered something an operator must fix (no API at the URL, say).
    ControllerMisconfigured,
    /// Its controller is not live on this replica (no longer configured, or marked `dry_run`).
    ControllerNotServed,
    /// Its rule is paused: the next claim holds it.
    RulePaused,
    /// Held while its rule is paused; released or dropped on resume.
    Held,
    /// Its rule needs a person's `/approve` on the ticket (or in the console) first.
    AwaitingApproval,
    /// Its rule runs `max_concurrent` jobs already.
    Capped,
    /// Not sent; tried again after a backoff.
    Backoff,
    /// Due now, waiting for a free launch slot.
    Queued,
    /// Claimed: discovering, looking up the template, or confirming ownership.
    Preparing,
    /// The POST is on its way.
    Sending,
    /// The controller's answer was unclear: read again until the settle window decides.
    SettlingUnclearAnswer,
}

/// Why a launch waits, since when, until when (when known), and what the bridge last saw.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    pub reason: WaitReason,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub detail: String,
}

/// Each live controller as this replica sees it, and since when. None where the process runs
/// no launcher (the CLI): then the controller reasons are left out.
pub type ControllerView = Option<HealthByName>;

/// Why each open launch of these events waits, by launch id.
pub async fn of_events(
    pool: &PgPool,
    events: &[EventId],
    controller: &ControllerView,
) -> Result<HashMap<LaunchId, Waiting>, sqlx::Error> {
    let open = rows::open_of_events(pool, events).await?;
    Ok(open
        .iter()
        .filter_map(|l| why(l, controller).map(|w| (l.id, w)))
        .collect())
}

/// Why `l` waits; None when it does not (it is not open).
pub fn why(l: &OpenLaunch, controller: &ControllerView) -> Option<Waiting> {
    let wait = |reason, since, until, detail: String| {
        Some(Waiting {
            reason,
            since,
            until,
            detail,
        })
    };
    let error = || l.last_error.clone().unwrap_or_default();
    let pause = || match l.pause_reason.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => format!("rule paused: {r}"),
        None => "rule paused".to_string(),
    };
    match l.state {
        LaunchState::AwaitingApproval => wait(
            WaitReason::AwaitingApproval,
            Some(l.created_at),
            l.approval_expires_at,
            "`/approve` on the ticket, or approve it in the console; `/deny` cancels it".into(),
        ),
        LaunchState::Held => wait(
            WaitReason::Held,
            l.held_at,
            None,
            format!("{}; resume the rule to release or drop it", pause()),
        ),
        LaunchState::Planned => {
            if l.paused_at.is_some() {
                let detail = format!("{}; the next claim holds it", pause());
                return wait(WaitReason::RulePaused, l.paused_at, None, detail);
            }
            match controller.as_ref().map(|c| c.get(&l.controller)) {
                Some(None) => {
                    let detail = format!(
                        "no live controller `{}` on this replica (not configured, or dry_run); \
                         it waits until a replica that has it claims it",
                        l.controller
                    );
                    return wait(WaitReason::ControllerNotServed, None, None, detail);
                }
                Some(Some((Health::Unreachable { error }, since))) => {
                    return wait(
                        WaitReason::ControllerUnreachable,
                        Some(*since),
                        None,
                        error.clone(),
                    )
                }
                Some(Some((Health::ConfigError { error }, since))) => {
                    return wait(
                        WaitReason::ControllerMisconfigured,
                        Some(*since),
                        None,
                        error.clone(),
                    )
                }
                _ => {}
            }
            if l.next_attempt_at > l.db_now {
                return wait(WaitReason::Backoff, None, Some(l.next_attempt_at), error());
            }
            if let Some(max) = l.max_concurrent.filter(|m| l.running >= i64::from(*m)) {
                let detail = format!("{} of {max} running for its rule", l.running);
                return wait(WaitReason::Capped, Some(l.next_attempt_at), None, detail);
            }
            let detail = "due now; waiting for a free launch slot".to_string();
            wait(WaitReason::Queued, Some(l.next_attempt_at), None, detail)
        }
        LaunchState::Launching => match (l.sent_at, &l.owner) {
            (None, _) => wait(
                WaitReason::Preparing,
                l.launching_at,
                l.lease_until,
                format!("claimed by {}", l.owner.as_deref().unwrap_or("a replica")),
            ),
            (Some(sent), Some(owner)) => wait(
                WaitReason::Sending,
                Some(sent),
                l.lease_until,
                format!("POST sent by {owner}"),
            ),
            (Some(sent), None) => wait(
                WaitReason::SettlingUnclearAnswer,
                Some(sent),
                l.lease_until.map(|u| u.max(l.db_now)),
                format!(
                    "{}; the controller is read again then, and the launch is sent again only \
                     after the settle window if two reads find no job with its marker",
                    error()
                ),
            ),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn open(state: LaunchState) -> OpenLaunch {
        let now = Utc::now();
        OpenLaunch {
            id: LaunchId::new(),
            state,
            controller: "default".into(),
            created_at: now,
            next_attempt_at: now,
            launching_at: None,
            sent_at: None,
            owner: None,
            lease_until: None,
            held_at: None,
            last_error: None,
            max_concurrent: None,
            running: 0,
            paused_at: None,
            pause_reason: None,
            approval_expires_at: None,
            db_now: now,
        }
    }

    fn reason(l: &OpenLaunch, c: &ControllerView) -> Option<WaitReason> {
        why(l, c).map(|w| w.reason)
    }

    #[test]
    fn the_claims_order_decides() {
        let one = |h: Health| -> ControllerView {
            Some([("default".to_string(), (h, Utc::now()))].into())
        };
        let ok = one(Health::Ok);
        let down = one(Health::Unreachable {
            error: "503".into(),
        });
        let mut l = open(LaunchState::Planned);
        assert_eq!(reason(&l, &ok), Some(WaitReason::Queued));
        assert_eq!(reason(&l, &None), Some(WaitReason::Queued), "the CLI");
        assert_eq!(reason(&l, &down), Some(WaitReason::ControllerUnreachable));
        l.controller = "lab".into();
        assert_eq!(reason(&l, &ok), Some(WaitReason::ControllerNotServed));
        assert_eq!(reason(&l, &down), Some(WaitReason::ControllerNotServed));
        l.controller = "default".into();
        l.max_concurrent = Some(2);
        l.running = 2;
        assert_eq!(reason(&l, &ok), Some(WaitReason::Capped));
        l.next_attempt_at = l.db_now + Duration::seconds(5);
        assert_eq!(reason(&l, &ok), Some(WaitReason::Backoff));
        l.paused_at = Some(l.db_now);
        assert_eq!(
            reason(&l, &down),
            Some(WaitReason::RulePaused),
            "a pause wins"
        );
        assert_eq!(
            reason(&open(LaunchState::Held), &ok),
            Some(WaitReason::Held)
        );
        let mut s = open(LaunchState::Launching);
        assert_eq!(reason(&s, &ok), Some(WaitReason::Preparing));
        s.sent_at = Some(s.db_now);
        s.owner = Some("r1".into());
        assert_eq!(reason(&s, &ok), Some(WaitReason::Sending));
        s.owner = None;
        s.lease_until = Some(s.db_now + Duration::seconds(10));
        let w = why(&s, &ok).unwrap();
        assert_eq!(w.reason, WaitReason::SettlingUnclearAnswer);
        assert!(w.until.is_some());
        assert_eq!(reason(&open(LaunchState::Launched), &ok), None);
    }
}
