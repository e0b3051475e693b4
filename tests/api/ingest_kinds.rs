//! What each sender does differently: body formats, pings, normalization, its own auth options.

use crate::support::{error_of, senders::now, Sender, TestApp};
use aap_bridge::signature::{hmac_sha256, to_hex};
use serde_json::{json, Value};
use sha2::Digest;
use sqlx::PgPool;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn gh_sig(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        to_hex(&hmac_sha256(secret.as_bytes(), &[body]))
    )
}

async fn stored(app: &TestApp, id: &str) -> Value {
    let id: uuid::Uuid = id.parse().unwrap();
    sqlx::query_scalar(
        "SELECT jsonb_build_object('kind', kind, 'delivery_id', delivery_id, 'event_type', event_type,
                'category', category, 'ticket', ticket, 'state', state, 'state_reason', state_reason,
                'headers', headers, 'payload', payload,
                'dedupe_key', dedupe_key)
         FROM events WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn github_event_is_normalized(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, resp) = app.deliver(Sender::Github, "gd-1").await;
    assert_eq!(status, 202);
    let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
    assert_eq!(row["delivery_id"], "1001:gd-1", "kept as information");
    let body = Sender::Github.body("gd-1");
    let digest = sha2::Sha256::digest(&body);
    assert_eq!(row["dedupe_key"], format!("sha256:{}", to_hex(&digest)));
    assert_eq!(row["event_type"], "issues.labeled");
    assert_eq!(row["category"], "disk_full");
    // The dispatcher may already have looked at it (no rules here: unmapped).
    assert!(
        row["state"] == "pending" || row["state"] == "unmapped",
        "{row}"
    );
    assert_eq!(
        row["ticket"],
        json!({"repo": "acme/ops", "number": "42", "url": "https://github.com/acme/ops/issues/42"})
    );
    assert_eq!(row["payload"]["issue"]["title"], "disk full on web01");
    let headers = row["headers"].to_string().to_lowercase();
    assert!(
        !headers.contains("signature"),
        "signatures are not stored: {headers}"
    );
}

#[sqlx::test]
async fn github_form_encoded_body_is_unwrapped(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let payload =
        r#"{"ref":"refs/heads/main","after":"abc123","repository":{"full_name":"acme/ops"}}"#;
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", payload)
        .finish();
    let headers = h(&[
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "form-1"),
        (
            "X-Hub-Signature-256",
            &gh_sig("github-new", body.as_bytes()),
        ),
    ]);
    let (status, resp) = app.post("gh", &headers, body.as_bytes()).await;
    assert_eq!(status, 202, "{resp}");
    let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
    assert_eq!(row["event_type"], "push");
    assert_eq!(row["category"], "main");
    assert_eq!(row["ticket"]["sha"], "abc123");
}

#[sqlx::test]
async fn github_ping_and_own_comment_are_ignored_but_recorded(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for (event, delivery, body) in [
        (
            "ping",
            "p-1",
            json!({"zen": "Keep it logically awesome.", "hook_id": 1}),
        ),
        (
            "issue_comment",
            "c-1",
            json!({"action": "created", "comment": {"body": "[aap-bridge] Launched job 12"},
                   "issue": {"number": 1}, "repository": {"full_name": "acme/ops"}}),
        ),
    ] {
        let body = serde_json::to_vec(&body).unwrap();
        let headers = h(&[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", &gh_sig("github-new", &body)),
        ]);
        let (status, resp) = app.post("gh", &headers, &body).await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp["status"], "ignored", "{resp}");
        let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
        assert_eq!(row["state"], "ignored");
        assert!(row["state_reason"].as_str().unwrap().len() > 3);
    }
    assert_eq!(app.event_count().await, 2);
}

