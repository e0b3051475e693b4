//! The deliveries log: every request to `/hooks` is listed with its answer (refused ones too,
//! never with their body), and a flood of refused requests stays within the table's bound.

use crate::support::pipeline::wait_for;
use crate::support::{error_of, Sender, TestApp, SOURCES_YAML};
use serde_json::Value;
use sqlx::PgPool;

/// Never stored: the refused bodies carry it.
const MARKER: &str = "BODY-MARKER-7f3a";

fn yaml(server: &str, max_rows: i64) -> String {
    format!(
        "{}admin:\n  token: admin-secret\nretention:\n  max_age_days: 30\n  interval_secs: 3600\n  \
         batch: 1000\n  deliveries_max_rows: {max_rows}\n",
        SOURCES_YAML.replacen("server:\n", &format!("server:\n{server}"), 1)
    )
}

async fn rows(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .admin("GET", &format!("/deliveries?{query}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

async fn count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM deliveries")
        .fetch_one(pool)
        .await
        .unwrap()
}

fn header(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

#[sqlx::test]
async fn every_kind_of_answer_is_logged_and_no_refused_body_is_kept(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), pool.clone(), &yaml("", 1000)).await;
    let gh = Sender::Github;
    // Accepted, then the same signed body again (duplicate).
    assert_eq!(app.deliver(gh, "d-1").await.0, 202);
    assert_eq!(app.deliver(gh, "d-1").await.0, 200);
    // 401: a body signed with a secret we do not have.
    let body = format!("{{\"note\": \"{MARKER}\"}}").into_bytes();
    let mut h = gh.unsigned_headers("d-401");
    h.push(gh.signature_header("not-our-secret", &body, 0));
    assert_eq!(app.post("gh", &h, &body).await.0, 401);
    // 400: signed, but not JSON.
    let bad = format!("{MARKER} not json").into_bytes();
    let h = gh.signed_headers(gh.new_secret(), "d-400", &bad);
    assert_eq!(app.post("gh", &h, &bad).await.0, 400);
    // 413: over the source's 1 KiB limit.
    let big = format!("{{\"x\": \"{MARKER}{}\"}}", "a".repeat(4096)).into_bytes();
    let h = gh.signed_headers(gh.new_secret(), "d-413", &big);
    assert_eq!(app.post("small", &h, &big).await.0, 413);
    // 415: a content type GitHub does not send.
    let mut h = gh.signed_headers(gh.new_secret(), "d-415", &body);
    h.retain(|(k, _)| k != "Content-Type");
    h.push(header("Content-Type", "text/plain"));
    assert_eq!(app.post("gh", &h, &body).await.0, 415);
    // 404: no such source, a hostile name included.
    assert_eq!(app.post("nosuch", &[], &body).await.0, 404);

    let all = wait_for("seven deliveries logged", 10, || async {
        let r = rows(&app, "").await;
        (r.len() == 7).then_some(r)
    })
    .await;
    let answers: Vec<(i64, &str, &str)> = all
        .iter()
        .map(|d| {
            (
                d["status"].as_i64().unwrap(),
                d["outcome"].as_str().unwrap(),
                d["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            (404, "refused", "nosuch"),
            (415, "refused", "gh"),
            (413, "refused", "small"),
            (400, "refused", "gh"),
            (401, "refused", "gh"),
            (200, "duplicate", "gh"),
            (202, "accepted", "gh"),
        ],
        "newest first"
    );
    assert!(
        all[6]["delivery_id"].as_str().unwrap().ends_with("d-1"),
        "{}",
        all[6]
    );
    assert!(
        all[6]["event_id"].is_string(),
        "an accepted delivery links its event"
    );
    assert_eq!(
        all[5]["event_id"], all[6]["event_id"],
        "the duplicate names the original"
    );
    assert_eq!(
        all[4]["delivery_id"], "d-401",
        "from the header, though refused"
    );
    assert_eq!(all[0]["known"], false);
    assert_eq!(all[0]["client"], "127.0.0.1");
    assert!(
        all[4]["reason"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256"),
        "{}",
        all[4]
    );
    assert!(all[2]["size"].as_i64().unwrap() > 4096, "{}", all[2]);
    for d in &all[..5] {
        assert!(d["reason"].as_str().is_some_and(|r| !r.is_empty()), "{d}");
    }
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM deliveries WHERE row_to_json(deliveries)::text LIKE '%' || $1 || '%'",
    )
    .bind(MARKER)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(stored, 0, "no refused body is stored");

    // Filters and both cursors.
    let refused = rows(&app, "outcome=refused&source=gh").await;
    assert_eq!(refused.len(), 3);
    assert_eq!(rows(&app, "status=401").await.len(), 1);
    let (_, page) = app.admin("GET", "/deliveries?limit=3", None).await;
    let before = page["next_before"].as_i64().unwrap();
    assert!(
        page["prev_after"].is_null(),
        "the newest page has nothing above"
    );
    let (_, older) = app
        .admin("GET", &format!("/deliveries?limit=3&before={before}"), None)
        .await;
    assert_eq!(older["deliveries"][0]["status"], 400);
    let after = older["prev_after"].as_i64().unwrap();
    let (_, newer) = app
        .admin("GET", &format!("/deliveries?limit=3&after={after}"), None)
        .await;
    assert_eq!(
        newer["deliveries"], page["deliveries"],
        "newer leads back to the first page"
    );
    let (status, body) = app.admin("GET", "/deliveries?outcome=lost", None).await;
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("`outcome`"), "{body}");

    // The overview counts them per source.
    let (status, body) = app
        .admin("GET", "/deliveries?source=gh&limit=1", None)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[sqlx::test]
async fn shed_requests_are_logged_as_unavailable(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool.clone(),
        pool.clone(),
        &yaml("  max_concurrent_hooks: 1\n", 1000),
    )
    .await;
    // One upload that never finishes holds the only slot.
    use tokio::io::AsyncWriteExt;
    let mut held = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    held.write_all(
        b"POST /hooks/gh HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{",
    )
    .await
    .unwrap();
    wait_for("the stalled upload to hold the slot", 10, || async {
        let (status, _) = app.post("nosuch", &[], b"{}").await;
        (status == 503).then_some(())
    })
    .await;
    let (status, body) = app.deliver(Sender::PagerDuty, "shed-1").await;
    assert_eq!(status, 503, "{body}");
    let logged = wait_for("the shed request logged", 10, || async {
        rows(&app, "source=pd").await.into_iter().next()
    })
    .await;
    drop(held);
    assert_eq!(logged["outcome"], "unavailable");
    assert_eq!(logged["source"], "pd");
    assert!(
        logged["reason"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_hooks"),
        "{logged}"
    );
}

/// 10,000 refused requests from 32 clients at once, with signed deliveries among them: the table
/// ends within its bound (it may pass it by a tenth while records stream in), and every signed delivery is accepted and stored. (How much the flood
/// slows ingest is measured by the benchmark, not asserted here.)
#[sqlx::test]
async fn a_flood_of_refused_requests_stays_within_the_bound(pool: PgPool) {
    const FLOOD: usize = 10_000;
    const MAX_ROWS: i64 = 500;
    let app = TestApp::spawn_with(pool.clone(), pool.clone(), &yaml("", MAX_ROWS)).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..32 {
        let app = app.clone();
        tasks.spawn(async move {
            let mut refused = 0;
            let mut i = worker;
            while i < FLOOD {
                let body = format!("{{\"n\": {i}}}").into_bytes();
                let status = if i % 2 == 0 {
                    app.post("nosuch", &[], &body).await.0
                } else {
                    let mut h = Sender::Github.unsigned_headers(&format!("flood-{i}"));
                    h.push(Sender::Github.garbled_signature());
                    app.post("gh", &h, &body).await.0
                };
                assert!(status == 404 || status == 401, "{status}");
                refused += 1;
                i += 32;
            }
            refused
        });
    }
    // While the flood runs the table may pass its bound by a tenth, plus one batch in flight.
    let sampler = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut most = 0;
            for _ in 0..40 {
                most = most.max(count(&pool).await);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            most
        })
    };
    let mut accepted = 0;
    for i in 0..40 {
        let (status, body) = app.deliver(Sender::ServiceNow, &format!("real-{i}")).await;
        assert_eq!(status, 202, "{body}");
        accepted += 1;
    }
    let mut refused = 0;
    while let Some(n) = tasks.join_next().await {
        refused += n.unwrap();
    }
    assert_eq!(refused, FLOOD);
    let most = sampler.await.unwrap();
    assert!(
        most <= MAX_ROWS + MAX_ROWS / 10 + 1000,
        "{most} rows during the flood, bound {MAX_ROWS} (+10 % and a batch)"
    );
    assert_eq!(accepted, 40);
    assert_eq!(app.event_count().await, 40, "every signed delivery stored");
    // The writer trims a second after the last record: then the table is within its bound.
    let settled = wait_for("the log trimmed to its bound", 30, || {
        let pool = pool.clone();
        async move {
            let n = count(&pool).await;
            (n <= MAX_ROWS).then_some(n)
        }
    })
    .await;
    assert!(settled > 0);
    let max_id: i64 = sqlx::query_scalar("SELECT max(id) FROM deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        max_id > MAX_ROWS,
        "rows were written past the bound and trimmed ({max_id})"
    );
}
