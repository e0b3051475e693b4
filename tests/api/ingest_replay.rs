//! Hostile senders: a captured, validly signed delivery resent with fresh unsigned headers is a
//! duplicate, also after retention pruned the original event.

use crate::support::{error_of, senders::now, Sender, TestApp};
use aap_bridge::config::RetentionSettings;
use aap_bridge::signature::{hmac_sha256, to_base64};
use aap_bridge::workers::retention::prune;
use serde_json::Value;
use sqlx::PgPool;

/// Sends a signed delivery and returns it as captured: (headers, body, answer).
async fn capture(
    app: &TestApp,
    sender: Sender,
    delivery: &str,
) -> (Vec<(String, String)>, Vec<u8>, Value) {
    let body = sender.body(delivery);
    let headers = sender.signed_headers(sender.new_secret(), delivery, &body);
    let (status, resp) = app.post(sender.source(), &headers, &body).await;
    assert_eq!(status, 202, "{resp}");
    (headers, body, resp)
}

/// Prunes until no event older than `max_age_days` is left. The service's own retention pass
/// (at start-up) may hold the lock, or do the deleting itself: either way they end up gone.
async fn prune_old(pool: &PgPool, s: &RetentionSettings) {
    let old = format!(
        "SELECT count(*) FROM events WHERE received_at < now() - interval '{} days'",
        s.max_age_days
    );
    crate::support::pipeline::wait_for("a pruning pass", 10, || async {
        prune(pool, s).await.unwrap();
        (count(pool, &old).await == 0).then_some(())
    })
    .await;
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn fresh_headers_are_duplicate(pool: PgPool, sender: Sender) {
    let app = TestApp::spawn(pool).await;
    let (headers, body, first) = capture(&app, sender, "orig-1").await;
    for _ in 0..2 {
        let replay = sender.replayed_headers(&headers);
        let (status, resp) = app.post(sender.source(), &replay, &body).await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp["status"], "duplicate", "{resp}");
        assert_eq!(resp["event_id"], first["event_id"]);
    }
    assert_eq!(app.event_count().await, 1);
    assert_eq!(
        count(
            &app.pool,
            "SELECT count(*) FROM events WHERE dedupe_key IS NOT NULL"
        )
        .await,
        1
    );
}

async fn fresh_headers_after_prune_are_duplicate(pool: PgPool, sender: Sender) {
    let app = TestApp::spawn(pool).await;
    let (headers, body, first) = capture(&app, sender, "orig-2").await;
    // Settled long ago: retention deletes the event but keeps its dedupe key.
    sqlx::query("UPDATE events SET state = 'unmapped', received_at = now() - interval '40 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let s = RetentionSettings {
        max_age_days: 30,
        interval_secs: 3600,
        batch: 100,
        dedupe_days: 90,
        deliveries_max_rows: 100_000,
        deliveries_max_age_days: 7,
    };
    prune_old(&app.pool, &s).await;
    assert_eq!(app.event_count().await, 0);

    let replay = sender.replayed_headers(&headers);
    let (status, resp) = app.post(sender.source(), &replay, &body).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["status"], "duplicate", "{resp}");
    assert_eq!(
        resp["event_id"], first["event_id"],
        "the first event's id, though pruned"
    );
    assert_eq!(
        app.event_count().await,
        0,
        "nothing stored, so nothing launches"
    );
}

macro_rules! per_kind {
    ($($name:ident => $sender:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[sqlx::test]
            async fn replay_with_fresh_headers_is_duplicate(pool: PgPool) { fresh_headers_are_duplicate(pool, $sender).await }
            #[sqlx::test]
            async fn replay_after_prune_is_duplicate(pool: PgPool) { fresh_headers_after_prune_are_duplicate(pool, $sender).await }
        }
    )*};
}

per_kind! {
    github => Sender::Github,
    pagerduty => Sender::PagerDuty,
    servicenow => Sender::ServiceNow,
}

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `snow-signed` signs `{timestamp}.{delivery}.{body}`.
fn signed(delivery: &str, body: &[u8], ts: i64) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let mac = hmac_sha256(
        b"servicenow-new",
        &[ts.as_bytes(), b".", delivery.as_bytes(), b".", body],
    );
    h(&[
        ("Content-Type", "application/json"),
        ("X-Bridge-Signature", &to_base64(&mac)),
        ("X-Bridge-Timestamp", &ts),
        ("X-ServiceNow-Delivery", delivery),
    ])
}

