//! Approval from the ticket (README "Approval"): a rule with `approval:` waits for `/approve` on
//! the same GitHub issue or PagerDuty incident, from someone allowed to give it, and then
//! launches exactly once; `/deny`, expiry and refused commands are said on the ticket.

use crate::support::pipeline::{wait_for, wait_quiescent, Options, Pipeline};
use crate::support::{Sender, TestApp};
use aap_bridge::sign::{github_signature, pagerduty_signature};
use serde_json::json;
use sqlx::PgPool;

const RULES: &str = r#"
rules:
  - name: gh-cleanup
    source: gh
    category: disk_full
    launch: 15
    approval: {timeout_secs: 3600, approvers: [acme/sre]}
  - name: pd-restart
    source: pd
    category: web-tier
    launch: 15
    approval: {approvers: [PALICE], timeout_secs: 3600}
  - name: snow-cleanup
    source: snow
    category: disk_full
    launch: 15
    approval: {field: u_automation_approval, approve: approved, deny: rejected, approvers: [bob, carol]}
"#;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

const REPO: &str = "acme/ops";
const INCIDENT: &str = "PABC123";

async fn start(pool: PgPool) -> Pipeline {
    Pipeline::start(
        pool,
        Options {
            rules: RULES,
            ..Options::default()
        },
    )
    .await
}

/// A new comment on acme/ops#42 by `login`.
async fn comment(app: &TestApp, delivery: &str, login: &str, text: &str) {
    let body = serde_json::to_vec(&json!({
        "action": "created",
        "issue": {"number": 42, "html_url": "https://github.com/acme/ops/issues/42",
                  "labels": [{"name": "disk_full"}], "title": "disk full on web01"},
        "comment": {"id": 9, "body": text, "user": {"login": login}},
        "repository": {"full_name": REPO},
        "sender": {"login": login}
    }))
    .unwrap();
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("X-GitHub-Event".into(), "issue_comment".into()),
        ("X-GitHub-Delivery".into(), delivery.into()),
        (
            "X-Hub-Signature-256".into(),
            github_signature("github-new", &body),
        ),
    ];
    let (status, answer) = app.post("gh", &headers, &body).await;
    assert!(status == 202 || status == 200, "{status} {answer}");
}

/// A note on the incident by PagerDuty user `agent`.
async fn note(app: &TestApp, event_id: &str, agent: &str, text: &str) {
    let body = serde_json::to_vec(&json!({"event": {
        "id": event_id,
        "event_type": "incident.annotated",
        "resource_type": "incident",
        "occurred_at": "2026-12-07T10:00:00Z",
        "agent": {"id": agent, "type": "user_reference"},
        "data": {"incident": {"id": INCIDENT, "type": "incident_reference",
                              "html_url": "https://acme.pagerduty.com/incidents/PABC123"},
                 "content": text, "trimmed": false, "type": "incident_note"}
    }}))
    .unwrap();
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "X-PagerDuty-Signature".into(),
            pagerduty_signature("pagerduty-new", &body),
        ),
    ];
    let (status, answer) = app.post("pd", &headers, &body).await;
    assert!(status == 202 || status == 200, "{status} {answer}");
}

/// An update of the incident by `user`, with its approval field set to `value`.
async fn snow_update(app: &TestApp, n: u32, user: &str, value: &str) {
    let body = serde_json::to_vec(&json!({
        "table": "incident",
        "sys_id": SYS_ID,
        "number": "INC0010001",
        "sys_updated_on": format!("2026-12-07 10:00:0{n}"),
        "sys_mod_count": n,
        "operation": "update",
        "category": "disk_full",
        "sys_updated_by": user,
        "u_automation_approval": {"value": value, "display_value": value},
    }))
    .unwrap();
    let delivery = format!("snow-update-{n}");
    let headers = Sender::ServiceNow.signed_headers("servicenow-new", &delivery, &body);
    let (status, answer) = app.post("snow", &headers, &body).await;
    assert!(status == 202 || status == 200, "{status} {answer}");
}

