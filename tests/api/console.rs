//! The console under `/ui/`: login and session cookie, CSRF on every form, each page over HTTP,
//! and escaping of untrusted payload and ticket values.

use crate::support::console::{Console, Page};
use crate::support::pipeline::{wait_for, Options, Pipeline};
use crate::support::{Sender, TestApp, ADMIN_TOKEN};
use serde_json::json;
use sqlx::PgPool;

/// Every page behind the session, and every form.
const PAGES: &[&str] = &[
    "/ui/",
    "/ui/events",
    "/ui/rules",
    "/ui/dead",
    "/ui/simulate",
];

fn forms(id: &str) -> Vec<String> {
    vec![
        format!("/ui/events/{id}/replay"),
        format!("/ui/callbacks/{id}/retry"),
        "/ui/simulate".into(),
        "/ui/rules/pause".into(),
        "/ui/rules/resume".into(),
        "/ui/logout".into(),
    ]
}

async fn event_state(pool: &PgPool, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT state FROM events WHERE id = $1::uuid")
        .bind(id)
        .fetch_optional(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn login_gives_a_session_cookie_and_every_page_needs_it(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    let mut c = Console::new(&p.app.base);
    let root = c.get("/").await;
    assert_eq!((root.status, root.location.as_deref()), (303, Some("/ui/")));
    let id = uuid::Uuid::now_v7().to_string();
    let event_page = format!("/ui/events/{id}");
    for path in PAGES.iter().copied().chain([event_page.as_str()]) {
        let page = c.get(path).await;
        assert_eq!(page.status, 303, "{path} without a session");
        assert_eq!(page.location.as_deref(), Some("/ui/login"), "{path}");
    }
    for path in forms(&id) {
        let page = c.post(&path, &[("csrf", "x")]).await;
        assert_eq!(page.status, 303, "POST {path} without a session");
        assert_eq!(page.location.as_deref(), Some("/ui/login"));
    }
    // A forged or foreign cookie is no session.
    c.cookie = Some("aap_bridge_session=1.abc.def".into());
    assert_eq!(c.get("/ui/").await.status, 303);

    let login = c.get("/ui/login").await;
    assert_eq!(login.status, 200);
    login.assert_has("name=\"token\"");
    let csp = login.csp.clone().expect("a CSP header");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'none'"), "{csp}");
    for wrong in ["wrong", "admin-secre"] {
        let page = c.login(wrong).await;
        assert_eq!(page.status, 401, "{wrong}");
        assert!(page.set_cookie.is_none());
        page.assert_has("not the admin token");
    }
    let page = c.login("").await;
    assert_eq!(page.status, 400, "nothing entered");
    assert!(page.set_cookie.is_none());
    c.cookie = None;
    let page = c.login(ADMIN_TOKEN).await;
    assert_eq!((page.status, page.location.as_deref()), (303, Some("/ui/")));
    let cookie = page.set_cookie.expect("a session cookie");
    for part in [
        "aap_bridge_session=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/ui",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains(ADMIN_TOKEN), "never the token itself");
    assert!(
        !cookie.contains("Secure"),
        "dev_mode serves plain HTTP: {cookie}"
    );

    for path in PAGES {
        let page = c.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.csp.is_some(), "{path} has a CSP");
        page.assert_has("Log out");
    }
    // The login page sends a logged-in user on.
    assert_eq!(c.get("/ui/login").await.location.as_deref(), Some("/ui/"));
    let missing = c.get("/ui/no-such-page").await;
    assert_eq!(missing.status, 404);
    missing.assert_has("no such console page");
    let wrong = c.get("/ui/logout").await;
    assert_eq!(wrong.status, 405);
    wrong.assert_has("GET is not allowed on &#x2f;ui&#x2f;logout");
    assert!(wrong.csp.is_some());

    // Logout needs the CSRF token too, then drops the cookie.
    assert_eq!(c.post("/ui/logout", &[]).await.status, 403);
    let out = c.submit("/ui/", "/ui/logout", &[]).await;
    assert_eq!(
        (out.status, out.location.as_deref()),
        (303, Some("/ui/login"))
    );
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
}

#[sqlx::test]
async fn the_console_is_off_without_an_admin_token(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut c = Console::new(&app.base);
    let page = c.get("/ui/login").await;
    assert_eq!(page.status, 401);
    page.assert_has("set admin.token");
    assert_eq!(c.login("admin-secret").await.status, 401);
    assert!(c.cookie.is_none());
    assert_eq!(c.get("/ui/").await.location.as_deref(), Some("/ui/login"));
}

#[sqlx::test]
async fn pages_show_an_event_and_its_forms_replay_and_retry(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    p.tickets.fail_next(1, 404, None);
    let id = p.deliver(Sender::ServiceNow, "ui-1").await["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = Console::logged_in(&p.app.base).await;
    let dead_id: String = wait_for("a dead post-back and a finished job", 30, || async {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT c.id::text, l.state FROM callbacks c JOIN launches l ON l.id = c.launch_id
             WHERE c.state = 'dead'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        row.filter(|(_, launch)| launch == "finished")
            .map(|(id, _)| id)
    })
    .await;

    let overview = c.get("/ui/").await;
    overview.assert_has(env!("CARGO_PKG_VERSION"));
    overview.assert_has("dispatched");
    overview.assert_has("events_pending");
    overview.assert_has("health: <span class=\"state s-ok\">ok</span>");
    overview.assert_has("awx");
    overview.assert_has(&format!("/ui/events/{id}"));
    overview.assert_has("404");

    let list = c.get("/ui/events").await;
    list.assert_has(&format!("/ui/events/{id}"));
    list.assert_has("INC0010001");
    list.assert_has("disk_full");
    for (query, found) in [
        ("ticket=INC0010001", true),
        ("ticket=INC9", false),
        (
            "source=snow&state=dispatched&category=disk_full&event_type=incident.insert",
            true,
        ),
        ("state=failed", false),
        ("since=2999-01-01T00:00", false),
        ("since=2000-01-01T00:00&until=2999-01-01T00:00", true),
    ] {
        let page = c.get(&format!("/ui/events?{query}")).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert_eq!(
            page.body.contains(&format!("/ui/events/{id}")),
            found,
            "{query}"
        );
    }
    let bad = c.get("/ui/events?state=done").await;
    assert_eq!(bad.status, 400);
    bad.assert_has("`state`");

    let event = c.get(&format!("/ui/events/{id}")).await;
    assert_eq!(event.status, 200);
    for text in [
        "received from snow (incident.insert)",
        "decided: dispatched",
        "launch planned: rule snow-remediation",
        "launched: job",
        "successful",
        "post-back `launched` to snow: dead",
        "post-back `finished` to snow",
        "matched",
        "job template 15",
        "#&#x2f;jobs&#x2f;playbook&#x2f;",
        "&quot;cmdb_ci&quot;: &quot;web01.example.com&quot;",
        "<th>content-type</th>",
    ] {
        event.assert_has(text);
    }

    // Replay: refused without the CSRF token, then a new event.
    let replay = format!("/ui/events/{id}/replay");
    for csrf in [None, Some("forged")] {
        let form: Vec<(&str, &str)> = csrf.map(|t| ("csrf", t)).into_iter().collect();
        let page = c.post(&replay, &form).await;
        assert_eq!(page.status, 403, "{csrf:?}");
        page.assert_has("CSRF");
    }
    assert_eq!(p.app.event_count().await, 1, "nothing replayed");
    // A double click sends the same form twice: one copy, and both answers lead to it.
    let form = c.get(&format!("/ui/events/{id}")).await;
    let (csrf, once) = (form.csrf(), form.hidden("once"));
    let ask = c
        .post(&replay, &[("csrf", csrf.as_str()), ("once", once.as_str())])
        .await;
    assert_eq!(ask.status, 200, "a confirmation page first");
    ask.assert_has("Replay this event");
    assert_eq!(
        p.app.event_count().await,
        1,
        "nothing replayed before the confirmation"
    );
    let fields = [
        ("csrf", csrf.as_str()),
        ("once", once.as_str()),
        ("confirm", "yes"),
    ];
    let replayed = c.post(&replay, &fields).await;
    assert_eq!(replayed.status, 303);
    let twice = c.post(&replay, &fields).await;
    assert_eq!(twice.status, 303);
    assert_eq!(twice.location, replayed.location, "the same copy");
    assert_eq!(p.app.event_count().await, 2, "one copy for two submissions");
    let to = replayed.location.unwrap();
    let new_id = to.strip_prefix("/ui/events/").unwrap().to_string();
    assert_ne!(new_id, id);
    assert!(event_state(&pool, &new_id).await.is_some());
    c.get(&to).await.assert_has("a replay of event");

    // Dead letters: listed, refused without CSRF, retried with it.
    let dead = c.get("/ui/dead").await;
    dead.assert_has(&format!("/ui/callbacks/{dead_id}/retry"));
    // The ticket API's answer is kept: the 404 that made it a dead letter.
    dead.assert_has(">404</td>");
    let (status, cb) = p.app.admin("GET", "/callbacks?state=dead", None).await;
    assert_eq!(status, 200, "{cb}");
    assert!(cb.to_string().contains("\"last_status\":404"), "{cb}");
    let retry = format!("/ui/callbacks/{dead_id}/retry");
    assert_eq!(c.post(&retry, &[("csrf", "nope")]).await.status, 403);
    let done = c.submit("/ui/dead", &retry, &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = c.get(done.location.as_deref().unwrap()).await;
    back.assert_has("is queued again");
    let again = c.submit("/ui/dead", &retry, &[]).await;
    assert!(matches!(again.status, 303 | 409), "{}", again.body);
}

#[sqlx::test]
async fn rules_page_shows_where_each_rule_is_and_what_it_launched(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    let id = p.deliver(Sender::ServiceNow, "ui-rules").await["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the launch", 20, || async {
        (p.controller.jobs_launched() == 1).then_some(())
    })
    .await;
    let c = Console::logged_in(&p.app.base).await;
    let page = c.get("/ui/rules").await;
    assert_eq!(page.status, 200);
    for text in [
        "rules.yaml:3</code>",
        "snow-remediation",
        "gh-disk",
        "rules.yaml:14</code>",
        "category `disk_full`: job template 15",
        "(start)",
        "<span class=\"state s-ok\">ok</span>, 3 rule(s)",
        &format!("/ui/events/{id}"),
    ] {
        page.assert_has(text);
    }
}

#[sqlx::test]
async fn simulate_page_shows_the_decision_and_the_request(pool: PgPool) {
    let p = Pipeline::start(pool, Options::default()).await;
    let c = Console::logged_in(&p.app.base).await;
    let body = String::from_utf8(Sender::ServiceNow.body("ui-sim")).unwrap();
    let page = c
        .submit(
            "/ui/simulate",
            "/ui/simulate",
            &[
                ("source", "snow"),
                ("headers", "Content-Type: application/json"),
                ("payload", &body),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    for text in [
        "Result: <span class=\"state s-dispatched\">dispatched</span>",
        "Launch request: snow-remediation",
        "&quot;incident_number&quot;: &quot;INC0010001&quot;",
        "&quot;aap_bridge_launch_id&quot;: &quot;&lt;simulated&gt;&quot;",
        "job template 15",
    ] {
        page.assert_has(text);
    }
    let bad = c
        .submit(
            "/ui/simulate",
            "/ui/simulate",
            &[("source", "snow"), ("payload", "{oops")],
        )
        .await;
    assert_eq!(bad.status, 400);
    bad.assert_has("not valid JSON");
    let headers = c
        .submit(
            "/ui/simulate",
            "/ui/simulate",
            &[
                ("source", "snow"),
                ("headers", "no colon"),
                ("payload", "{}"),
            ],
        )
        .await;
    assert_eq!(headers.status, 400);
    headers.assert_has("Name: value");
    assert_eq!(p.app.event_count().await, 0, "simulate stores nothing");
}

const HOSTILE: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>";

/// No `<script` from a payload anywhere, no `javascript:` link, and the text shown escaped.
#[track_caller]
fn assert_escaped(what: &str, page: &Page) {
    let lower = page.body.to_ascii_lowercase();
    assert!(
        !lower.contains("<script"),
        "{what}: unescaped script\n{}",
        page.body
    );
    assert!(
        !lower.contains("<img"),
        "{what}: unescaped img\n{}",
        page.body
    );
    assert!(
        !lower.contains("href=\"javascript:"),
        "{what}: script link\n{}",
        page.body
    );
}

#[sqlx::test]
async fn untrusted_values_are_escaped_on_every_page(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    // Matches snow-remediation, so the hostile values reach a launch request and post-backs.
    let snow = json!({
        "table": "incident",
        "sys_id": "9d385017c611228701d22104cc95c371",
        "number": HOSTILE,
        "sys_updated_on": "2026-11-22 10:00:00",
        "category": "disk_full",
        "cmdb_ci": HOSTILE,
        "priority": "2",
        "operation": "insert",
        "short_description": HOSTILE,
    });
    // Unmapped: the hostile category lands in the reason.
    let unmapped = json!({"table": "incident", "sys_id": "9d385017c611228701d22104cc95c372",
        "number": "INC2", "sys_updated_on": "x", "category": HOSTILE});
    let mut ids = Vec::new();
    for (n, payload) in [snow, unmapped].iter().enumerate() {
        let body = serde_json::to_vec(payload).unwrap();
        let headers = Sender::ServiceNow.signed_headers("servicenow-new", &format!("h{n}"), &body);
        let (status, answer) = p.app.post("snow", &headers, &body).await;
        assert_eq!(status, 202, "{answer}");
        ids.push(answer["event_id"].as_str().unwrap().to_string());
    }
    // GitHub: a hostile label and a `javascript:` ticket link.
    let gh = json!({"action": "labeled", "label": {"name": HOSTILE},
        "issue": {"number": 7, "html_url": "javascript:alert(3)", "labels": [], "title": HOSTILE},
        "repository": {"full_name": "acme/ops"}});
    let body = serde_json::to_vec(&gh).unwrap();
    let headers = Sender::Github.signed_headers("github-new", "h-gh", &body);
    let (status, answer) = p.app.post("gh", &headers, &body).await;
    assert_eq!(status, 202, "{answer}");
    ids.push(answer["event_id"].as_str().unwrap().to_string());
    wait_for("all decided", 20, || async {
        let mut all = true;
        for id in &ids {
            all &= event_state(&pool, id).await.as_deref() != Some("pending");
        }
        all.then_some(())
    })
    .await;

    let c = Console::logged_in(&p.app.base).await;
    let mut pages = vec![
        "/ui/".to_string(),
        "/ui/events".into(),
        "/ui/rules".into(),
        "/ui/dead".into(),
        format!("/ui/events?category={}", urlencode(HOSTILE)),
        format!("/ui/events?ticket={}", urlencode(HOSTILE)),
        format!("/ui/events?state={}", urlencode(HOSTILE)),
    ];
    pages.extend(ids.iter().map(|id| format!("/ui/events/{id}")));
    for path in &pages {
        let page = c.get(path).await;
        assert!(matches!(page.status, 200 | 400), "{path}: {}", page.body);
        assert_escaped(path, &page);
    }
    let event = c.get(&format!("/ui/events/{}", ids[0])).await;
    event.assert_has("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&quot;&#x27;&gt;&lt;img");
    let list = c.get("/ui/events").await;
    list.assert_has("&lt;script&gt;");
    let gh_page = c.get(&format!("/ui/events/{}", ids[2])).await;
    gh_page.assert_has("javascript:alert(3)");

    let sim = c
        .submit(
            "/ui/simulate",
            "/ui/simulate",
            &[
                ("source", "gh"),
                (
                    "headers",
                    "X-GitHub-Event: issues\nX-GitHub-Delivery: d1\nX-GitHub-Hook-ID: 1",
                ),
                ("payload", &serde_json::to_string(&gh).unwrap()),
            ],
        )
        .await;
    assert_escaped("simulate", &sim);
    sim.assert_has("&lt;script&gt;");
    let sim = c
        .submit(
            "/ui/simulate",
            "/ui/simulate",
            &[("source", HOSTILE), ("payload", HOSTILE)],
        )
        .await;
    assert_eq!(sim.status, 400);
    assert_escaped("simulate error", &sim);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Dead letters name their ticket; "Retry all" asks first, then sends every one again.
#[sqlx::test]
async fn dead_letters_show_their_ticket_and_retry_all_asks_first(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    p.tickets.fail_next(2, 404, None);
    p.deliver(Sender::ServiceNow, "dead-a").await;
    p.deliver(Sender::ServiceNow, "dead-b").await;
    let dead = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM callbacks WHERE state = 'dead'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    wait_for("two dead letters", 30, || async {
        (dead().await == 2).then_some(())
    })
    .await;
    let c = Console::logged_in(&p.app.base).await;
    let page = c.get("/ui/dead").await;
    page.assert_has(">INC0010001</td>");
    page.assert_has("action=\"/ui/dead/retry-all\"");

    let ask = c.submit("/ui/dead", "/ui/dead/retry-all", &[]).await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    ask.assert_has("Send every dead letter again (2 of them)?");
    assert_eq!(dead().await, 2, "nothing changed yet");

    let done = c
        .submit("/ui/dead", "/ui/dead/retry-all", &[("confirm", "yes")])
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    c.get(done.location.as_deref().unwrap())
        .await
        .assert_has("2 dead letter(s) queued again");
    wait_for("both sent", 30, || async {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM callbacks WHERE state = 'sent' AND attempts = 1
               AND last_status IS NOT NULL AND phase = 'launched'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (dead().await == 0 && sent >= 2).then_some(())
    })
    .await;
}
