//! GitHub catch-up: failed deliveries the bridge does not have are redelivered at its request,
//! once, and arrive signed through `/hooks`; `POST /api/v1/catch-up/{source}` runs a pass.
//! ServiceNow catch-up and the `catch-up` command are in `catch_up_servicenow.rs`.

use crate::support::console::Console;
use crate::support::fake_tickets::FakeDelivery;
use crate::support::pipeline::{wait_for, wait_quiescent, Options, Pipeline, Tuning};
use crate::support::Sender;
use chrono::{Duration, Utc};
use serde_json::Value;
use sqlx::PgPool;

const HOOK: u64 = 1001;

fn options(interval_secs: u64) -> Options {
    Options {
        tuning: Tuning {
            // api_url and the token come from the source's `reply:`.
            catch_up: vec![(
                "gh",
                format!(
                    "{{hooks: [{{repo: acme/ops, id: {HOOK}}}], interval_secs: {interval_secs}}}"
                ),
            )],
            ..Tuning::default()
        },
        ..Options::default()
    }
}

/// A signed `issues.labeled` delivery (the `gh-disk` rule launches it), as GitHub logged it.
fn delivery(guid: &str, status_code: u16, ago: Duration) -> FakeDelivery {
    let body = Sender::Github.body(guid);
    FakeDelivery {
        guid: guid.to_string(),
        event: "issues".into(),
        action: Some("labeled".into()),
        delivered_at: Utc::now() - ago,
        status_code,
        redelivery: false,
        headers: Sender::Github.signed_headers(Sender::Github.new_secret(), guid, &body),
        body,
    }
}

/// A pipeline whose hook delivers to the bridge, after a first (empty) pass.
async fn start(pool: PgPool, interval_secs: u64) -> Pipeline {
    let p = Pipeline::start(pool, options(interval_secs)).await;
    p.tickets.github_hook("acme/ops", HOOK);
    p.tickets
        .set_github_hook_url(HOOK, &format!("{}/hooks/gh", p.app.base));
    // Waits for the start-up pass, so the test's deliveries meet a known checkpoint.
    pass(&p, "").await;
    p
}

async fn pass(p: &Pipeline, query: &str) -> Value {
    let (status, summary) = p
        .app
        .admin("POST", &format!("/catch-up/gh{query}"), None)
        .await;
    assert_eq!(status, 200, "{summary}");
    summary
}

fn guids(summary: &Value) -> Vec<String> {
    let mut g: Vec<String> = summary["redeliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["guid"].as_str().unwrap().to_string())
        .collect();
    g.sort();
    g
}

/// The arrival of the event stored for a GitHub delivery, once there is one.
async fn arrived(pool: &PgPool, guid: &str) -> String {
    let id = format!("{HOOK}:{guid}");
    wait_for(&format!("the event of {guid}"), 30, || async {
        sqlx::query_scalar::<_, String>("SELECT arrival FROM events WHERE delivery_id = $1")
            .bind(&id)
            .fetch_optional(pool)
            .await
            .unwrap()
    })
    .await
}

#[sqlx::test]
async fn a_delivery_lost_while_down_is_redelivered_once_and_launched_once(pool: PgPool) {
    // The background pass runs every second here.
    let p = Pipeline::start(pool.clone(), options(1)).await;
    p.tickets.github_hook("acme/ops", HOOK);
    p.tickets
        .set_github_hook_url(HOOK, &format!("{}/hooks/gh", p.app.base));
    // GitHub tried while the bridge was down: no answer at all (status 0).
    let lost = p
        .tickets
        .github_log_delivery(HOOK, delivery("lost-1", 0, Duration::minutes(20)));

    assert_eq!(arrived(&pool, "lost-1").await, "redelivered");
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 1);
    let comments = p.tickets.github_comments("acme/ops", 42);
    assert!(
        comments.iter().any(|c| c.contains("Launched job")),
        "{comments:?}"
    );
    // GitHub's log shows the redelivery, answered 202 by the bridge.
    assert!(p
        .tickets
        .github_deliveries(HOOK)
        .iter()
        .any(|(_, d)| d.guid == "lost-1" && d.redelivery && d.status_code == 202));

    // Later passes see the guid answered, and asked for: nothing more.
    let lists = p.tickets.github_delivery_lists().len();
    wait_for("two more passes", 30, || async {
        (p.tickets.github_delivery_lists().len() >= lists + 2).then_some(())
    })
    .await;
    assert_eq!(p.tickets.github_redelivery_requests(), [(HOOK, lost)]);
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 1);
    assert_eq!(p.app.event_count().await, 1);

    // The admin API and the console say how it arrived.
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (_, detail) = p.app.admin("GET", &format!("/events/{id}"), None).await;
    assert_eq!(detail["arrival"], "redelivered");
    assert_eq!(detail["delivery_id"], "1001:lost-1");
    let console = Console::logged_in(&p.app.base).await;
    let page = console.get(&format!("/ui/events/{id}")).await;
    page.assert_has("<th>arrival</th><td>redelivered");
    page.assert_has("GitHub redelivered it at the bridge's request");
    console
        .get("/ui/events")
        .await
        .assert_has("<span class=\"tag\">redelivered</span>");
}

