//! Search: case-insensitive fragments of ticket numbers, sys_ids, PagerDuty ids, repositories
//! and payload text, through the API and the console's header box; the trigram index is usable.

use crate::support::console::Console;
use crate::support::{error_of, Sender, TestApp, SOURCES_YAML};
use sqlx::PgPool;

fn yaml() -> String {
    format!("{SOURCES_YAML}admin:\n  token: admin-secret\n")
}

async fn found(app: &TestApp, q: &str) -> Vec<String> {
    let path = format!("/events?q={}", urlencode(q));
    let (status, body) = app.admin("GET", &path, None).await;
    assert_eq!(status, 200, "{q}: {body}");
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap().to_string())
        .collect()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[sqlx::test]
async fn fragments_find_tickets_ids_repositories_and_payload_text(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), pool.clone(), &yaml()).await;
    let snow = Sender::ServiceNow;
    let body = String::from_utf8(snow.body("s-1"))
        .unwrap()
        .replace("INC0010001", "INC0020055")
        .into_bytes();
    let h = snow.signed_headers(snow.new_secret(), "s-1", &body);
    assert_eq!(app.post("snow", &h, &body).await.0, 202);
    assert_eq!(app.deliver(Sender::PagerDuty, "p-1").await.0, 202);
    let guid = "72D3162E-CC78-11E3-81AB-4C9367DC0958";
    assert_eq!(app.deliver(Sender::Github, guid).await.0, 202);

    for q in ["inc0020055", "0020055", "INC00200", "  Inc0020055 "] {
        assert_eq!(found(&app, q).await, ["snow"], "{q}");
    }
    assert_eq!(
        found(&app, "9d385017c6112287").await,
        ["snow"],
        "a sys_id fragment"
    );
    assert_eq!(
        found(&app, "pabc123").await,
        ["pd"],
        "a PagerDuty incident id"
    );
    assert_eq!(
        found(&app, "acme/ops#42").await,
        ["gh"],
        "repository and issue"
    );
    assert_eq!(found(&app, "ACME/OPS").await, ["gh"]);
    // A delivery id (stored `1001:<guid>`) by its beginning, however it is pasted.
    for q in [guid, "72d3162e", "1001:72d3162e-cc78", " 72D3162E-CC78 "] {
        assert_eq!(found(&app, q).await, ["gh"], "{q}");
    }
    assert!(found(&app, "1001:").await.is_empty(), "no empty prefix");
    assert_eq!(
        found(&app, "web01.example.com").await,
        ["snow"],
        "payload text"
    );
    assert_eq!(
        found(&app, "disk full on web01").await,
        ["gh"],
        "payload text"
    );
    assert!(found(&app, "INC0099999").await.is_empty());
    assert!(found(&app, "%").await.is_empty(), "wildcards are literal");
    assert_eq!(found(&app, "0020055").await.len(), 1);
    let (status, body) = app
        .admin("GET", &format!("/events?q={}", "x".repeat(201)), None)
        .await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("`q`"), "{body}");

    // The header's search box on every console page leads to the events it finds.
    let console = Console::logged_in(&app.base).await;
    let page = console.get("/ui/deliveries").await;
    page.assert_has(r#"name="q" type="search""#);
    let page = console.get("/ui/events?q=0020055").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_has("INC0020055");
    assert!(!page.body.contains(">PABC123<"), "only what matches");

    // The indexes are there and serve the searches once the table is large enough to need
    // them; the id ranges take a parameter, as the event list binds them.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .unwrap();
    // On an empty table the catch-up's sys_id index (any sys_id, scanned whole) costs the
    // same; out of the way (rolled back with the transaction), the planner shows the range.
    sqlx::query("DROP INDEX events_servicenow_sys_id")
        .execute(&mut *tx)
        .await
        .unwrap();
    for (sql, index) in [
        (
            "EXPLAIN SELECT id FROM events WHERE aap_bridge_ticket_keys(ticket) LIKE $1",
            "events_ticket_search",
        ),
        (
            r#"EXPLAIN SELECT id FROM events
               WHERE aap_bridge_id_key(delivery_id) COLLATE "C" >= $1
                 AND aap_bridge_id_key(delivery_id) COLLATE "C" < $1 || chr(1114111)"#,
            "events_delivery_key",
        ),
        (
            r#"EXPLAIN SELECT id FROM events WHERE kind = 'servicenow'
                 AND lower(ticket ->> 'sys_id') COLLATE "C" >= $1
                 AND lower(ticket ->> 'sys_id') COLLATE "C" < $1 || chr(1114111)"#,
            "events_sys_id_key",
        ),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(sql)
            .bind("%0020055%")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert!(plan.iter().any(|l| l.contains(index)), "{index}: {plan:#?}");
    }
    // The random delivery ids are out of the trigram index (issue 20).
    let trigram: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE '%gin%'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(trigram, ["events_ticket_search"]);
}
