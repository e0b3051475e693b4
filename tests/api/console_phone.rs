//! The 3 a.m. check in headless Chromium, at a laptop's 1366 px and a phone's 390 px: with the
//! controller down behind its gateway, every waiting launch shows as waiting with its reason and
//! nothing is green, the Overview leads with the outage, a person logs in with their controller
//! account, and no page is wider than the screen. Screenshots go where `console_browser` puts
//! them (AAP_BRIDGE_SCREENSHOT_DIR=docs/screenshots refreshes the committed ones).

use crate::support::pipeline::{wait_for, Options, Pipeline, Tuning};
use crate::support::webdriver::{chromedriver, shot, Browser, CHROMIUM};
use crate::support::Sender;
use sqlx::PgPool;
use std::time::Duration;

const WAITING: usize = 6;

#[sqlx::test]
async fn an_outage_at_1366_and_390_px(pool: PgPool) {
    let Some(driver) = chromedriver().filter(|_| std::path::Path::new(CHROMIUM).exists()) else {
        println!("SKIPPED an_outage_at_1366_and_390_px: {CHROMIUM} or chromedriver is missing");
        return;
    };
    tokio::time::timeout(Duration::from_secs(240), drive(pool, driver))
        .await
        .expect("the browser check finishes within 240 s");
}

async fn drive(pool: PgPool, driver: &str) {
    let options = Options {
        tuning: Tuning {
            controller_timeout_secs: 2,
            workers: "  launch_retry_base_ms: 1000\n  launch_retry_max_ms: 60000\n  \
                      reconcile_interval_secs: 1\n"
                .into(),
            ..Tuning::default()
        },
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), options).await;
    p.controller.add_person("oncall", "oncall-pass", true, &[]);
    let b = Browser::start(driver)
        .await
        .unwrap_or_else(|e| panic!("headless Chromium did not start: {e}"));
    let base = &p.app.base;
    b.set_size(1366, 900).await;
    b.goto(&format!("{base}/ui/login")).await;
    b.wait_for("/ui/login", "Controller user name").await;
    b.type_into("#username", "oncall").await;
    b.type_into("#password", "oncall-pass").await;
    b.click("form.login:has(#username) button").await;
    b.wait_for("/ui/", "Needs you now").await;

    p.controller.set_gateway_down(true);
    // While the controller is down it cannot check an account: the answer says what to do.
    let mut other = crate::support::console::Console::new(base);
    let page = other
        .login_form(&[("username", "oncall"), ("password", "oncall-pass")])
        .await;
    assert_eq!(page.status, 503, "{}", page.body);
    page.assert_has("log in with the admin token");
    for i in 0..WAITING {
        p.deliver(Sender::ServiceNow, &format!("outage-{i}")).await;
    }
    // A refused delivery, for the Deliveries page.
    let mut h = Sender::Github.unsigned_headers("forged-1");
    h.push(Sender::Github.garbled_signature());
    assert_eq!(p.app.post("gh", &h, b"{}").await.0, 401);
    wait_for("every launch to wait on the controller", 30, || async {
        let (_, page) = p.app.admin("GET", "/events", None).await;
        let reasons: Vec<String> = page["events"]
            .as_array()?
            .iter()
            .filter_map(|e| {
                e["launches"][0]["waiting"]["reason"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        (reasons.len() == WAITING && reasons.iter().all(|r| r == "controller_unreachable"))
            .then_some(())
    })
    .await;

    for (width, height) in [(1366, 900), (390, 844)] {
        b.set_size(width, height).await;
        b.goto(&format!("{base}/ui/")).await;
        let overview = b.wait_for("/ui/", "Needs you now").await;
        assert!(
            overview.contains("The controller is unreachable"),
            "the outage leads the Overview: {overview}"
        );
        check_fits(&b, "overview", width).await;
        b.screenshot(&shot(&format!("outage-overview-{width}")))
            .await;

        b.goto(&format!("{base}/ui/events")).await;
        let events = b.wait_for("/ui/events", "INC0010001").await;
        assert_eq!(
            events
                .matches("waiting: controller unreachable since")
                .count(),
            WAITING,
            "every waiting launch says why"
        );
        let green = b
            .script(
                "return document.querySelectorAll('table.events .s-dispatched, table.events \
                 .s-finished, table.events .s-launched, table.events .s-successful').length;",
            )
            .await;
        assert_eq!(green, 0, "nothing green while nothing ran");
        check_fits(&b, "events", width).await;
        b.screenshot(&shot(&format!("outage-events-{width}"))).await;

        b.click("table.events tr:nth-child(2) td a").await;
        b.wait_for("", "Timeline").await;
        check_fits(&b, "event", width).await;
        b.screenshot(&shot(&format!("outage-event-{width}"))).await;

        b.goto(&format!("{base}/ui/deliveries")).await;
        b.wait_for("/ui/deliveries", "refused").await;
        check_fits(&b, "deliveries", width).await;
        b.screenshot(&shot(&format!("deliveries-{width}"))).await;

        for page in ["rules", "dead", "audit", "simulate"] {
            b.goto(&format!("{base}/ui/{page}")).await;
            b.wait_for(&format!("/ui/{page}"), "</main>").await;
            check_fits(&b, page, width).await;
        }
        b.goto(&format!("{base}/ui/audit")).await;
        b.wait_for("/ui/audit", "oncall").await;
        b.screenshot(&shot(&format!("audit-{width}"))).await;
    }
    // At 390 px the header's controls are on screen: search, Log out.
    let right = b
        .script(
            "const r = document.querySelector('form.logout button').getBoundingClientRect(); \
             return r.right;",
        )
        .await;
    assert!(
        right.as_f64().unwrap() <= 390.0,
        "Log out is on screen at {right}"
    );
    b.quit().await;
}

async fn check_fits(b: &Browser, page: &str, width: u32) {
    let (doc, viewport) = b.widths().await;
    assert!(
        viewport > 0 && viewport <= width as i64 && doc <= viewport,
        "{page} at {width} px: the document is {doc} px wide in a {viewport} px viewport"
    );
}
