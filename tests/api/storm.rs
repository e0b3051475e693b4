//! Storm control: a cap on a rule's running jobs (the rest wait, none dropped) and a coalescing
//! window (same rule + same ticket -> one launch).

use crate::support::pipeline::{launches_in, wait_for, wait_quiescent, Options, Pipeline};
use crate::support::Sender;
use sqlx::PgPool;
use std::time::Duration;

const CAPPED: &str = r#"
rules:
  - name: capped
    source: snow
    category: disk_full
    launch: 15
    max_concurrent: 2
    reply: none
"#;

const COALESCED: &str = r#"
rules:
  - name: coalesced
    source: snow
    category: disk_full
    launch: 15
    coalesce_secs: 300
    reply: none
"#;

#[sqlx::test]
async fn max_concurrent_holds_the_rest_until_jobs_finish(pool: PgPool) {
    let opts = Options {
        rules: CAPPED,
        job_duration: Duration::from_secs(3600),
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    for n in 0..5 {
        p.deliver(Sender::ServiceNow, &format!("storm-{n}")).await;
    }
    wait_for("two launches", 10, || async {
        (p.controller.jobs_launched() == 2).then_some(())
    })
    .await;
    // The launcher has decided about each waiting launch: capped, not merely not reached yet.
    wait_for("the others to wait on the cap", 10, || async {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT event_id::text FROM launches WHERE state = 'planned'")
                .fetch_all(&pool)
                .await
                .unwrap();
        let mut capped = 0;
        for id in &ids {
            let (_, e) = p.app.admin("GET", &format!("/events/{id}"), None).await;
            capped += usize::from(e["launches"][0]["waiting"]["reason"] == "capped");
        }
        (ids.len() == 3 && capped == 3).then_some(())
    })
    .await;
    assert_eq!(p.controller.jobs_launched(), 2, "the cap holds");
    assert_eq!(launches_in(&pool, "planned").await, 3, "the others wait");

    // Finish the running jobs; the tracker notices and the waiting launches go out, two at a time.
    let mut finished = 0;
    while finished < 5 {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT job_id FROM launches WHERE state = 'launched'")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(ids.len() <= 2, "never more than 2 active: {ids:?}");
        for id in &ids {
            p.controller.set_job_status(*id, "successful");
        }
        let target = finished + ids.len() as i64;
        wait_for("jobs to finish", 10, || async {
            (launches_in(&pool, "finished").await >= target).then_some(())
        })
        .await;
        finished = target;
        if finished < 5 {
            wait_for("the next launches", 10, || async {
                (launches_in(&pool, "launched").await > 0).then_some(())
            })
            .await;
        }
    }
    assert_eq!(
        p.controller.jobs_launched(),
        5,
        "every event launched in the end"
    );
}

#[sqlx::test]
async fn coalescing_window_turns_a_burst_into_one_launch(pool: PgPool) {
    let opts = Options {
        rules: COALESCED,
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    for n in 0..4 {
        p.deliver(Sender::ServiceNow, &format!("same-ticket-{n}"))
            .await;
    }
    wait_for("all four decided", 10, || async {
        let decided: i64 = sqlx::query_scalar("SELECT count(*) FROM launches")
            .fetch_one(&pool)
            .await
            .unwrap();
        (decided == 4).then_some(())
    })
    .await;
    assert_eq!(wait_quiescent(&pool, &p.controller, 10).await, 1);
    assert_eq!(launches_in(&pool, "coalesced").await, 3);
    let attached: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT coalesced_into) FROM launches WHERE state = 'coalesced'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(attached, 1, "later events are attached to the one launch");
}

#[sqlx::test]
async fn a_deleted_job_frees_its_slot_and_the_ticket_is_told(pool: PgPool) {
    let opts = Options {
        rules: CAPPED_ONE,
        job_duration: Duration::from_secs(3600),
        ..Options::default()
    };
    let p = Pipeline::start(pool.clone(), opts).await;
    p.deliver(Sender::ServiceNow, "vanish-1").await;
    p.deliver(Sender::ServiceNow, "vanish-2").await;
    // Recorded by the bridge, not just created on the controller.
    let job: i64 = wait_for("the first launch", 10, || async {
        sqlx::query_scalar("SELECT job_id FROM launches WHERE state = 'launched'")
            .fetch_optional(&pool)
            .await
            .unwrap()
    })
    .await;
    // Someone deletes the running job on the controller.
    p.controller.delete_job(job);
    wait_for("the second launch, once the slot is free", 15, || async {
        (p.controller.jobs_launched() == 2).then_some(())
    })
    .await;
    let status: String = sqlx::query_scalar("SELECT job_status FROM launches WHERE job_id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "missing");
    let notes = wait_for("the notes", 10, || async {
        let n = p
            .tickets
            .servicenow_notes("9d385017c611228701d22104cc95c371");
        n.iter()
            .any(|(_, t)| t.contains("no longer listed"))
            .then_some(n)
    })
    .await;
    assert!(notes
        .iter()
        .any(|(_, t)| t.starts_with("[aap-bridge] Could not launch")
            || t.contains("no longer listed")));
}

const CAPPED_ONE: &str = r#"
rules:
  - name: capped-one
    source: snow
    category: disk_full
    launch: 15
    max_concurrent: 1
    reply: work_notes
"#;
