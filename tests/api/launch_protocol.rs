//! The fenced launch protocol under a slow controller: an answer that comes after the client
//! gave up, a 504 after the job was created, a 504 before it is created, a 504 for nothing.
//! Each ends with exactly one job per event, asserted after quiescence.

use crate::support::fake_controller::LaunchFault;
use crate::support::pipeline::{jobs_per_launch, wait_quiescent, Options, Pipeline, Tuning};
use crate::support::Sender;
use sqlx::PgPool;
use std::time::Duration;

const ONE_RULE: &str = r#"
rules:
  - name: remediate
    source: snow
    category: disk_full
    launch: 15
    extra_vars:
      incident_number: "{{ ticket.number }}"
    reply: work_notes
"#;

/// Client timeout 1 s, settle window 4 s, reads 1 s apart.
fn slow_controller() -> Options {
    Options {
        rules: ONE_RULE,
        lease_secs: 5,
        job_duration: Duration::from_millis(200),
        tuning: Tuning {
            controller_timeout_secs: 1,
            workers: "  launch_settle_secs: 4\n  reconcile_interval_secs: 1\n".into(),
            ..Tuning::default()
        },
        ..Options::default()
    }
}

/// (state, job id, sends (POSTs confirmed), last_error) of the only launch.
async fn the_launch(pool: &PgPool) -> (String, Option<i64>, i32, Option<String>) {
    sqlx::query_as("SELECT state, job_id, sends, last_error FROM launches")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Until the window has passed and two reads agree, an unclear launch waits as `launching`.
async fn wait_unclear(pool: &PgPool) {
    crate::support::pipeline::wait_for("the unclear answer", 10, || async {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT state, last_error FROM launches")
                .fetch_optional(pool)
                .await
                .unwrap();
        row.filter(|(state, err)| {
            state == "launching" && err.as_deref().is_some_and(|e| e.starts_with("unclear"))
        })
    })
    .await;
}

async fn one_job_for(fault: LaunchFault, pool: PgPool) -> (String, Option<i64>, i32) {
    let p = Pipeline::start(pool.clone(), slow_controller()).await;
    p.controller.set_launch_fault(fault, 1);
    p.deliver(Sender::ServiceNow, "slow-1").await;
    let jobs = wait_quiescent(&pool, &p.controller, 60).await;
    assert_eq!(jobs, 1, "exactly one job for the event ({fault:?})");
    let per_launch = jobs_per_launch(&p.controller);
    assert!(per_launch.values().all(|n| *n == 1), "{per_launch:?}");
    let (state, job_id, attempts, _) = the_launch(&pool).await;
    let job = p.controller.job(1).expect("the job");
    assert_eq!(job_id, job["id"].as_i64(), "the launch records that job");
    assert!(
        matches!(state.as_str(), "launched" | "finished"),
        "ends launched, not {state}"
    );
    (state, job_id, attempts)
}

#[sqlx::test]
async fn an_answer_after_the_client_timeout_gives_one_job(pool: PgPool) {
    // The job is created at +2.5 s, after the client gave up at +1 s.
    let fault = LaunchFault::AnswerLate(Duration::from_millis(2500));
    let (_, _, attempts) = one_job_for(fault, pool).await;
    assert_eq!(attempts, 1, "never re-sent");
}

#[sqlx::test]
async fn a_504_after_the_job_was_created_gives_one_job(pool: PgPool) {
    let (_, _, attempts) = one_job_for(LaunchFault::ActThen504, pool).await;
    assert_eq!(attempts, 1, "found by its marker, never re-sent");
}

#[sqlx::test]
async fn a_504_before_the_job_is_created_gives_one_job(pool: PgPool) {
    // The first read (+1 s) finds nothing; the job appears at +2 s, inside the settle window.
    let fault = LaunchFault::Answer504ThenAct(Duration::from_secs(2));
    let (_, _, attempts) = one_job_for(fault, pool).await;
    assert_eq!(attempts, 1, "found by its marker, never re-sent");
}

#[sqlx::test]
async fn a_504_for_nothing_is_relaunched_only_after_the_settle_window(pool: PgPool) {
    let p = Pipeline::start(pool.clone(), slow_controller()).await;
    p.controller.set_launch_fault(LaunchFault::Drop504, 1);
    let started = std::time::Instant::now();
    p.deliver(Sender::ServiceNow, "dropped-1").await;
    wait_unclear(&pool).await;
    let jobs = wait_quiescent(&pool, &p.controller, 60).await;
    assert_eq!(jobs, 1, "relaunched once");
    let (state, job_id, attempts, _) = the_launch(&pool).await;
    assert_eq!(attempts, 2, "one unclear send, one that launched");
    assert!(matches!(state.as_str(), "launched" | "finished"));
    assert!(job_id.is_some());
    let launched_after: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM launched_at - created_at)::float8 FROM launches",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    println!("relaunched {launched_after:.2} s after the first attempt was claimed");
    assert!(
        launched_after >= 4.0,
        "not relaunched inside the 4 s settle window ({launched_after:.1} s)"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[sqlx::test]
async fn reconciliation_errors_are_bounded_then_unknown_and_told(pool: PgPool) {
    let mut opts = slow_controller();
    opts.tuning.workers.push_str("  reconcile_max_errors: 2\n");
    let p = Pipeline::start(pool.clone(), opts).await;
    p.controller.set_launch_fault(LaunchFault::Drop504, 1);
    p.deliver(Sender::ServiceNow, "deleted-template").await;
    wait_unclear(&pool).await;
    // The template is deleted while the launch is unclear: every read of it now fails.
    p.controller.delete_template(15);
    let jobs = wait_quiescent(&pool, &p.controller, 60).await;
    assert_eq!(jobs, 0);
    let (state, _, _, error) = the_launch(&pool).await;
    assert_eq!(state, "unknown");
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("reconciliation failed 2 times")),
        "{error:?}"
    );
    let notes = p
        .tickets
        .servicenow_notes("9d385017c611228701d22104cc95c371");
    assert!(
        notes
            .iter()
            .any(|(_, t)| t.contains("cannot tell whether it launched")),
        "the ticket is told: {notes:?}"
    );
}
