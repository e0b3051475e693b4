//! Who may decide a request: never the person who raised it (unless the rule allows it), then
//! `approvers`, then (GitHub) write access to the repository, read from the GitHub API with
//! the source's reply token.

use super::command::Verb;
use crate::domain::approval::Stored;
use crate::domain::SourceKind;
use crate::notify::Notifier;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// May decide; says why (for the audit of the command).
    Allowed(String),
    /// May not; said on the ticket.
    Refused(String),
    /// Could not be checked now (the ticket system's API did not answer): tried again later.
    Unknown(String),
}

pub struct Ask<'a> {
    pub notifier: &'a Notifier,
    pub source: &'a str,
    pub kind: SourceKind,
    /// GitHub `owner/repo`.
    pub repo: Option<&'a str>,
    pub policy: &'a Stored,
    pub verb: Verb,
    pub actor: &'a str,
}

pub async fn may_decide(a: &Ask<'_>) -> Verdict {
    let same = |x: &str| match a.kind {
        SourceKind::Github => x.eq_ignore_ascii_case(a.actor),
        _ => x == a.actor,
    };
    // Cancelling one's own request is always allowed; approving it is not, by default.
    let own = a.policy.raised_by.as_deref().is_some_and(same);
    if own && a.verb == Verb::Approve && !a.policy.allow_self_approval {
        return Verdict::Refused(format!(
            "{} raised this event and cannot approve it (the rule does not allow self-approval)",
            a.actor
        ));
    }
    if a.policy.approvers.iter().any(|x| same(x)) {
        return Verdict::Allowed("listed in approval.approvers".into());
    }
    match a.kind {
        SourceKind::Github => github(a).await,
        // ServiceNow's own ACLs decide who may set the field; `approvers` narrows it.
        SourceKind::Servicenow if a.policy.approvers.is_empty() => {
            Verdict::Allowed("set the approval field in ServiceNow".into())
        }
        _ => Verdict::Refused(format!("{} is not in the rule's approvers", a.actor)),
    }
}

async fn github(a: &Ask<'_>) -> Verdict {
    // GitHub logins are letters, digits and `-`; `name[bot]` is an app, which holds no seat.
    if !a
        .actor
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Verdict::Refused(format!("{} is not a GitHub user", a.actor));
    }
    for team in a.policy.approvers.iter().filter(|x| x.contains('/')) {
        let Some((org, slug)) = team.split_once('/') else {
            continue;
        };
        let path = format!("/orgs/{org}/teams/{slug}/memberships/{}", a.actor);
        match a.notifier.read(a.source, &path).await {
            Ok((200, body)) if body["state"] == "active" => {
                return Verdict::Allowed(format!("member of {team}"))
            }
            Ok((404, _)) | Ok((200, _)) => {}
            Ok((status, _)) => return Verdict::Unknown(format!("team check answered {status}")),
            Err(e) => return Verdict::Unknown(format!("team check failed: {e}")),
        }
    }
    let Some(repo) = a.repo else {
        return Verdict::Refused("the ticket names no repository".into());
    };
    let path = format!("/repos/{repo}/collaborators/{}/permission", a.actor);
    match a.notifier.read(a.source, &path).await {
        Ok((200, body)) => {
            let permission = body["permission"].as_str().unwrap_or("none");
            match permission {
                "admin" | "maintain" | "write" => {
                    Verdict::Allowed(format!("{permission} permission on {repo}"))
                }
                other => Verdict::Refused(format!(
                    "{} has {other} permission on {repo}; write access is needed",
                    a.actor
                )),
            }
        }
        Ok((404, _)) => Verdict::Refused(format!("{} is not a collaborator on {repo}", a.actor)),
        Ok((status, _)) => Verdict::Unknown(format!("permission check answered {status}")),
        Err(e) => Verdict::Unknown(format!("permission check failed: {e}")),
    }
}