#[sqlx::test]
async fn github_header_and_media_errors(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = br#"{"a":1}"#;
    let sig = gh_sig("github-new", body);
    let no_event = h(&[("X-GitHub-Delivery", "x"), ("X-Hub-Signature-256", &sig)]);
    let (status, resp) = app.post("gh", &no_event, body).await;
    assert_eq!(status, 400);
    assert!(error_of(&resp).contains("x-github-event"), "{resp}");

    let xml = h(&[
        ("Content-Type", "application/xml"),
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "x"),
        ("X-Hub-Signature-256", &sig),
    ]);
    let (status, resp) = app.post("gh", &xml, body).await;
    assert_eq!(status, 415, "{resp}");
    assert!(error_of(&resp).contains("application/xml"));
    assert_eq!(app.event_count().await, 0);
}

#[sqlx::test]
async fn pagerduty_rotation_header_ping_and_fallback_id(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = Sender::PagerDuty.body("r-1");
    // Two signatures, as during rotation: one from a secret we no longer have, one we do.
    let sigs = format!(
        "v1={},v1={}",
        to_hex(&hmac_sha256(b"retired", &[&body])),
        to_hex(&hmac_sha256(b"pagerduty-old", &[&body]))
    );
    let headers = h(&[
        ("Content-Type", "application/json"),
        ("X-PagerDuty-Signature", &sigs),
    ]);
    let (status, resp) = app.post("pd", &headers, &body).await;
    assert_eq!(status, 202, "{resp}");
    let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
    assert_eq!(
        row["delivery_id"], "evt-r-1",
        "no X-Webhook-Id: falls back to event.id"
    );
    assert_eq!(row["dedupe_key"], "evt-r-1");
    assert_eq!(row["event_type"], "incident.triggered");
    assert_eq!(row["category"], "web-tier");
    assert_eq!(
        row["ticket"],
        json!({"incident_id": "PABC123", "number": "77",
               "url": "https://acme.pagerduty.com/incidents/PABC123"})
    );

    let ping = serde_json::to_vec(&json!({"event": {"id": "01", "event_type": "pagey.ping",
        "resource_type": "pagey", "data": {"message": "Hello from your friend Pagey!", "type": "ping"}}}))
    .unwrap();
    let headers = h(&[
        ("X-Webhook-Id", "ping-1"),
        (
            "X-PagerDuty-Signature",
            &format!("v1={}", to_hex(&hmac_sha256(b"pagerduty-new", &[&ping]))),
        ),
    ]);
    let (status, resp) = app.post("pd", &headers, &ping).await;
    assert_eq!(
        (status, resp["status"].as_str()),
        (200, Some("ignored")),
        "{resp}"
    );
}

#[sqlx::test]
async fn pagerduty_own_note_is_ignored(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = serde_json::to_vec(
        &json!({"event": {"id": "n1", "event_type": "incident.annotated",
        "data": {"type": "incident_note", "content": "[aap-bridge] Job 5 finished: successful",
                 "incident": {"id": "PABC123", "type": "incident_reference"}}}}),
    )
    .unwrap();
    let headers = h(&[
        ("X-Webhook-Id", "note-1"),
        (
            "X-PagerDuty-Signature",
            &format!("v1={}", to_hex(&hmac_sha256(b"pagerduty-new", &[&body]))),
        ),
    ]);
    let (status, resp) = app.post("pd", &headers, &body).await;
    assert_eq!(resp["status"], "ignored", "{status} {resp}");
    let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
    assert_eq!(row["ticket"]["incident_id"], "PABC123");
}

#[sqlx::test]
async fn servicenow_event_is_normalized(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, resp) = app.deliver(Sender::ServiceNow, "s-1").await;
    assert_eq!(status, 202, "{resp}");
    let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
    assert_eq!(row["event_type"], "incident.insert");
    assert_eq!(
        row["category"], "disk_full",
        "value taken from {{value, display_value}}"
    );
    assert_eq!(
        row["ticket"],
        json!({"table": "incident", "sys_id": "9d385017c611228701d22104cc95c371", "number": "INC0010001"})
    );
    assert_eq!(
        row["delivery_id"], "s-1",
        "the unsigned header, as information"
    );
    assert_eq!(
        row["dedupe_key"],
        "9d385017c611228701d22104cc95c371@2026-11-22 10:00:00 s-1"
    );
}

