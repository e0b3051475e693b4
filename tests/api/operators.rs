//! Named operators: people log in with their controller accounts (checked against the fake
//! controller's `me/`), get the role `admin.operators` gives them, and everything they do is in
//! the audit trail with their name and address. Read-only users change nothing; wrong logins
//! are limited; logging out ends the session everywhere.

use crate::support::console::Console;
use crate::support::pipeline::{Options, Pipeline, Tuning};
use crate::support::{Sender, TestApp};
use serde_json::Value;
use sqlx::PgPool;

const RULE: &str = "snow-remediation";

async fn pipeline(pool: PgPool) -> Pipeline {
    let p = Pipeline::start(
        pool,
        Options {
            tuning: Tuning {
                admin: "operators: {teams: [sre-oncall]}, login_failures_per_address: 5".into(),
                ..Tuning::default()
            },
            ..Options::default()
        },
    )
    .await;
    p.controller.add_person("root", "root-pass", true, &[]);
    p.controller
        .add_person("alice", "alice-pass", false, &["sre-oncall"]);
    p.controller
        .add_person("bob", "bob-pass", false, &["developers"]);
    p
}

async fn person(base: &str, user: &str, password: &str) -> Console {
    let mut c = Console::new(base);
    let page = c
        .login_form(&[("username", user), ("password", password)])
        .await;
    assert_eq!(page.status, 303, "{user}: {}", page.body);
    c
}

async fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.admin("GET", &format!("/audit?{query}"), None).await;
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

