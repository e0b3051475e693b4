//! Retention deletes old settled events with their launches and callbacks, in batches, and
//! leaves anything still in flight alone.

use crate::support::pipeline::{wait_for, Options, Pipeline};
use crate::support::Sender;
use aap_bridge::config::RetentionSettings;
use aap_bridge::workers::retention::prune;
use sqlx::PgPool;
use std::time::Duration;

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn old_settled_events_go_running_ones_stay(pool: PgPool) {
    let opts = Options {
        job_duration: Duration::from_secs(3600),
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    // One finished line (GitHub), one job still running (ServiceNow), three unmapped events.
    p.deliver(Sender::Github, "old-done").await;
    p.deliver(Sender::ServiceNow, "old-running").await;
    for n in 0..3 {
        let body = serde_json::to_vec(
            &serde_json::json!({"table": "incident", "sys_id": "9d385017c611228701d22104cc95c371",
            "sys_updated_on": format!("u{n}"), "category": "nothing"}),
        )
        .unwrap();
        let headers = Sender::ServiceNow.signed_headers("servicenow-new", "", &body);
        assert_eq!(p.app.post("snow", &headers, &body).await.0, 202);
    }
    wait_for("two launches", 10, || async {
        (p.controller.jobs_launched() == 2).then_some(())
    })
    .await;
    // Recorded by the bridge, not just created on the controller.
    let gh_job: i64 = wait_for("the GitHub launch recorded", 10, || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT job_id FROM launches WHERE source = 'gh'")
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten()
    })
    .await;
    p.controller.set_job_status(gh_job, "successful");
    wait_for("the GitHub line to settle", 20, || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE state = 'pending'
             UNION ALL SELECT count(*) FROM callbacks WHERE state = 'pending'",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
        .iter()
        .sum();
        let finished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM launches WHERE state = 'finished'")
                .fetch_one(&pool)
                .await
                .unwrap();
        (open == 0 && finished == 1).then_some(())
    })
    .await;
    sqlx::query("UPDATE events SET received_at = now() - interval '40 days'")
        .execute(&pool)
        .await
        .unwrap();

    let s = RetentionSettings {
        max_age_days: 30,
        interval_secs: 3600,
        batch: 2,
        dedupe_days: 90,
        deliveries_max_rows: 100_000,
        deliveries_max_age_days: 7,
    };
    let deleted = prune(&pool, &s).await.unwrap();
    assert_eq!(
        deleted, 4,
        "the finished GitHub event and three unmapped ones, two per batch"
    );
    assert_eq!(
        count(&pool, "events").await,
        1,
        "the event with a running job stays"
    );
    assert_eq!(count(&pool, "launches").await, 1);
    let left: String = sqlx::query_scalar("SELECT source FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, "snow");
    assert_eq!(
        count(
            &pool,
            "callbacks WHERE launch_id NOT IN (SELECT id FROM launches)"
        )
        .await,
        0
    );

    let dedupe_keys: i64 = count(&pool, "dedupe").await;
    assert_eq!(
        dedupe_keys, 4,
        "the pruned events' dedupe keys outlive them"
    );
    assert_eq!(
        count(&pool, "events WHERE dedupe_key IS NOT NULL").await,
        1,
        "the stored event keeps its key on its row"
    );
    let off = RetentionSettings {
        max_age_days: 0,
        dedupe_days: 0,
        ..s
    };
    assert_eq!(prune(&pool, &off).await.unwrap(), 0);
}