#[sqlx::test]
async fn servicenow_stale_timestamp_is_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = Sender::ServiceNow.body("old");
    let ts = now() - 3600;
    let mut headers = Sender::ServiceNow.unsigned_headers("old");
    headers.push(Sender::ServiceNow.signature_header("servicenow-new", &body, ts));
    headers.push(("X-Bridge-Timestamp".into(), ts.to_string()));
    let (status, resp) = app.post("snow", &headers, &body).await;
    assert_eq!(status, 401);
    assert!(error_of(&resp).contains("replay window"), "{resp}");
    assert_eq!(app.event_count().await, 0);
}

#[sqlx::test]
async fn servicenow_hex_signature_without_timestamp(pool: PgPool) {
    let yaml = crate::support::SOURCES_YAML.to_string()
        + "  snow-hex:\n    kind: servicenow\n    secrets: [s3cret]\n    delivery_header: X-Request-Id\n";
    let app = TestApp::spawn_with(pool.clone(), pool, &yaml).await;
    let body = br#"{"sys_id":"abc","sys_mod_count":3,"number":"INC1","category":"cert_expiry"}"#;
    let sig = to_hex(&hmac_sha256(b"s3cret", &[body]));
    let headers = h(&[("X-ServiceNow-Signature", &sig), ("X-Request-Id", "req-9")]);
    let (status, resp) = app.post("snow-hex", &headers, body).await;
    assert_eq!(status, 202, "{resp}");
    let row = stored(&app, resp["event_id"].as_str().unwrap()).await;
    assert_eq!(row["delivery_id"], "req-9");
    assert_eq!(row["dedupe_key"], "abc#3", "the header is not signed");

    // Another (unsigned) delivery header does not make the same record new.
    let headers = h(&[("X-ServiceNow-Signature", &sig), ("X-Request-Id", "req-10")]);
    let (status, resp) = app.post("snow-hex", &headers, body).await;
    assert_eq!((status, resp["status"].as_str()), (200, Some("duplicate")));

    // Without sys_updated_on or sys_mod_count there is nothing signed to dedupe on.
    let body = br#"{"sys_id":"abc","number":"INC1","category":"cert_expiry"}"#;
    let sig = to_hex(&hmac_sha256(b"s3cret", &[body]));
    let headers = h(&[("X-ServiceNow-Signature", &sig), ("X-Request-Id", "req-11")]);
    let (status, resp) = app.post("snow-hex", &headers, body).await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&resp),
        "cannot deduplicate: send `sys_id` with `sys_updated_on` or `sys_mod_count` \
         (or sign a delivery header: signature_scheme `{timestamp}.{delivery}.{body}`)"
    );
}

#[sqlx::test]
async fn servicenow_bearer_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = Sender::ServiceNow.body("b-1");
    let good = h(&[("Authorization", "Bearer sn-token-1")]);
    let (status, resp) = app.post("snow-bearer", &good, &body).await;
    assert_eq!(status, 202, "{resp}");
    for bad in [h(&[("Authorization", "Bearer nope")]), h(&[])] {
        let (status, _) = app.post("snow-bearer", &bad, &body).await;
        assert_eq!(status, 401);
    }
    assert_eq!(app.event_count().await, 1);
}

#[sqlx::test]
async fn nul_characters_are_refused_without_harming_others(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body =
        br#"{"event":{"id":"z","event_type":"incident.triggered","data":{"title":"a\u0000b"}}}"#;
    let headers = h(&[
        ("X-Webhook-Id", "nul-1"),
        (
            "X-PagerDuty-Signature",
            &format!("v1={}", to_hex(&hmac_sha256(b"pagerduty-new", &[body]))),
        ),
    ]);
    let (status, resp) = app.post("pd", &headers, body).await;
    assert_eq!(status, 400);
    assert!(error_of(&resp).contains("NUL"), "{resp}");
    assert_eq!(app.deliver(Sender::PagerDuty, "fine").await.0, 202);
}