#[sqlx::test]
async fn controller_accounts_log_in_with_their_role_and_every_action_is_audited(pool: PgPool) {
    let p = pipeline(pool.clone()).await;
    let base = p.app.base.clone();

    // bob may look, not act: no buttons, and a forged POST gets 403.
    let bob = person(&base, "bob", "bob-pass").await;
    let rules = bob.get("/ui/rules").await;
    assert_eq!(rules.status, 200);
    rules.assert_has("bob · read-only");
    assert!(
        !rules.body.contains(r#"action="/ui/rules/pause""#),
        "no pause form for bob"
    );
    let csrf = rules.csrf();
    let denied = bob
        .post(
            "/ui/rules/pause",
            &[("csrf", &csrf), ("rule", RULE), ("reason", "x")],
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    denied.assert_has("read-only");
    for path in ["/ui/dead/retry-all", "/ui/simulate"] {
        assert_eq!(
            bob.post(path, &[("csrf", &csrf)]).await.status,
            403,
            "{path}"
        );
    }

    // alice acts through her team.
    let alice = person(&base, "alice", "alice-pass").await;
    let page = alice
        .submit(
            "/ui/rules",
            "/ui/rules/pause",
            &[("rule", RULE), ("reason", "change freeze")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let (_, rule) = p.app.admin("GET", "/rules", None).await;
    assert!(rule.to_string().contains("change freeze"), "{rule}");

    // root replays an event: a confirmation page first, and a double submit makes one copy.
    let event = p.deliver(Sender::ServiceNow, "op-1").await["event_id"]
        .as_str()
        .unwrap()
        .to_string();
    let root = person(&base, "root", "root-pass").await;
    let page = root.get(&format!("/ui/events/{event}")).await;
    let once = page.hidden("once");
    let csrf = page.csrf();
    let action = format!("/ui/events/{event}/replay");
    let ask = root
        .post(&action, &[("csrf", &csrf), ("once", &once)])
        .await;
    assert_eq!(ask.status, 200, "a confirmation page, not a replay");
    ask.assert_has("Replay this event");
    let form = [
        ("csrf", csrf.as_str()),
        ("once", once.as_str()),
        ("confirm", "yes"),
    ];
    let (a, b) = tokio::join!(root.post(&action, &form), root.post(&action, &form));
    assert_eq!((a.status, b.status), (303, 303));
    assert_eq!(
        a.location, b.location,
        "both submissions lead to the one copy"
    );
    let copies: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE replay_of = $1::uuid")
        .bind(&event)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(copies, 1);

    // The API acts as the admin token.
    let (status, _) = p
        .app
        .admin(
            "POST",
            &format!("/rules/{RULE}/resume"),
            Some(serde_json::json!({"held": "release"})),
        )
        .await;
    assert_eq!(status, 200);

    // The trail: who, what, on what, from where.
    let entries = audit(&p.app, "").await;
    let line = |e: &Value| {
        format!(
            "{} {} {} {}",
            e["actor"].as_str().unwrap(),
            e["action"].as_str().unwrap(),
            e["target"].as_str().unwrap_or("-"),
            e["client"].as_str().unwrap_or("-")
        )
    };
    let lines: Vec<String> = entries.iter().map(line).collect();
    for want in [
        "bob login - 127.0.0.1".to_string(),
        "alice login - 127.0.0.1".into(),
        format!("alice rule.pause rule:{RULE} 127.0.0.1"),
        format!("root event.replay event:{event} 127.0.0.1"),
        format!("admin-token rule.resume rule:{RULE} 127.0.0.1"),
    ] {
        assert!(lines.contains(&want), "{want} missing from {lines:#?}");
    }
    assert_eq!(
        lines.iter().filter(|l| l.contains("event.replay")).count(),
        1,
        "one replay, one row"
    );
    let roles: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e["action"] == "login")
        .map(|e| (e["actor"].as_str().unwrap(), e["role"].as_str().unwrap()))
        .collect();
    for want in [
        ("bob", "read_only"),
        ("alice", "operator"),
        ("root", "operator"),
    ] {
        assert!(roles.contains(&want), "{want:?} in {roles:?}");
    }
    // On the event's page and the Audit page, with the name.
    root.get(&format!("/ui/events/{event}"))
        .await
        .assert_has("event.replay");
    let page = alice.get("/ui/audit").await;
    page.assert_has("rule.pause");
    page.assert_has("change freeze");
    assert_eq!(audit(&p.app, "actor=alice").await.len(), 2);

    // Logging out ends the session: the old cookie no longer opens a page.
    let cookie = alice.cookie.clone();
    let out = alice.submit("/ui/", "/ui/logout", &[]).await;
    assert_eq!(out.status, 303);
    let mut stale = Console::new(&base);
    stale.cookie = cookie;
    let page = stale.get("/ui/").await;
    assert_eq!(page.status, 303, "the logged-out cookie is dead");
    assert_eq!(page.location.as_deref(), Some("/ui/login"));
    assert!(audit(&p.app, "actor=alice")
        .await
        .iter()
        .any(|e| e["action"] == "logout"));
}

#[sqlx::test]
async fn wrong_logins_are_refused_audited_and_then_limited(pool: PgPool) {
    let p = pipeline(pool).await;
    let mut c = Console::new(&p.app.base);
    for _ in 0..5 {
        let page = c
            .login_form(&[("username", "bob"), ("password", "guess")])
            .await;
        assert_eq!(page.status, 401, "{}", page.body);
        page.assert_has("did not accept");
    }
    // Past five failures from this address, even the right password waits.
    let page = c
        .login_form(&[("username", "root"), ("password", "root-pass")])
        .await;
    assert_eq!(page.status, 429, "{}", page.body);
    page.assert_has("too many failed logins");
    let page = c.login(crate::support::ADMIN_TOKEN).await;
    assert_eq!(page.status, 429, "the token login shares the limit");
    let failed = audit(&p.app, "actor=bob").await;
    assert_eq!(
        failed.len(),
        5,
        "each failure audited, the limited ones not"
    );
    assert!(failed
        .iter()
        .all(|e| e["action"] == "login.failed" && e["client"] == "127.0.0.1"));
}

#[sqlx::test]
async fn without_a_controller_only_the_token_logs_in(pool: PgPool) {
    let yaml = format!(
        "{}admin:\n  token: admin-secret\n",
        crate::support::SOURCES_YAML
    );
    let app = TestApp::spawn_with(pool.clone(), pool, &yaml).await;
    let mut c = Console::new(&app.base);
    let form = c.get("/ui/login").await;
    assert!(
        !form.body.contains(r#"name="username""#),
        "no account form in dry-run"
    );
    let page = c
        .login_form(&[("username", "root"), ("password", "x")])
        .await;
    assert_eq!(page.status, 400);
    page.assert_has("admin token");
    assert_eq!(c.login("admin-secret").await.status, 303);
    c.get("/ui/").await.assert_has("admin-token");
}

/// Two replicas on one database: a session started on one opens pages on the other, logging out
/// on one ends it on both, and failed logins on one count against the limit on the other.
#[sqlx::test]
async fn sessions_and_login_limits_hold_across_replicas(pool: PgPool) {
    let p = pipeline(pool).await;
    let other = p.replica(Default::default()).await;
    let mut alice = person(&p.app.base, "alice", "alice-pass").await;
    alice.base = other.base.clone();
    let page = alice.get("/ui/rules").await;
    assert_eq!(
        page.status, 200,
        "the session is known on the other replica"
    );
    page.assert_has("alice");
    alice.base = p.app.base.clone();
    assert_eq!(alice.submit("/ui/", "/ui/logout", &[]).await.status, 303);
    let mut stale = Console::new(&other.base);
    stale.cookie = alice.cookie.clone();
    let page = stale.get("/ui/").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/ui/login")),
        "logged out on one replica, gone on the other"
    );

    let mut c = Console::new(&p.app.base);
    for _ in 0..3 {
        let page = c
            .login_form(&[("username", "bob"), ("password", "guess")])
            .await;
        assert_eq!(page.status, 401);
    }
    let mut c = Console::new(&other.base);
    for _ in 0..2 {
        let page = c
            .login_form(&[("username", "bob"), ("password", "guess")])
            .await;
        assert_eq!(page.status, 401);
    }
    let page = c
        .login_form(&[("username", "bob"), ("password", "bob-pass")])
        .await;
    assert_eq!(
        page.status, 429,
        "five failures across both replicas reach the limit"
    );
}
