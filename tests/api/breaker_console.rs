//! The circuit breaker on the console: the Rules page shows a rule's breaker, Pause and Resume
//! need the session's CSRF token, the overview lists paused rules, an event's page its held launch.

use crate::breaker::{deliver, launch_of, rule_state, start};
use crate::support::console::Console;
use crate::support::pipeline::wait_for;
use sqlx::PgPool;

#[sqlx::test]
async fn the_rules_page_shows_the_pause_and_its_forms_need_the_csrf_token(pool: PgPool) {
    let name = "console-rule";
    let p = start(&pool, name, "    pause_after_failures: 3\n").await;
    let c = Console::logged_in(&p.app.base).await;
    let page = c.get("/ui/rules").await;
    page.assert_has("s-active");
    page.assert_has("pauses at 3");
    page.assert_has("action=\"/ui/rules/pause\"");

    for csrf in [None, Some("wrong")] {
        let mut form = vec![("rule", name), ("reason", "x")];
        form.extend(csrf.map(|t| ("csrf", t)));
        assert_eq!(c.post("/ui/rules/pause", &form).await.status, 403);
    }
    assert_eq!(
        rule_state(&p, name).await["paused"],
        false,
        "nothing paused"
    );

    let done = c
        .submit(
            "/ui/rules",
            "/ui/rules/pause",
            &[("rule", name), ("reason", "<b>freeze</b>")],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let to = done.location.unwrap();
    let page = c.get(&to).await;
    page.assert_has("is paused on every replica");
    page.assert_has("s-paused");
    page.assert_has("&lt;b&gt;freeze&lt;");
    assert!(!page.body.contains("<b>freeze"), "the reason is escaped");
    page.assert_has("value=\"release\"");
    page.assert_has("value=\"drop\"");
    c.get("/ui/").await.assert_has("s-paused");

    // A held launch shows on its event's page.
    let event = deliver(&p, "ui-1").await;
    wait_for("the held launch", 15, || async {
        let state = launch_of(&pool, &event).await.map(|l| l.0);
        (state.as_deref() == Some("held")).then_some(())
    })
    .await;
    let page = c.get(&format!("/ui/events/{event}")).await;
    page.assert_has("is <span class=\"state s-held\">held</span>");
    page.assert_has("held: rule console-rule is paused");

    let form = [("rule", name), ("held", "release")];
    assert_eq!(c.post("/ui/rules/resume", &form).await.status, 403);
    assert_eq!(rule_state(&p, name).await["paused"], true, "still paused");
    let done = c.submit("/ui/rules", "/ui/rules/resume", &form).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = c.get(&done.location.unwrap()).await;
    page.assert_has("1 held launch(es) released, 0 dropped");
    wait_for("the released launch", 15, || async {
        let state = launch_of(&pool, &event).await.map(|l| l.0);
        (state.as_deref() == Some("launched")).then_some(())
    })
    .await;
    assert_eq!(rule_state(&p, name).await["paused"], false);
}

#[sqlx::test]
async fn dropping_held_launches_asks_first(pool: PgPool) {
    let name = "console-drop";
    let p = start(&pool, name, "").await;
    let c = Console::logged_in(&p.app.base).await;
    let paused = c
        .submit("/ui/rules", "/ui/rules/pause", &[("rule", name)])
        .await;
    assert_eq!(paused.status, 303, "{}", paused.body);
    let event = deliver(&p, "drop-1").await;
    wait_for("the held launch", 15, || async {
        let state = launch_of(&pool, &event).await.map(|l| l.0);
        (state.as_deref() == Some("held")).then_some(())
    })
    .await;
    c.get("/ui/rules").await.assert_has("class=\"danger\"");

    // One click on "Resume, drop held" only asks.
    let form = [("rule", name), ("held", "drop")];
    let ask = c.submit("/ui/rules", "/ui/rules/resume", &form).await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    ask.assert_has("drop its 1 held launch(es)? They will never run");
    ask.assert_has("name=\"confirm\" value=\"yes\"");
    assert_eq!(
        rule_state(&p, name).await["paused"],
        true,
        "nothing changed yet"
    );
    assert_eq!(launch_of(&pool, &event).await.unwrap().0, "held");

    // The confirmation drops.
    let confirmed = [("rule", name), ("held", "drop"), ("confirm", "yes")];
    let done = c.submit("/ui/rules", "/ui/rules/resume", &confirmed).await;
    assert_eq!(done.status, 303, "{}", done.body);
    c.get(&done.location.unwrap())
        .await
        .assert_has("0 held launch(es) released, 1 dropped");
    assert_eq!(launch_of(&pool, &event).await.unwrap().0, "dropped");
}