#[sqlx::test]
async fn pages_back_over_the_window_and_never_asks_for_what_the_bridge_has(pool: PgPool) {
    let p = start(pool.clone(), 3600).await;
    // Stored by the bridge, though GitHub saw no answer in time.
    let stored = delivery("stored-1", 0, Duration::minutes(30));
    let (status, _) = p.app.post("gh", &stored.headers, &stored.body).await;
    assert_eq!(status, 202);
    let stored_id = p.tickets.github_log_delivery(HOOK, stored);
    // 118 answered fine (not stored here: answered 2xx means delivered).
    for i in 0..118 {
        let d = delivery(&format!("ok-{i}"), 202, Duration::minutes(60 + i));
        p.tickets.github_log_delivery(HOOK, d);
    }
    // Failed two days ago: the oldest in the window, on the second page.
    p.tickets
        .github_log_delivery(HOOK, delivery("old-fail", 503, Duration::days(2)));
    // Failed four days ago: past GitHub's 3-day window.
    let too_old = p
        .tickets
        .github_log_delivery(HOOK, delivery("too-old", 503, Duration::days(4)));
    // Failed, then failed again when someone pressed Redeliver: asked for once.
    p.tickets
        .github_log_delivery(HOOK, delivery("twice", 502, Duration::hours(3)));
    let mut again = delivery("twice", 0, Duration::hours(2));
    again.redelivery = true;
    p.tickets.github_log_delivery(HOOK, again);

    let lists_before = p.tickets.github_delivery_lists().len();
    let s = pass(&p, "").await;
    assert_eq!(s["complete"], true, "{s}");
    assert_eq!(guids(&s), ["old-fail", "twice"], "{s}");
    assert_eq!(s["missing"], 2);
    assert!(s["redeliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result"] == "requested"));
    // Two pages of 100, the second through the `Link` cursor.
    let lists = &p.tickets.github_delivery_lists()[lists_before..];
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert_eq!(lists[0], "per_page=100");
    assert!(lists[1].contains("cursor=v1_"), "{lists:?}");
    assert_eq!(s["pages"], 2);
    assert_eq!(arrived(&pool, "old-fail").await, "redelivered");
    assert_eq!(arrived(&pool, "twice").await, "redelivered");
    // stored-1 launched when it was posted; the two redeliveries launch once each.
    assert_eq!(wait_quiescent(&pool, &p.controller, 30).await, 3);

    // A second pass asks for nothing new, and neither does one looking back 5 days: GitHub's
    // window bounds it.
    let s = pass(&p, "").await;
    assert_eq!(
        (guids(&s).len(), s["missing"].as_u64()),
        (0, Some(0)),
        "{s}"
    );
    let s = pass(&p, "?since=5d").await;
    assert!(guids(&s).is_empty(), "{s}");
    let since = chrono::DateTime::parse_from_rfc3339(s["since"].as_str().unwrap()).unwrap();
    assert!(since > Utc::now() - Duration::days(3), "{s}");
    let asked: Vec<i64> = p
        .tickets
        .github_redelivery_requests()
        .iter()
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(
        asked.len(),
        2,
        "{:?}",
        p.tickets.github_redelivery_requests()
    );
    assert!(!asked.contains(&stored_id) && !asked.contains(&too_old));
    assert_eq!(p.app.event_count().await, 3);

    // As GitHub does, the fake refuses to redeliver past 3 days.
    let resp = p
        .app
        .client
        .post(format!(
            "{}/repos/acme/ops/hooks/{HOOK}/deliveries/{too_old}/attempts",
            p.tickets.url()
        ))
        .bearer_auth("gh-token")
        .header("User-Agent", "test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
}

#[sqlx::test]
async fn a_low_rate_limit_stops_the_pass_before_any_request(pool: PgPool) {
    let p = start(pool.clone(), 3600).await;
    p.tickets
        .github_log_delivery(HOOK, delivery("limited", 503, Duration::minutes(10)));
    // None left: the list itself is refused.
    p.tickets.set_github_rate_remaining(Some(0));
    let s = pass(&p, "").await;
    assert_eq!(s["complete"], false, "{s}");
    assert!(s["stopped"].as_str().unwrap().contains("rate limit"), "{s}");
    assert!(guids(&s).is_empty());
    // A few left: listed, but the bridge keeps them for post-backs.
    p.tickets.set_github_rate_remaining(Some(50));
    let s = pass(&p, "").await;
    assert!(
        s["stopped"]
            .as_str()
            .unwrap()
            .contains("49 request(s) left"),
        "{s}"
    );
    assert!(guids(&s).is_empty());
    assert!(p.tickets.github_redelivery_requests().is_empty());
    // Reset: the next pass asks for it.
    p.tickets.set_github_rate_remaining(None);
    let s = pass(&p, "").await;
    assert_eq!(guids(&s), ["limited"], "{s}");
    assert_eq!(arrived(&pool, "limited").await, "redelivered");
}

#[sqlx::test]
async fn the_admin_call_names_what_it_cannot_do(pool: PgPool) {
    let p = start(pool, 3600).await;
    for (path, status, needle) in [
        (
            "/catch-up/pd",
            404,
            "source `pd` has no catch_up: configured",
        ),
        ("/catch-up/nope", 404, "unknown source `nope`"),
        (
            "/catch-up/gh?since=yesterday",
            400,
            "`since` must be a duration",
        ),
        ("/catch-up/gh?sinse=2h", 400, "sinse"),
    ] {
        let (got, body) = p.app.admin("POST", path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            crate::support::error_of(&body).contains(needle),
            "{path}: {body}"
        );
    }
    // GitHub failing is the pass's error: 502 with what it did.
    p.tickets.fail_next(1, 500, None);
    let (status, body) = p.app.admin("POST", "/catch-up/gh", None).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("HTTP 500"),
        "{body}"
    );
    assert_eq!(body["complete"], false);
}