#[sqlx::test]
async fn servicenow_signed_delivery_header_is_the_dedupe_key(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    // No sys_updated_on or sys_mod_count needed: the signed header identifies the delivery.
    let body = br#"{"sys_id":"abc","number":"INC1","category":"disk_full"}"#;
    let ts = now();
    let headers = signed("guid-1", body, ts);
    let (status, first) = app.post("snow-signed", &headers, body).await;
    assert_eq!(status, 202, "{first}");

    // Captured and resent as is: duplicate. The sender's own retry (same GUID, fresh
    // timestamp, signed again): duplicate too.
    let (status, resp) = app.post("snow-signed", &headers, body).await;
    assert_eq!((status, resp["status"].as_str()), (200, Some("duplicate")));
    let (status, resp) = app
        .post("snow-signed", &signed("guid-1", body, ts + 1), body)
        .await;
    assert_eq!((status, resp["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(resp["event_id"], first["event_id"]);

    // A fresh delivery header on the captured request breaks the signature.
    let mut forged = headers.clone();
    forged.retain(|(k, _)| k != "X-ServiceNow-Delivery");
    forged.push(("X-ServiceNow-Delivery".into(), "guid-2".into()));
    let (status, resp) = app.post("snow-signed", &forged, body).await;
    assert_eq!(status, 401);
    assert_eq!(
        error_of(&resp),
        "x-bridge-signature does not match any secret configured for source `snow-signed`"
    );
    forged.retain(|(k, _)| k != "X-ServiceNow-Delivery");
    let (status, resp) = app.post("snow-signed", &forged, body).await;
    assert_eq!(status, 401);
    assert_eq!(
        error_of(&resp),
        "missing x-servicenow-delivery header (it is signed)"
    );

    // The same body under a new GUID that the sender signed is a new delivery.
    let (status, resp) = app
        .post("snow-signed", &signed("guid-2", body, ts), body)
        .await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(app.event_count().await, 2);
}

#[sqlx::test]
async fn dedupe_keys_outlive_events_but_not_forever(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for d in ["gone", "kept"] {
        capture(&app, Sender::PagerDuty, d).await;
    }
    sqlx::query(
        "UPDATE events SET state = 'unmapped', received_at = now() - interval '40 days'
         WHERE delivery_id = 'gone'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let s = RetentionSettings {
        max_age_days: 30,
        interval_secs: 3600,
        batch: 1,
        dedupe_days: 0,
        deliveries_max_rows: 100_000,
        deliveries_max_age_days: 7,
    };
    // The service's own retention pass (at start-up) may hold the lock: prune until it is gone.
    crate::support::pipeline::wait_for("the old event pruned", 10, || async {
        prune(&app.pool, &s).await.unwrap();
        let left = count(
            &app.pool,
            "SELECT count(*) FROM events WHERE delivery_id = 'gone'",
        )
        .await;
        (left == 0).then_some(())
    })
    .await;
    let pruned: Vec<String> = sqlx::query_scalar("SELECT dedupe_key FROM dedupe")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        pruned,
        ["evt-gone"],
        "the pruned event's key is kept; 0 keeps it"
    );
    assert_eq!(
        app.deliver(Sender::PagerDuty, "gone").await.1["status"],
        "duplicate"
    );

    // The key was first seen with its event; once that is past dedupe_days, it goes. (The event
    // was made only 40 days old above, so the service's own pass keeps the key if it ran.)
    sqlx::query("UPDATE dedupe SET first_seen = now() - interval '100 days'")
        .execute(&app.pool)
        .await
        .unwrap();
    let s = RetentionSettings {
        dedupe_days: 90,
        ..s
    };
    crate::support::pipeline::wait_for("the old key pruned", 10, || async {
        prune(&app.pool, &s).await.unwrap();
        (count(&app.pool, "SELECT count(*) FROM dedupe").await == 0).then_some(())
    })
    .await;
    assert_eq!(
        app.deliver(Sender::PagerDuty, "kept").await.1["status"],
        "duplicate",
        "a key whose event is still stored stays"
    );
    // Past dedupe_days the pruned delivery is new again (documented: set 0 to keep keys).
    assert_eq!(app.deliver(Sender::PagerDuty, "gone").await.0, 202);
}

#[sqlx::test]
async fn unknown_source_name_is_escaped(pool: PgPool) {
    // The real binary's piped log: a thread-local subscriber in this process misses lines
    // logged on other runtime threads.
    let served = crate::support::binary::serve(&pool, "").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/a%0Ab%1B%22", served.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(error_of(&resp), "unknown source `a\\nb\\u{1b}\\\"`");
    let (_, text) = served.stop().await;
    let line = text
        .lines()
        .find(|l| l.contains("delivery refused"))
        .unwrap_or_else(|| panic!("no refusal logged: {text}"));
    assert!(line.contains("hook{source=a\\nb\\u{1b}\\\"}"), "{line}");
    // No raw control character from the name, and no colour codes in a piped log.
    assert!(!text.contains('\u{1b}') && !text.contains("a\nb"), "{text}");
}

#[sqlx::test]
async fn servicenow_bearer_honours_timestamp_header(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = Sender::ServiceNow.body("bt-1");
    let token = ("Authorization", "Bearer sn-token-1");
    let fresh = now().to_string();
    let stale = (now() - 301).to_string();
    for (headers, want) in [
        (h(&[token]), "missing x-bridge-timestamp header"),
        (
            h(&[token, ("X-Bridge-Timestamp", "yesterday")]),
            "x-bridge-timestamp must be a unix time in seconds",
        ),
        (
            h(&[token, ("X-Bridge-Timestamp", &stale)]),
            "x-bridge-timestamp is outside the ±300 s replay window (check the instance clock)",
        ),
        (
            h(&[
                ("Authorization", "Bearer nope"),
                ("X-Bridge-Timestamp", &fresh),
            ]),
            "bearer token does not match any token configured for source `snow-bearer-ts`",
        ),
    ] {
        let (status, resp) = app.post("snow-bearer-ts", &headers, &body).await;
        assert_eq!(status, 401, "{resp}");
        assert_eq!(error_of(&resp), want);
    }
    let ok = h(&[token, ("X-Bridge-Timestamp", &fresh)]);
    let (status, resp) = app.post("snow-bearer-ts", &ok, &body).await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(app.event_count().await, 1);
}
