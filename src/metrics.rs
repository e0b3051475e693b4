//! Prometheus metrics: counters and histograms recorded where things happen, plus gauges read
//! from the database (queue depths, launches by state, token age), so every replica reports the
//! same picture. The gauges are refreshed by a background task on the admin pool: a scrape only
//! renders memory, so a scrape flood costs no database work and no ingest connection.

use crate::domain::LaunchState;
use crate::mapping::SharedMappings;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the process-wide recorder once (tests start several apps in one process).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "aap_bridge_events_received_total",
        "Deliveries by source and outcome (accepted, duplicate, ignored, rejected)"
    );
    describe_counter!(
        "aap_bridge_signature_failures_total",
        "Deliveries refused with 401, by source"
    );
    describe_counter!(
        "aap_bridge_launches_total",
        "Launch attempts by result (launched, rejected, unknown, retried, reconciled)"
    );
    describe_counter!(
        "aap_bridge_controller_requests_total",
        "Controller API calls by controller and outcome (ok, error)"
    );
    describe_counter!(
        "aap_bridge_callback_attempts_total",
        "Post-back attempts by source and result (sent, retry, dead)"
    );
    describe_histogram!(
        "aap_bridge_dispatch_latency_seconds",
        Unit::Seconds,
        "Event received to launch POST answered"
    );
    describe_histogram!(
        "aap_bridge_controller_request_duration_seconds",
        Unit::Seconds,
        "Controller API call duration, by controller"
    );
    describe_gauge!("aap_bridge_queue_depth", "Rows waiting, by queue");
    describe_gauge!("aap_bridge_launches", "Launches by state");
    describe_gauge!(
        "aap_bridge_controller_token_age_seconds",
        "Age of each controller's managed token, by controller"
    );
    describe_gauge!(
        "aap_bridge_approval_oldest_seconds",
        "Age of the oldest launch awaiting approval (0 when none waits)"
    );
    describe_counter!(
        "aap_bridge_approvals_total",
        "Approval decisions by result (approved, denied)"
    );
    describe_gauge!(
        "aap_bridge_controller_launches_waiting",
        "Launches planned or launching, by the controller they go to"
    );
    describe_gauge!(
        "aap_bridge_database_up",
        "1 when the database answered the last background refresh of the gauges"
    );
    describe_counter!(
        "aap_bridge_requests_shed_total",
        "Hook requests refused by reason (concurrency, body_budget: 503; body_timeout: 408)"
    );
    describe_gauge!("aap_bridge_up", "1 while the process serves");
    describe_gauge!(
        "aap_bridge_rule_paused",
        "1 while the rule is paused (its launches are held), else 0"
    );
    describe_counter!(
        "aap_bridge_launches_held_total",
        "Launches held because their rule was paused, by rule"
    );
    describe_counter!(
        "aap_bridge_catch_up_missing_total",
        "GitHub deliveries a catch-up pass found missing (failed, not stored), by source"
    );
    describe_counter!(
        "aap_bridge_catch_up_redeliveries_total",
        "GitHub redeliveries requested by source and result (requested, too_old, not_found, \
         rate_limited, failed)"
    );
    describe_counter!(
        "aap_bridge_catch_up_records_total",
        "ServiceNow records read by catch-up, by source and result (stored, duplicate, skipped)"
    );
    describe_counter!(
        "aap_bridge_catch_up_passes_total",
        "Catch-up passes by source and result (ok, partial: stopped early, failed)"
    );
}

/// Text exposition of what is in memory.
pub fn render(handle: &PrometheusHandle) -> String {
    metrics::gauge!("aap_bridge_up").set(1.0);
    handle.run_upkeep();
    handle.render()
}

/// Recomputes the database gauges every `every` until cancelled; each round is bounded by
/// `every` (at least 2 s) so a slow database cannot pile rounds up.
/// `tokens`: each live controller's name and the `controller_tokens` row of its token.
pub async fn refresh_loop(
    pool: PgPool,
    mappings: SharedMappings,
    tokens: Vec<(String, String)>,
    every: Duration,
    stop: CancellationToken,
) {
    let bound = every.max(Duration::from_secs(2));
    loop {
        let ok = tokio::time::timeout(bound, refresh(&pool, &mappings, &tokens)).await;
        let up = matches!(ok, Ok(Ok(())));
        if !up {
            tracing::debug!("metrics refresh failed or timed out");
        }
        metrics::gauge!("aap_bridge_database_up").set(if up { 1.0 } else { 0.0 });
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

async fn refresh(
    pool: &PgPool,
    mappings: &SharedMappings,
    tokens: &[(String, String)],
) -> Result<(), sqlx::Error> {
    let depths = crate::store::overview::queue_depths(pool).await?;
    for (queue, n) in depths {
        metrics::gauge!("aap_bridge_queue_depth", "queue" => queue).set(n as f64);
    }
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM launches GROUP BY state")
            .fetch_all(pool)
            .await?;
    for state in LaunchState::NAMES {
        let n = states
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("aap_bridge_launches", "state" => *state).set(n as f64);
    }
    let keys: Vec<&str> = tokens.iter().map(|(_, k)| k.as_str()).collect();
    for (key, age) in crate::store::overview::token_ages(pool, &keys).await? {
        for (name, _) in tokens.iter().filter(|(_, k)| *k == key) {
            metrics::gauge!("aap_bridge_controller_token_age_seconds", "controller" => name.clone())
                .set(age);
        }
    }
    let oldest = crate::store::overview::oldest_approval_secs(pool).await?;
    metrics::gauge!("aap_bridge_approval_oldest_seconds").set(oldest.unwrap_or(0.0));
    let waiting = crate::store::overview::waiting_by_controller(pool).await?;
    let mut names: BTreeMap<String, f64> = tokens.iter().map(|(n, _)| (n.clone(), 0.0)).collect();
    names.extend(waiting.into_iter().map(|(n, c)| (n, c as f64)));
    for (name, n) in names {
        metrics::gauge!("aap_bridge_controller_launches_waiting", "controller" => name).set(n);
    }
    // Every loaded rule reports 0 or 1, and so does any rule with a breaker row (so a rule
    // resumed after it was removed from the files goes back to 0).
    let mut paused: BTreeMap<String, bool> = mappings
        .current()
        .rule_names()
        .into_iter()
        .map(|r| (r, false))
        .collect();
    paused.extend(crate::launch::sql::pauses::paused_flags(pool).await?);
    for (rule, p) in paused {
        metrics::gauge!("aap_bridge_rule_paused", "rule" => rule).set(if p { 1.0 } else { 0.0 });
    }
    Ok(())
}

/// Source label for a delivery: configured names only, so random paths cannot grow the series.
pub fn source_label(known: bool, source: &str) -> String {
    if known {
        source.to_string()
    } else {
        "unknown".to_string()
    }
}
