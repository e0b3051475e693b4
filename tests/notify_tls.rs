//! Post-back hardening: ticket APIs over real HTTPS (a test CA), `http://` refused without
//! `allow_insecure_http`, and ServiceNow writes only to the tables in `reply.tables`.

#[path = "support/mod.rs"]
mod support;

use aap_bridge::config::Settings;
use aap_bridge::notify::{Notifier, Prepared, SendError};
use serde_json::json;
use support::fake_tickets::FakeTickets;
use support::tls::TestCa;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

fn snow(url: &str, extra: &str) -> String {
    format!(
        "sources:\n  snow:\n    kind: servicenow\n    secrets: [a-strong-test-secret-0123]\n    reply:\n      \
         api_url: \"{url}\"\n      username: snow-bot\n      password: snow-pass\n{extra}"
    )
}

fn notifier(yaml: &str) -> Notifier {
    let s = Settings::from_parts(Some(yaml), None, false).expect("settings");
    Notifier::new(&s.sources).expect("notifier")
}

fn note(table: &str) -> Prepared {
    Prepared {
        method: "PATCH".into(),
        path: format!("/api/now/table/{table}/{SYS_ID}"),
        body: json!({"work_notes": "[aap-bridge] hello"}),
    }
}

fn trusting(ca: &TestCa) -> String {
    format!("      ca: {}\n", serde_json::to_string(&ca.pem()).unwrap())
}

#[tokio::test]
async fn https_ticket_api_with_the_configured_ca_and_refusals_without_it() {
    let ca = TestCa::new("tickets test CA");
    let fake = FakeTickets::start_tls(ca.server(&["127.0.0.1"])).await;
    assert!(fake.url().starts_with("https://"));
    let n = notifier(&snow(&fake.url(), &trusting(&ca)));
    assert_eq!(n.send("snow", &note("incident")).await.unwrap(), 200);
    assert_eq!(fake.servicenow_notes(SYS_ID).len(), 1);

    // Verification is on by default: an unknown CA is refused before anything is sent.
    let err = notifier(&snow(&fake.url(), ""))
        .send("snow", &note("incident"))
        .await
        .unwrap_err();
    assert!(matches!(err, SendError::Retry { .. }), "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    let other = TestCa::new("another CA");
    let err = notifier(&snow(&fake.url(), &trusting(&other)))
        .send("snow", &note("incident"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");

    let misnamed = FakeTickets::start_tls(ca.server(&["snow.example.com"])).await;
    let err = notifier(&snow(&misnamed.url(), &trusting(&ca)))
        .send("snow", &note("incident"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    assert_eq!(fake.servicenow_notes(SYS_ID).len(), 1);

    let skip = notifier(&snow(&fake.url(), "      insecure_skip_verify: true\n"));
    assert_eq!(skip.send("snow", &note("incident")).await.unwrap(), 200);
}

#[test]
fn plain_http_reply_and_controller_urls_need_the_flag() {
    let err = Settings::from_parts(Some(&snow("http://snow.example", "")), None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "reply.api_url `http://snow.example` is http://: credentials would travel in clear \
             text; use https:// (or set reply.allow_insecure_http: true for a local test)"
        ),
        "{err}"
    );
    let ok = snow("http://snow.example", "      allow_insecure_http: true\n");
    assert!(Settings::from_parts(Some(&ok), None, false).is_ok());

    let controller = "controller:\n  url: \"http://aap.example\"\n  auth: {mode: basic, username: a, password: b}\n";
    let err = Settings::from_parts(Some(controller), None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "controller.url `http://aap.example` is http://: credentials would travel in clear \
             text; use https:// (or set controller.allow_insecure_http: true for a local test)"
        ),
        "{err}"
    );
    let bad_key = "controller:\n  url: \"https://aap.example\"\n  token_key: \"c2hvcnQ=\"\n  auth: {mode: basic, username: a, password: b}\n";
    let err = Settings::from_parts(Some(bad_key), None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("controller.token_key must be 32 bytes once decoded, not 5"),
        "{err}"
    );
}

#[tokio::test]
async fn servicenow_writes_only_to_allowed_tables() {
    let fake = FakeTickets::start().await;
    let insecure = "      allow_insecure_http: true\n";
    let n = notifier(&snow(&fake.url(), insecure));
    for table in [
        "incident",
        "sc_req_item",
        "sc_task",
        "change_request",
        "problem",
    ] {
        n.send("snow", &note(table)).await.unwrap();
    }
    let err = n.send("snow", &note("sys_user")).await.unwrap_err();
    assert_eq!(
        err,
        SendError::Permanent {
            reason: "ServiceNow table `sys_user` is not in reply.tables (allowed: incident, \
                     sc_req_item, sc_task, change_request, problem)"
                .into()
        }
    );
    assert_eq!(fake.requests(), 5, "the refused one is never sent");

    let custom = notifier(&snow(
        &fake.url(),
        &format!("{insecure}      tables: [u_ops_ticket]\n"),
    ));
    custom.send("snow", &note("u_ops_ticket")).await.unwrap();
    let err = custom.send("snow", &note("incident")).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "ServiceNow table `incident` is not in reply.tables (allowed: u_ops_ticket)"
    );

    let bad = snow(
        &fake.url(),
        &format!("{insecure}      tables: [\"Bad-Name\"]\n"),
    );
    let err = Settings::from_parts(Some(&bad), None, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("reply.tables: `Bad-Name` is not a table name ([a-z0-9_]+)"),
        "{err}"
    );
}
