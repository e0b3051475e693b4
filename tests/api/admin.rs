//! The admin API (`/api/v1/…`) and the `simulate` / `events` / `replay` commands.

use crate::support::pipeline::{wait_for, wait_quiescent, Options, Pipeline};
use crate::support::{error_of, Sender, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

/// Every route that needs the token, with a body where it takes one.
fn protected_routes() -> Vec<(&'static str, String, Option<Value>)> {
    let id = Uuid::now_v7();
    vec![
        ("GET", "/events".into(), None),
        ("GET", format!("/events/{id}"), None),
        ("POST", format!("/events/{id}/replay"), None),
        ("GET", "/callbacks?state=dead".into(), None),
        ("POST", format!("/callbacks/{id}/retry"), None),
        (
            "POST",
            "/simulate".into(),
            Some(json!({"source": "snow", "body": {}})),
        ),
        ("GET", "/rules".into(), None),
        ("POST", "/rules/snow-remediation/pause".into(), None),
        (
            "POST",
            "/rules/snow-remediation/resume".into(),
            Some(json!({"held": "release"})),
        ),
        ("POST", "/catch-up/gh".into(), None),
    ]
}

/// The event as GET /api/v1/events/{id} shows it, once `done` holds.
async fn event_when(p: &Pipeline, id: &str, what: &str, done: fn(&Value) -> bool) -> Value {
    wait_for(what, 30, || async {
        let (status, body) = p.app.admin("GET", &format!("/events/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        done(&body).then_some(body)
    })
    .await
}

fn finished_and_both_sent(e: &Value) -> bool {
    let launches = e["launches"].as_array().map_or(0, Vec::len);
    let cbs = e["callbacks"].as_array().cloned().unwrap_or_default();
    launches == 1
        && e["launches"][0]["state"] == "finished"
        && cbs.len() == 2
        && cbs.iter().all(|c| c["state"] == "sent")
}

#[sqlx::test]
async fn admin_api_shows_an_event_end_to_end_and_replays_it(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    let accepted = p.deliver(Sender::ServiceNow, "adm-1").await;
    let id = accepted["event_id"].as_str().unwrap().to_string();
    let event = event_when(
        &p,
        &id,
        "the launch finished and both post-backs sent",
        finished_and_both_sent,
    )
    .await;

    // The list, filtered.
    let (status, list) = p.app.admin("GET", "/events?source=snow", None).await;
    assert_eq!(status, 200, "{list}");
    let events = list["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{list}");
    let summary = &events[0];
    assert_eq!(summary["id"], id.as_str());
    assert_eq!(
        (&summary["kind"], &summary["event_type"], &summary["state"]),
        (
            &json!("servicenow"),
            &json!("incident.insert"),
            &json!("dispatched")
        )
    );
    assert_eq!(summary["category"], "disk_full");
    assert_eq!(summary["ticket"]["number"], "INC0010001");
    assert!(summary.get("payload").is_none(), "the list has no payloads");
    assert!(list["next_before"].is_null());
    for filter in ["state=unmapped", "source=gh", "category=printer_jam"] {
        let (_, other) = p.app.admin("GET", &format!("/events?{filter}"), None).await;
        assert_eq!(other["events"], json!([]), "{filter}: {other}");
    }
    let (_, both) = p
        .app
        .admin(
            "GET",
            "/events?source=snow&state=dispatched&category=disk_full&event_type=incident.insert",
            None,
        )
        .await;
    assert_eq!(both["events"].as_array().unwrap().len(), 1, "{both}");

    // The detail: decision, launch with its job, both post-backs.
    assert_eq!(event["decision"]["planned"][0]["rule"], "snow-remediation");
    assert_eq!(event["payload"]["cmdb_ci"], "web01.example.com");
    assert_eq!(
        event["headers"]["content-type"], "application/json",
        "{event}"
    );
    let launch = &event["launches"][0];
    assert_eq!(launch["rule"], "snow-remediation");
    assert_eq!(launch["template_id"], 15);
    assert_eq!(launch["job_status"], "successful");
    assert!(launch["job_id"].as_i64().is_some(), "{launch}");
    assert!(
        launch["job_url"]
            .as_str()
            .unwrap()
            .contains("/#/jobs/playbook/"),
        "{launch}"
    );
    assert_eq!(
        launch["request"]["extra_vars"]["incident_number"],
        "INC0010001"
    );
    assert!(launch["elapsed_secs"].as_f64().is_some(), "{launch}");
    let phases: Vec<&str> = event["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["launched", "finished"]);
    assert_eq!(event["callbacks"][0]["launch_id"], launch["id"]);
    assert_eq!(event["callbacks"][0]["last_status"], 200);

    // Replay: a new pending event that launches a second job.
    let (status, replayed) = p
        .app
        .admin("POST", &format!("/events/{id}/replay"), None)
        .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["status"], "accepted");
    assert_eq!(replayed["replay_of"], id.as_str());
    let new_id = replayed["event_id"].as_str().unwrap().to_string();
    assert_ne!(new_id, id);
    wait_for("the replay's job", 20, || async {
        (p.controller.jobs_launched() == 2).then_some(())
    })
    .await;
    let copy = event_when(&p, &new_id, "the replay finished", finished_and_both_sent).await;
    assert_eq!(copy["replay_of"], id.as_str());
    assert_eq!(copy["payload"], event["payload"]);
    assert!(
        copy["delivery_id"].as_str().unwrap().ends_with("#replay-1"),
        "{copy}"
    );
    assert_ne!(copy["launches"][0]["job_id"], launch["job_id"]);
    let (_, again) = p
        .app
        .admin("POST", &format!("/events/{id}/replay"), None)
        .await;
    let (_, third) = p
        .app
        .admin(
            "GET",
            &format!("/events/{}", again["event_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(
        third["delivery_id"]
            .as_str()
            .unwrap()
            .ends_with("#replay-2"),
        "{third}"
    );
    // Newest first.
    let (_, list) = p.app.admin("GET", "/events?source=snow", None).await;
    assert_eq!(list["events"][0]["id"], again["event_id"]);
    assert_eq!(list["events"][2]["id"], id.as_str());
}

#[sqlx::test]
async fn a_dead_callback_is_listed_and_retried(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    p.tickets.fail_next(1, 404, None);
    let id = p.deliver(Sender::ServiceNow, "adm-dead").await["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let dead = wait_for("a dead callback", 20, || async {
        let (status, body) = p.app.admin("GET", "/callbacks?state=dead", None).await;
        assert_eq!(status, 200, "{body}");
        let list = body["callbacks"].as_array().cloned().unwrap_or_default();
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    let cb = &dead[0];
    assert_eq!(cb["event_id"], id.as_str());
    assert_eq!(cb["phase"], "launched");
    assert!(cb["last_error"].as_str().unwrap().contains("404"), "{cb}");

    let (status, retried) = p
        .app
        .admin(
            "POST",
            &format!("/callbacks/{}/retry", cb["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["id"], cb["id"]);
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["attempts"], 0);
    event_when(
        &p,
        &id,
        "the retried post-back sent",
        finished_and_both_sent,
    )
    .await;
    let (_, none) = p.app.admin("GET", "/callbacks?state=dead", None).await;
    assert_eq!(none["callbacks"], json!([]));
    let (_, all) = p.app.admin("GET", "/callbacks?limit=10", None).await;
    assert_eq!(all["callbacks"].as_array().unwrap().len(), 2, "{all}");

    let (status, body) = p
        .app
        .admin(
            "POST",
            &format!("/callbacks/{}/retry", cb["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        error_of(&body),
        "callback is sent, only dead callbacks can be retried"
    );
}

#[sqlx::test]
async fn every_admin_route_needs_the_token(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    for (method, path, body) in protected_routes() {
        for token in [
            None,
            Some("wrong"),
            Some("admin-secre"),
            Some("admin-secret2"),
        ] {
            let (status, answer) = p.app.admin_as(token, method, &path, body.clone()).await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {answer}");
            assert_eq!(error_of(&answer), "missing or wrong admin bearer token");
        }
        // The right token but another scheme.
        let resp = p
            .app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}/api/v1{path}", p.app.base),
            )
            .header("Authorization", "Basic admin-secret")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
        assert!(resp.headers().contains_key("www-authenticate"));
        let (status, answer) = p.app.admin(method, &path, body.clone()).await;
        assert_ne!(status, 401, "{method} {path}: {answer}");
    }
    let (status, _) = p.app.admin_as(None, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200, "the OpenAPI document is public");

    // Without admin.token, the API is off.
    let plain = TestApp::spawn(pool).await;
    for (method, path, body) in protected_routes() {
        for token in [None, Some("admin-secret"), Some("")] {
            let (status, answer) = plain.admin_as(token, method, &path, body.clone()).await;
            assert_eq!(status, 401, "{method} {path}: {answer}");
            assert_eq!(
                error_of(&answer),
                "the admin API is disabled: set admin.token"
            );
        }
    }
}

#[sqlx::test]
async fn simulate_renders_the_request_and_stores_nothing(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    let before = p.app.event_count().await;
    let body: Value = serde_json::from_slice(&Sender::ServiceNow.body("sim-1")).unwrap();
    let (status, sim) = p
        .app
        .admin(
            "POST",
            "/simulate",
            Some(json!({"source": "snow", "headers": {"Content-Type": "application/json"}, "body": body})),
        )
        .await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["ignored"], Value::Null);
    assert_eq!(sim["state"], "dispatched");
    assert_eq!(sim["event"]["event_type"], "incident.insert");
    assert_eq!(sim["event"]["ticket"]["sys_id"], SYS_ID);
    assert_eq!(sim["decision"]["planned"][0]["rule"], "snow-remediation");
    let launches = sim["launches"].as_array().unwrap();
    assert_eq!(launches.len(), 1, "{sim}");
    assert_eq!(launches[0]["rule"], "snow-remediation");
    assert_eq!(launches[0]["template"]["id"], 15);
    let vars = &launches[0]["request"]["extra_vars"];
    assert_eq!(vars["incident_number"], "INC0010001");
    assert_eq!(vars["target_host"], "web01.example.com");
    assert_eq!(vars["priority"], "2");
    assert_eq!(vars["aap_bridge_event_id"], "<simulated>");
    assert_eq!(vars["aap_bridge_launch_id"], "<simulated>");

    // Unmapped: still 200, with the reason.
    let (status, unmapped) = p
        .app
        .admin(
            "POST",
            "/simulate",
            Some(json!({"source": "snow", "body": {"sys_id": "x", "sys_updated_on": "y", "category": "printer_jam"}})),
        )
        .await;
    assert_eq!(status, 200, "{unmapped}");
    assert_eq!(unmapped["state"], "unmapped");
    assert_eq!(unmapped["launches"], json!([]));
    assert!(unmapped["reason"].as_str().unwrap().contains("printer_jam"));

    // GitHub with its headers, and a ping (ignored), the body given as a string.
    let gh: Value = serde_json::from_slice(&Sender::Github.body("sim-gh")).unwrap();
    let headers =
        json!({"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1", "X-GitHub-Hook-ID": "7"});
    let (status, sim) = p
        .app
        .admin(
            "POST",
            "/simulate",
            Some(json!({"source": "gh", "headers": headers, "body": gh.to_string()})),
        )
        .await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["launches"][0]["rule"], "gh-disk");
    assert_eq!(
        sim["launches"][0]["request"]["extra_vars"]["repo"],
        "acme/ops"
    );
    let ping =
        json!({"X-GitHub-Event": "ping", "X-GitHub-Delivery": "d-2", "X-GitHub-Hook-ID": "7"});
    let (status, sim) = p
        .app
        .admin(
            "POST",
            "/simulate",
            Some(json!({"source": "gh", "headers": ping, "body": {"zen": "hi"}})),
        )
        .await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["state"], "ignored");
    assert!(sim["ignored"].is_string(), "{sim}");
    assert_eq!(sim["launches"], json!([]));

    // Refusals.
    let cases = [
        (
            json!({"source": "nope", "body": {}}),
            404,
            "unknown source `nope`",
        ),
        (
            json!({"source": "snow", "body": "not json"}),
            400,
            "not valid JSON",
        ),
        (
            json!({"source": "snow", "body": [1, 2]}),
            400,
            "JSON object",
        ),
        (
            json!({"source": "snow", "body": {"category": "x"}}),
            400,
            "sys_id",
        ),
        (json!({"body": {}}), 400, "`source`"),
        (json!({"source": "snow", "payload": {}}), 400, "`payload`"),
        (json!({"source": "gh", "body": {}}), 400, "x-github-event"),
        (
            json!({"source": "snow", "headers": {"Bad Header": "x"}, "body": {}}),
            400,
            "Bad Header",
        ),
    ];
    for (req, want, text) in cases {
        let (status, body) = p.app.admin("POST", "/simulate", Some(req.clone())).await;
        assert_eq!(status, want, "{req}: {body}");
        assert!(error_of(&body).contains(text), "{req}: {body}");
    }
    let resp = p
        .app
        .client
        .post(format!("{}/api/v1/simulate", p.app.base))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.json::<Value>().await.unwrap()["error"].is_string());

    wait_quiescent(&pool, &p.controller, 10).await;
    assert_eq!(p.app.event_count().await, before, "simulate stores nothing");
    assert_eq!(p.controller.jobs_launched(), 0, "simulate launches nothing");
}

#[sqlx::test]
async fn bad_parameters_and_unknown_ids_are_named(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    let cases = [
        ("/events?limit=0", "`limit`"),
        ("/events?limit=501", "`limit`"),
        ("/events?limit=ten", "`limit`"),
        ("/events?since=yesterday", "`since`"),
        ("/events?until=2026-13-01T00:00:00Z", "`until`"),
        ("/events?state=done", "`state`"),
        ("/events?before=nope", "`before`"),
        ("/events?sorce=snow", "`sorce`"),
        ("/callbacks?state=lost", "`state`"),
        ("/callbacks?limit=-1", "`limit`"),
        ("/events/not-a-uuid", "`id`"),
    ];
    for (path, name) in cases {
        let (status, body) = p.app.admin("GET", path, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(error_of(&body).contains(name), "{path}: {body}");
    }
    for (method, path) in [
        ("POST", "/events/12/replay"),
        ("POST", "/callbacks/x/retry"),
    ] {
        let (status, body) = p.app.admin(method, path, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(error_of(&body).contains("`id`"), "{path}: {body}");
    }
    let unknown = Uuid::now_v7();
    for (method, path) in [
        ("GET", format!("/events/{unknown}")),
        ("POST", format!("/events/{unknown}/replay")),
        ("POST", format!("/callbacks/{unknown}/retry")),
    ] {
        let (status, body) = p.app.admin(method, &path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(error_of(&body).contains(&unknown.to_string()), "{body}");
    }
    // Wrong method and unknown path: JSON errors too.
    let (status, body) = p.app.admin("GET", "/simulate", None).await;
    assert_eq!(status, 405, "{body}");
    error_of(&body);
    let (status, body) = p.app.admin("GET", "/nothing-here", None).await;
    assert_eq!(status, 404, "{body}");
    error_of(&body);
    // An offset with an unencoded `+` and an empty value are accepted.
    let (status, body) = p
        .app
        .admin(
            "GET",
            "/events?since=2026-01-01T00:00:00+01:00&source=",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[sqlx::test]
async fn events_page_newest_first_and_filter_by_time(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let accepted = p.deliver(Sender::ServiceNow, &format!("page-{n}")).await;
        ids.push(accepted["event_id"].as_str().unwrap().to_string());
    }
    let (_, first) = p.app.admin("GET", "/events?limit=2", None).await;
    let got: Vec<&str> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let cursor = first["next_before"].as_str().expect("a next page");
    assert_eq!(cursor, ids[1]);
    let (_, second) = p
        .app
        .admin("GET", &format!("/events?limit=2&before={cursor}"), None)
        .await;
    assert_eq!(second["events"].as_array().unwrap().len(), 1);
    assert_eq!(second["events"][0]["id"], ids[0].as_str());
    assert!(second["next_before"].is_null());

    let (_, future) = p
        .app
        .admin("GET", "/events?since=2999-01-01T00:00:00Z", None)
        .await;
    assert_eq!(future["events"], json!([]));
    let (_, past) = p
        .app
        .admin("GET", "/events?until=2000-01-01T00:00:00Z", None)
        .await;
    assert_eq!(past["events"], json!([]));
    let (_, window) = p
        .app
        .admin(
            "GET",
            "/events?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(window["events"].as_array().unwrap().len(), 3);
}

#[sqlx::test]
async fn openapi_lists_every_admin_path(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let (status, doc) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    // Generated by utoipa, which writes OpenAPI 3.1.
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/events",
        "/api/v1/events/{id}",
        "/api/v1/events/{id}/replay",
        "/api/v1/callbacks",
        "/api/v1/callbacks/{id}/retry",
        "/api/v1/simulate",
        "/api/v1/rules",
        "/api/v1/rules/{name}/pause",
        "/api/v1/rules/{name}/resume",
        "/api/v1/catch-up/{source}",
        "/api/v1/launches/{id}/approve",
        "/api/v1/openapi.json",
        "/hooks/{source}",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["adminBearer"]["scheme"],
        "bearer"
    );
    // Every $ref points at something that exists.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/").skip(1) {
        let target = &part[..part.find('"').unwrap()];
        assert!(
            doc.pointer(&format!("/{target}")).is_some(),
            "dangling $ref {target}"
        );
    }
}

/// Every documented operation, as (method, path).
fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops.sort();
    ops
}

#[sqlx::test]
async fn openapi_documents_every_route_and_only_real_ones(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    let (status, doc) = p.app.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let mut expected: Vec<(String, String)> = [
        ("POST", "/hooks/{source}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/events/{id}"),
        ("POST", "/api/v1/events/{id}/replay"),
        ("POST", "/api/v1/launches/{id}/approve"),
        ("POST", "/api/v1/launches/{id}/deny"),
        ("GET", "/api/v1/callbacks"),
        ("POST", "/api/v1/callbacks/{id}/retry"),
        ("POST", "/api/v1/simulate"),
        ("GET", "/api/v1/rules"),
        ("POST", "/api/v1/rules/{name}/pause"),
        ("POST", "/api/v1/rules/{name}/resume"),
        ("POST", "/api/v1/catch-up/{source}"),
        ("GET", "/api/v1/deliveries"),
        ("GET", "/api/v1/audit"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(documented(&doc), expected);
    // Each documented operation is served: the answer is never the router's own 404 or 405.
    for (method, path) in documented(&doc) {
        let url = path
            .replace("{source}", "gh")
            .replace("{id}", &Uuid::now_v7().to_string());
        let resp = p
            .app
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{url}", p.app.base),
            )
            .bearer_auth(crate::support::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        assert!(!text.contains("no route for"), "{method} {path}: {text}");
        assert_ne!(status, 405, "{method} {path}: {text}");
    }
    // Every admin operation names its security and its error body.
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        if path.starts_with("/api/v1/") && path != "/api/v1/openapi.json" {
            assert_eq!(op["security"][0]["adminBearer"], json!([]), "{path}");
            assert!(op["responses"]["401"].is_object(), "{path}");
        }
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/events"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "source", "state", "ticket", "since", "until", "before", "limit",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
}

// The commands, through the binary.

pub(crate) async fn run_cli(
    args: &[&str],
    config: &str,
    database: Option<&str>,
) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aap-bridge"));
    cmd.arg("--config")
        .arg(&path)
        .args(args)
        .env_remove("AAP_BRIDGE_CONFIG");
    if let Some(url) = database {
        cmd.env("AAP_BRIDGE__DATABASE__URL", url);
    }
    cmd.output().await.unwrap()
}

/// The URL of the test's own database.
pub(crate) fn database_url(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (see .cargo/config.toml)");
    let db = pool.connect_options().get_database().unwrap().to_string();
    let (server, _) = base.rsplit_once('/').unwrap();
    let query = base.split_once('?').map(|(_, q)| format!("?{q}"));
    format!("{server}/{db}{}", query.unwrap_or_default())
}

pub(crate) fn stdout(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test]
async fn cli_simulate_prints_the_rendered_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        crate::support::pipeline::RULES,
    )
    .unwrap();
    let config = crate::support::pipeline::config(
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        dir.path(),
        30,
    ) + "log: {level: warn}\n";
    let body = String::from_utf8(Sender::ServiceNow.body("cli-1")).unwrap();
    let out = run_cli(
        &["simulate", "--source", "snow", "--body-json", &body],
        &config,
        None,
    )
    .await;
    let sim: Value = serde_json::from_str(&stdout(&out)).expect("JSON on stdout");
    assert_eq!(sim["launches"][0]["rule"], "snow-remediation");
    assert_eq!(
        sim["launches"][0]["request"]["extra_vars"]["incident_number"],
        "INC0010001"
    );
    assert_eq!(
        sim["launches"][0]["request"]["extra_vars"]["aap_bridge_launch_id"],
        "<simulated>"
    );

    // From a file, with headers.
    let file = dir.path().join("issue.json");
    std::fs::write(&file, Sender::Github.body("cli-gh")).unwrap();
    let out = run_cli(
        &[
            "simulate",
            "--source",
            "gh",
            "--header",
            "X-GitHub-Event: issues",
            "-H",
            "X-GitHub-Delivery: d1",
            "-H",
            "X-GitHub-Hook-ID: 5",
            "--body",
            file.to_str().unwrap(),
        ],
        &config,
        None,
    )
    .await;
    let sim: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(sim["launches"][0]["rule"], "gh-disk");

    // Unmapped is not an error; bad input is.
    let out = run_cli(
        &[
            "simulate",
            "--source",
            "snow",
            "--body-json",
            r#"{"sys_id": "a", "sys_updated_on": "b"}"#,
        ],
        &config,
        None,
    )
    .await;
    let sim: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(sim["state"], "unmapped");
    for (args, text) in [
        (
            vec!["--source", "nope", "--body-json", "{}"],
            "unknown source `nope`",
        ),
        (
            vec!["--source", "snow", "--body-json", "{oops"],
            "--body-json is not valid JSON",
        ),
        (
            vec!["--source", "snow", "-H", "no colon", "--body-json", "{}"],
            "Name: value",
        ),
        (
            vec!["--source", "snow", "--body", "/nonexistent/x.json"],
            "cannot read --body",
        ),
    ] {
        let out = run_cli(&[&["simulate"], args.as_slice()].concat(), &config, None).await;
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(text), "{args:?}: {err}");
    }
}

#[sqlx::test]
async fn cli_events_and_replay_read_the_database(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let accepted = app.deliver(Sender::ServiceNow, "cli-ev").await.1;
    let id = accepted["event_id"].as_str().unwrap().to_string();
    wait_for("the decision", 10, || async {
        let state: String = sqlx::query_scalar("SELECT state FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
        (state != "pending").then_some(())
    })
    .await;
    let url = database_url(&pool);
    let config = "log: {level: warn}\n";

    let table = stdout(&run_cli(&["events", "--source", "snow"], config, Some(&url)).await);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID"), "{table}");
    assert!(lines[1].starts_with(&id), "{table}");
    assert!(lines[1].contains("unmapped"), "{table}");
    assert!(lines[1].contains("no rule for source `snow`"), "{table}");
    let none = stdout(&run_cli(&["events", "--state", "failed"], config, Some(&url)).await);
    assert!(none.contains("(no events)"), "{none}");

    let full = stdout(&run_cli(&["events", "--id", &id], config, Some(&url)).await);
    let full: Value = serde_json::from_str(&full).unwrap();
    assert_eq!(full["id"], id.as_str());
    assert_eq!(full["state"], "unmapped");
    assert_eq!(full["launches"], json!([]));

    let new_id = stdout(&run_cli(&["replay", &id], config, Some(&url)).await);
    let new_id: Uuid = new_id.trim().parse().expect("the new id");
    let replay_of: Option<Uuid> = sqlx::query_scalar("SELECT replay_of FROM events WHERE id = $1")
        .bind(new_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(replay_of.map(|u| u.to_string()), Some(id.clone()));

    let missing = run_cli(&["replay", &Uuid::now_v7().to_string()], config, Some(&url)).await;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no event"));
    let bad = run_cli(&["replay", "not-a-uuid"], config, Some(&url)).await;
    assert!(!bad.status.success());
}
