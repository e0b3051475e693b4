//! The whole line for end-to-end tests: the service, a fake controller, fake ticket systems,
//! mapping files in a temp dir, fast worker timings.

use super::fake_controller::{FakeController, Flavour, TemplateSpec};
use super::fake_tickets::FakeTickets;
use super::{Sender, TestApp};
use aap_bridge::workers::Hooks;
use sqlx::PgPool;
use std::time::{Duration, Instant};

pub const RULES: &str = r#"
rules:
  - name: snow-remediation
    source: snow
    categories:
      disk_full: 15
      service_down: 22
      cert_expiry: 31
    extra_vars:
      incident_number: "{{ ticket.number }}"
      target_host: "{{ payload.cmdb_ci }}"
      priority: "{{ payload.priority }}"
    reply: work_notes
  - name: gh-disk
    source: gh
    category: disk_full
    launch: 15
    extra_vars:
      repo: "{{ ticket.repo }}"
      issue: "{{ ticket.number }}"
    reply: comment
  - name: pd-web
    source: pd
    event_type: incident.triggered
    category: web-tier
    launch: 22
    extra_vars:
      incident: "{{ ticket.incident_id }}"
    reply: note
"#;

pub struct Pipeline {
    pub app: TestApp,
    pub controller: FakeController,
    pub tickets: FakeTickets,
    pub dir: tempfile::TempDir,
    /// The service config, so `replica` can start more bridges like it.
    pub yaml: String,
}

pub struct Options {
    pub hooks: Hooks,
    pub lease_secs: u64,
    pub job_duration: Duration,
    pub rules: &'static str,
    pub tuning: Tuning,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hooks: Hooks::default(),
            lease_secs: 30,
            job_duration: Duration::from_millis(300),
            rules: RULES,
            tuning: Tuning::default(),
        }
    }
}

/// Timings a fault test sets: the controller client's timeout and extra `workers:` keys.
#[derive(Clone)]
pub struct Tuning {
    pub controller_timeout_secs: u64,
    /// YAML lines (indented by 2) under `workers:`; they replace the test defaults' keys.
    pub workers: String,
    /// `catch_up:` blocks (YAML flow mappings) for these sources; `{tickets}` is replaced by
    /// the fake ticket systems' URL.
    pub catch_up: Vec<(&'static str, String)>,
    /// More `admin:` keys, YAML flow style (`operators: {teams: [sre]}`).
    pub admin: String,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            controller_timeout_secs: 5,
            workers: String::new(),
            catch_up: Vec::new(),
            admin: String::new(),
        }
    }
}

pub fn config(
    controller: &str,
    tickets: &str,
    mappings: &std::path::Path,
    lease_secs: u64,
) -> String {
    config_tuned(
        controller,
        tickets,
        mappings,
        lease_secs,
        &Tuning::default(),
    )
}

pub fn config_tuned(
    controller: &str,
    tickets: &str,
    mappings: &std::path::Path,
    lease_secs: u64,
    tuning: &Tuning,
) -> String {
    let yaml = format!(
        r#"
dev_mode: true
server: {{listen: "127.0.0.1:0", drain_secs: 0, shutdown_grace_secs: 5, metrics_refresh_ms: 200}}
database: {{acquire_timeout_ms: 2000}}
ingest: {{commit_timeout_ms: 3000}}
admin: {{token: "{admin}"{admin_extra}}}
mappings: {{path: "{mappings}", reload_interval_secs: 1}}
workers:
{workers}
controller:
  url: "{controller}"
  allow_insecure_http: true
  retry: {{max_attempts: 2, base_delay_ms: 20, max_delay_ms: 50}}
  timeout_secs: {timeout}
  auth: {{mode: basic, username: svc, password: svc-pass}}
sources:
  gh:
    kind: github
    secrets: ["github-old", "github-new"]
    reply: {{api_url: "{tickets}", allow_insecure_http: true, token: gh-token}}
  pd:
    kind: pagerduty
    secrets: ["pagerduty-old", "pagerduty-new"]
    reply: {{api_url: "{tickets}", allow_insecure_http: true, token: pd-key, from: ops-bot@example.com}}
  snow:
    kind: servicenow
    secrets: ["servicenow-old", "servicenow-new"]
    signature_header: X-Bridge-Signature
    timestamp_header: X-Bridge-Timestamp
    reply: {{api_url: "{tickets}", allow_insecure_http: true, username: snow-bot, password: snow-pass}}
"#,
        mappings = mappings.display(),
        admin = super::ADMIN_TOKEN,
        admin_extra = if tuning.admin.is_empty() {
            String::new()
        } else {
            format!(", {}", tuning.admin)
        },
        workers = worker_lines(lease_secs, &tuning.workers),
        timeout = tuning.controller_timeout_secs,
    );
    with_catch_up(yaml, tickets, &tuning.catch_up)
}

/// Adds each `catch_up:` block under its source, after the source's `reply:` line.
fn with_catch_up(yaml: String, tickets: &str, blocks: &[(&str, String)]) -> String {
    let mut lines: Vec<String> = yaml.lines().map(str::to_string).collect();
    for (source, block) in blocks {
        let start = lines
            .iter()
            .position(|l| l == &format!("  {source}:"))
            .unwrap_or_else(|| panic!("no source {source} in the pipeline config"));
        let reply = start
            + lines[start..]
                .iter()
                .position(|l| l.starts_with("    reply:"))
                .expect("the source replies");
        let block = block.replace("{tickets}", tickets);
        lines.insert(reply + 1, format!("    catch_up: {block}"));
    }
    lines.join("\n") + "\n"
}