async fn states(pool: &PgPool, rule: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT state FROM launches WHERE rule = $1 ORDER BY created_at")
        .bind(rule)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn wait_state(pool: &PgPool, rule: &str, want: &str) {
    wait_for(&format!("{rule} {want}"), 20, || async {
        (states(pool, rule).await == [want]).then_some(())
    })
    .await;
}

async fn wait_comment(p: &Pipeline, needle: &str) -> Vec<String> {
    wait_for(&format!("a comment with {needle:?}"), 20, || async {
        let all = p.tickets.github_comments(REPO, 42);
        all.iter().any(|c| c.contains(needle)).then_some(all)
    })
    .await
}

async fn wait_note(p: &Pipeline, needle: &str) -> Vec<String> {
    wait_for(&format!("a note with {needle:?}"), 20, || async {
        let all = p.tickets.pagerduty_notes(INCIDENT);
        all.iter().any(|c| c.contains(needle)).then_some(all)
    })
    .await
}

#[sqlx::test]
async fn github_approve_by_a_writer_launches_once(pool: PgPool) {
    let p = start(pool.clone()).await;
    p.app.deliver(Sender::Github, "raise-1").await;
    wait_state(&pool, "gh-cleanup", "awaiting_approval").await;
    let asked = wait_comment(&p, "Awaiting approval").await;
    assert!(
        asked[0].contains("someone with write access (or one of acme/sre) comments `/approve`"),
        "{asked:?}"
    );
    assert_eq!(
        p.controller.jobs_launched(),
        0,
        "nothing runs before the yes"
    );

    // octocat raised it: approving their own event is refused.
    p.tickets.set_github_permission(REPO, "octocat", "admin");
    comment(&p.app, "c-self", "octocat", "/approve").await;
    wait_comment(&p, "cannot approve it").await;
    // A reader may not approve.
    comment(&p.app, "c-reader", "mallory", "/approve now").await;
    wait_for("the reader's command settled", 20, || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM approval_commands WHERE state <> 'pending'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (n == 2).then_some(())
    })
    .await;
    assert_eq!(states(&pool, "gh-cleanup").await, ["awaiting_approval"]);

    // A member of the approvers' team (only a reader on the repository) approves; the same
    // comment redelivered with a fresh delivery id is one approval.
    p.tickets.add_github_team_member("acme/sre", "dave");
    comment(&p.app, "c-dave", "dave", "/approve").await;
    comment(&p.app, "c-dave-again", "dave", "/approve").await;
    wait_for("one job", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(p.controller.jobs_launched(), 1);
    let (by, at): (Option<String>, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT approved_by, approved_at FROM launches WHERE rule = 'gh-cleanup'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(by.as_deref(), Some("dave"));
    assert!(at.is_some());

    // A later /deny changes nothing and is answered.
    p.tickets.set_github_permission(REPO, "bob", "maintain");
    comment(&p.app, "c-bob", "bob", "/deny").await;
    let all = wait_comment(&p, "already approved by dave").await;
    assert_eq!(p.controller.jobs_launched(), 1);
    // The bridge's own comments quote `/approve`: none of them counted.
    let refusals = all.iter().filter(|c| c.contains("changes nothing")).count();
    assert_eq!(
        refusals, 2,
        "one refusal said per launch, one late answer: {all:?}"
    );
}

#[sqlx::test]
async fn github_deny_and_expiry_launch_nothing(pool: PgPool) {
    let p = start(pool.clone()).await;
    p.app.deliver(Sender::Github, "raise-deny").await;
    wait_state(&pool, "gh-cleanup", "awaiting_approval").await;
    p.tickets.set_github_permission(REPO, "carol", "write");
    comment(&p.app, "c-carol", "carol", "/deny not during the freeze").await;
    wait_state(&pool, "gh-cleanup", "denied").await;
    wait_comment(&p, "was denied by carol").await;

    // Another event on the same issue; nobody answers and it expires.
    p.app.deliver(Sender::Github, "raise-expire").await;
    wait_for("the second request", 20, || async {
        (states(&pool, "gh-cleanup").await == ["denied", "awaiting_approval"]).then_some(())
    })
    .await;
    sqlx::query(
        "UPDATE launches SET approval_expires_at = now() WHERE state = 'awaiting_approval'",
    )
    .execute(&pool)
    .await
    .unwrap();
    wait_for("expired", 20, || async {
        (states(&pool, "gh-cleanup").await == ["denied", "expired"]).then_some(())
    })
    .await;
    wait_comment(&p, "the request expired").await;
    wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(p.controller.jobs_launched(), 0);
}

#[sqlx::test]
async fn pagerduty_approvers_decide(pool: PgPool) {
    let p = start(pool.clone()).await;
    p.app.deliver(Sender::PagerDuty, "raise-pd").await;
    wait_state(&pool, "pd-restart", "awaiting_approval").await;
    let asked = wait_note(&p, "Awaiting approval").await;
    assert!(
        asked[0].contains("one of PALICE adds a note `/approve`"),
        "{asked:?}"
    );
    note(&p.app, "n-eve", "PEVE", "/approve").await;
    wait_note(&p, "PEVE is not in the rule's approvers").await;
    assert_eq!(states(&pool, "pd-restart").await, ["awaiting_approval"]);
    note(&p.app, "n-alice", "PALICE", "/approve").await;
    note(&p.app, "n-alice", "PALICE", "/approve").await; // PagerDuty's retry: same event id
    wait_for("one job", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(p.controller.jobs_launched(), 1);
}

#[sqlx::test]
async fn servicenow_field_decides(pool: PgPool) {
    let p = start(pool.clone()).await;
    p.app.deliver(Sender::ServiceNow, "raise-snow").await;
    wait_state(&pool, "snow-cleanup", "awaiting_approval").await;
    let notes = || {
        p.tickets
            .servicenow_notes(SYS_ID)
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
    };
    let asked = wait_for("the request note", 20, || async {
        let all = notes();
        all.iter()
            .any(|n| n.contains("Awaiting approval"))
            .then_some(all)
    })
    .await;
    assert!(
        asked[0].contains("one of bob, carol sets u_automation_approval to approved"),
        "{asked:?}"
    );
    // Someone not in approvers sets the field: nothing changes, the ticket is told.
    snow_update(&p.app, 1, "mallory", "approved").await;
    wait_for("the refusal", 20, || async {
        notes()
            .iter()
            .any(|n| n.contains("mallory is not in the rule's approvers"))
            .then_some(())
    })
    .await;
    assert_eq!(states(&pool, "snow-cleanup").await, ["awaiting_approval"]);
    // bob approves; the update sent twice is one approval.
    snow_update(&p.app, 2, "bob", "approved").await;
    snow_update(&p.app, 2, "bob", "approved").await;
    wait_for("one job", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(p.controller.jobs_launched(), 1);
    assert_eq!(states(&pool, "snow-cleanup").await, ["finished"]);

    // A second incident event; carol rejects it.
    p.app.deliver(Sender::ServiceNow, "raise-snow-2").await;
    wait_for("the second request", 20, || async {
        (states(&pool, "snow-cleanup").await == ["finished", "awaiting_approval"]).then_some(())
    })
    .await;
    snow_update(&p.app, 3, "carol", "rejected").await;
    wait_for("denied", 20, || async {
        (states(&pool, "snow-cleanup").await == ["finished", "denied"]).then_some(())
    })
    .await;
    wait_for("the denial note", 20, || async {
        notes()
            .iter()
            .any(|n| n.contains("was denied by carol"))
            .then_some(())
    })
    .await;
    assert_eq!(p.controller.jobs_launched(), 1);
}

/// Two replicas, the approval delivered to both at the same moment, and a restart of the one
/// that planned it while it waited: one job.
#[sqlx::test]
async fn two_replicas_and_a_restart_make_one_job(pool: PgPool) {
    let mut p = start(pool.clone()).await;
    p.app.deliver(Sender::Github, "raise-r").await;
    wait_state(&pool, "gh-cleanup", "awaiting_approval").await;
    p.app.shutdown.cancel();
    let _ = p.app.handle.take().unwrap().await;
    let first = p.replica(Default::default()).await;
    let other = p.replica(Default::default()).await;
    p.tickets.set_github_permission(REPO, "alice", "admin");
    tokio::join!(
        comment(&first, "c-both", "alice", "/approve"),
        comment(&other, "c-both", "alice", "/approve"),
    );
    wait_for("one job", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(p.controller.jobs_launched(), 1);
}

/// An operator approves one launch and denies another through the admin API; the console shows
/// the buttons and the filter finds what waits. The bridge's own note quoting `/approve` is
/// ignored at ingest.
#[sqlx::test]
async fn an_operator_decides_through_the_api_and_console(pool: PgPool) {
    let p = start(pool.clone()).await;
    p.app.deliver(Sender::Github, "raise-op").await;
    wait_state(&pool, "gh-cleanup", "awaiting_approval").await;
    let asked = wait_comment(&p, "Awaiting approval").await;
    comment(&p.app, "c-own", "aap-bridge[bot]", &asked[0]).await;
    let own: String = sqlx::query_scalar("SELECT state FROM events WHERE delivery_id = 'c-own'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(own, "ignored", "the bridge's own comment is not a command");
    // An app's comment is refused at once, without asking GitHub about a login it cannot hold.
    comment(&p.app, "c-bot", "renovate[bot]", "/approve").await;
    wait_for("the app's command refused", 20, || async {
        let outcome: Option<String> = sqlx::query_scalar(
            "SELECT outcome FROM approval_commands WHERE actor = 'renovate[bot]' AND state = 'refused'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
        .flatten();
        outcome.filter(|o| o.contains("is not a GitHub user")).map(|_| ())
    })
    .await;

    let (code, page) = p
        .app
        .admin("GET", "/events?launch_state=awaiting_approval", None)
        .await;
    assert_eq!(code, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let event = events[0]["id"].as_str().unwrap().to_string();
    let (_, detail) = p.app.admin("GET", &format!("/events/{event}"), None).await;
    let launch = detail["launches"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        detail["launches"][0]["waiting"]["reason"], "awaiting_approval",
        "{detail}"
    );
    assert!(
        detail["launches"][0]["approval_expires_at"].is_string(),
        "{detail}"
    );

    let console = crate::support::console::Console::logged_in(&p.app.base).await;
    let shown = console.get(&format!("/ui/events/{event}")).await;
    shown.assert_has("awaiting approval</span> until");
    shown.assert_has(&format!("/ui/launches/{launch}/approve"));

    let (code, answer) = p
        .app
        .admin("POST", &format!("/launches/{launch}/approve"), None)
        .await;
    assert_eq!(
        (code, answer["state"].as_str()),
        (200, Some("planned")),
        "{answer}"
    );
    let (code, again) = p
        .app
        .admin("POST", &format!("/launches/{launch}/deny"), None)
        .await;
    assert_eq!(code, 409, "{again}");
    assert!(again["error"]
        .as_str()
        .unwrap()
        .contains("only a launch awaiting approval"));
    wait_for("one job", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    let (_, detail) = p.app.admin("GET", &format!("/events/{event}"), None).await;
    assert_eq!(
        detail["launches"][0]["approved_by"], "admin-token",
        "{detail}"
    );

    p.app.deliver(Sender::PagerDuty, "raise-op-pd").await;
    wait_state(&pool, "pd-restart", "awaiting_approval").await;
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM launches WHERE rule = 'pd-restart'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (code, answer) = p
        .app
        .admin("POST", &format!("/launches/{id}/deny"), None)
        .await;
    assert_eq!(
        (code, answer["state"].as_str()),
        (200, Some("denied")),
        "{answer}"
    );
    wait_note(&p, "was denied by admin-token in the aap-bridge console").await;
    let (code, _) = p
        .app
        .admin(
            "POST",
            &format!("/launches/{}/approve", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(code, 404);
    let (_, audit) = p.app.admin("GET", "/audit", None).await;
    let text = audit.to_string();
    assert!(
        text.contains("launch.approve") && text.contains("launch.deny"),
        "{text}"
    );
    wait_quiescent(&pool, &p.controller, 30).await;
    assert_eq!(p.controller.jobs_launched(), 1);
}

/// The console's Deny asks first, then denies as the logged-in operator; an unknown action on a
/// launch is a 404 page and changes nothing.
#[sqlx::test]
async fn the_console_asks_then_denies(pool: PgPool) {
    let p = start(pool.clone()).await;
    p.app.deliver(Sender::Github, "raise-console").await;
    wait_state(&pool, "gh-cleanup", "awaiting_approval").await;
    let (id, event): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("SELECT id, event_id FROM launches WHERE rule = 'gh-cleanup'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let console = crate::support::console::Console::logged_in(&p.app.base).await;
    let page = format!("/ui/events/{event}");
    let event = event.to_string();
    let bogus = console
        .submit(
            &page,
            &format!("/ui/launches/{id}/launch"),
            &[("event", &event)],
        )
        .await;
    assert_eq!(bogus.status, 404, "{}", bogus.body);
    let asked = console
        .submit(
            &page,
            &format!("/ui/launches/{id}/deny"),
            &[("event", &event)],
        )
        .await;
    asked.assert_has("Deny this launch");
    assert_eq!(
        states(&pool, "gh-cleanup").await,
        ["awaiting_approval"],
        "asked first"
    );
    let done = console
        .submit(
            &page,
            &format!("/ui/launches/{id}/deny"),
            &[("event", &event), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(states(&pool, "gh-cleanup").await, ["denied"]);
    wait_comment(&p, "was denied by admin-token in the aap-bridge console").await;
    assert_eq!(p.controller.jobs_launched(), 0);
}
