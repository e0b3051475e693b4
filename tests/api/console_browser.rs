//! The console in a real browser: headless Chromium, driven through chromedriver, logs in,
//! opens the event list and an event, replays it and retries a dead letter, saving a screenshot
//! of each page into target/screenshots/ (AAP_BRIDGE_SCREENSHOT_DIR=docs/screenshots refreshes
//! the committed ones). Skipped (with a message) when Chromium or chromedriver
//! is not installed; `.ci/run` installs both.

use crate::support::pipeline::{wait_for, Options, Pipeline};
use crate::support::webdriver::{chromedriver, shot, Browser, CHROMIUM};
use crate::support::{Sender, ADMIN_TOKEN};
use sqlx::PgPool;
use std::time::Duration;

#[sqlx::test]
async fn console_in_headless_chromium(pool: PgPool) {
    let Some(driver) = chromedriver().filter(|_| std::path::Path::new(CHROMIUM).exists()) else {
        println!(
            "SKIPPED console_in_headless_chromium: {CHROMIUM} or chromedriver is missing \
             (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let run = drive(pool, driver);
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser check finishes within 180 s");
}

async fn drive(pool: PgPool, driver: &str) {
    let p = Pipeline::start(pool.clone(), Options::default()).await;
    // The first post-back (the ServiceNow event's) is refused for good: a dead letter to retry.
    p.tickets.fail_next(1, 404, None);
    p.deliver(Sender::ServiceNow, "browser-1").await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    wait_for("a dead post-back", 30, || async {
        (count("SELECT count(*) FROM callbacks WHERE state = 'dead'").await == 1).then_some(())
    })
    .await;
    p.deliver(Sender::Github, "browser-2").await;
    wait_for("two finished jobs", 30, || async {
        (count("SELECT count(*) FROM launches WHERE state = 'finished'").await == 2).then_some(())
    })
    .await;

    let b = match Browser::start(driver).await {
        Ok(b) => b,
        Err(e) => panic!("headless Chromium did not start: {e}"),
    };
    let base = &p.app.base;

    // Any page sends an anonymous visitor to the login form.
    b.goto(&format!("{base}/ui/events")).await;
    b.wait_for("/ui/login", "Admin token").await;
    b.screenshot(&shot("login")).await;
    b.type_into("#token", ADMIN_TOKEN).await;
    b.click("form.login:has(#token) button").await;
    b.wait_for("/ui/", "Latest failures").await;
    b.screenshot(&shot("overview")).await;

    b.goto(&format!("{base}/ui/events")).await;
    b.wait_for("/ui/events", "INC0010001").await;
    b.screenshot(&shot("events")).await;

    // The ServiceNow event (the older of the two, so the last row).
    b.click("table.events tr:last-child a").await;
    let event = b.wait_for("", "received from snow").await;
    assert!(
        event.contains("post-back `launched` to snow: dead"),
        "{event}"
    );
    b.screenshot(&shot("event")).await;

    b.click("form[action$='/replay'] button").await;
    b.wait_for("/replay", "Replay this event").await;
    b.screenshot(&shot("replay-confirm")).await;
    b.click("form[action$='/replay'] button.danger").await;
    b.wait_for("", "a replay of event").await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 3, "the replay is stored");
    b.screenshot(&shot("event-replayed")).await;

    b.goto(&format!("{base}/ui/dead")).await;
    b.wait_for("/ui/dead", "Retry</button>").await;
    b.screenshot(&shot("dead-letters")).await;
    b.click("form[action$='/retry'] button").await;
    b.wait_for("", "is queued again").await;
    b.screenshot(&shot("dead-letters-retried")).await;

    b.goto(&format!("{base}/ui/rules")).await;
    b.wait_for("/ui/rules", "snow-remediation").await;
    b.screenshot(&shot("rules")).await;
    // Pause the first rule (its circuit breaker), then resume it.
    b.type_into(
        "form[action='/ui/rules/pause'] input[name=reason]",
        "change freeze",
    )
    .await;
    b.click("form[action='/ui/rules/pause'] button").await;
    b.wait_for("", "is paused on every replica").await;
    b.screenshot(&shot("rules-paused")).await;
    b.click("form[action='/ui/rules/resume'] button[value=release]")
        .await;
    b.wait_for("", "is resumed").await;

    b.goto(&format!("{base}/ui/simulate")).await;
    b.wait_for("/ui/simulate", "Simulate</button>").await;
    let body = String::from_utf8(Sender::ServiceNow.body("browser-sim")).unwrap();
    b.click("select[name=source] option[value=snow]").await;
    b.type_into("textarea[name=payload]", &body).await;
    b.click("form.simulate button").await;
    b.wait_for("/ui/simulate", "Launch request: snow-remediation")
        .await;
    b.screenshot(&shot("simulate")).await;

    b.click("form.logout button").await;
    b.wait_for("/ui/login", "Admin token").await;
    b.goto(&format!("{base}/ui/")).await;
    b.wait_for("/ui/login", "Admin token").await;
    b.quit().await;
}