/// Fast test timings, with `extra`'s keys winning (YAML forbids a key twice).
fn worker_lines(lease_secs: u64, extra: &str) -> String {
    let lease = lease_secs.to_string();
    let defaults = [
        ("poll_interval_ms", "50"),
        ("tracker_interval_ms", "100"),
        ("launch_lease_secs", lease.as_str()),
        ("reconcile_skew_secs", "60"),
        ("launch_retry_base_ms", "100"),
        ("launch_retry_max_ms", "400"),
        ("callback_retry_base_ms", "100"),
        ("callback_retry_max_ms", "1000"),
        ("stdout_wait_secs", "5"),
    ];
    let key = |line: &str| {
        line.trim()
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let mut out: Vec<String> = defaults
        .iter()
        .filter(|(k, _)| !overridden.iter().any(|o| o == k))
        .map(|(k, v)| format!("  {k}: {v}"))
        .collect();
    out.extend(
        extra
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string),
    );
    out.join("\n")
}

impl Pipeline {
    pub async fn start(pool: PgPool, opts: Options) -> Self {
        Self::start_on(pool, opts, FakeTickets::start().await).await
    }

    /// With fake ticket systems set up beforehand (records waiting to be caught up, say).
    pub async fn start_on(pool: PgPool, opts: Options, tickets: FakeTickets) -> Self {
        let controller = FakeController::start(Flavour::Awx).await;
        controller.set_job_duration(opts.job_duration);
        for (id, outcome) in [(15, "successful"), (22, "failed"), (31, "successful")] {
            controller.add_job_template(TemplateSpec {
                id: Some(id),
                name: format!("template-{id}"),
                outcome: outcome.into(),
                ..Default::default()
            });
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yaml"), opts.rules).unwrap();
        let yaml = config_tuned(
            &controller.url(),
            &tickets.url(),
            dir.path(),
            opts.lease_secs,
            &opts.tuning,
        );
        let app = TestApp::spawn_hooked(pool.clone(), pool.clone(), &yaml, opts.hooks).await;
        Pipeline {
            app,
            controller,
            tickets,
            dir,
            yaml,
        }
    }

    /// Another bridge with the same config, database and fakes.
    pub async fn replica(&self, hooks: Hooks) -> TestApp {
        TestApp::spawn_hooked(
            self.app.pool.clone(),
            self.app.pool.clone(),
            &self.yaml,
            hooks,
        )
        .await
    }

    /// Another bridge process on the same database and fakes.
    pub async fn app(
        pool: &PgPool,
        c: &FakeController,
        t: &FakeTickets,
        dir: &std::path::Path,
        lease: u64,
        hooks: Hooks,
    ) -> TestApp {
        let yaml = config(&c.url(), &t.url(), dir, lease);
        TestApp::spawn_hooked(pool.clone(), pool.clone(), &yaml, hooks).await
    }

    pub async fn deliver(&self, sender: Sender, delivery: &str) -> serde_json::Value {
        let (status, body) = self.app.deliver(sender, delivery).await;
        assert_eq!(status, 202, "{body}");
        body
    }
}

/// Polls `check` until it returns Some, or panics after `secs` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Launches in `state`, across the test's database.
pub async fn launches_in(pool: &PgPool, state: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM launches WHERE state = $1")
        .bind(state)
        .fetch_one(pool)
        .await
        .unwrap()
}

pub async fn launch_states(pool: &PgPool) -> Vec<(String, Option<i64>)> {
    sqlx::query_as("SELECT state, job_id FROM launches ORDER BY created_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Waits until the pipeline has nothing in flight: no pending event, no planned or launching
/// launch, no pending callback, and the controller's job count unchanged over several polls.
/// Returns the job count. Tests assert after this, never after a fixed sleep.
pub async fn wait_quiescent(pool: &PgPool, controller: &FakeController, secs: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut stable, mut last) = (0, usize::MAX);
    loop {
        let jobs = controller.jobs_launched();
        let busy: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM events WHERE state = 'pending')
                  + (SELECT count(*) FROM launches WHERE state IN ('planned', 'launching'))
                  + (SELECT count(*) FROM callbacks WHERE state = 'pending')",
        )
        .fetch_one(pool)
        .await
        .unwrap_or(1);
        if busy == 0 && jobs == last {
            stable += 1;
            if stable >= 5 {
                return jobs;
            }
        } else {
            stable = 0;
        }
        last = jobs;
        assert!(
            Instant::now() < deadline,
            "no quiescence after {secs} s: {busy} rows in flight, {jobs} jobs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deadlocks Postgres detected in this test's database so far.
pub async fn deadlocks(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Jobs the controller created per launch marker; exactly once means every value is 1.
pub fn jobs_per_launch(c: &FakeController) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    for marker in c.job_markers() {
        *out.entry(marker.unwrap_or_default()).or_insert(0) += 1;
    }
    out
}
