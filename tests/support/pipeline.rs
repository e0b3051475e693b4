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
}

pub struct Options {
    pub hooks: Hooks,
    pub lease_secs: u64,
    pub job_duration: Duration,
    pub rules: &'static str,
    /// `workers.stdout_wait_secs`.
    pub stdout_wait_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            hooks: Hooks::default(),
            lease_secs: 30,
            job_duration: Duration::from_millis(300),
            rules: RULES,
            stdout_wait_secs: 5,
        }
    }
}

pub fn config(
    controller: &str,
    tickets: &str,
    mappings: &std::path::Path,
    lease_secs: u64,
) -> String {
    config_waiting(controller, tickets, mappings, lease_secs, 5)
}

/// `config` with `workers.stdout_wait_secs`.
pub fn config_waiting(
    controller: &str,
    tickets: &str,
    mappings: &std::path::Path,
    lease_secs: u64,
    stdout_wait_secs: u64,
) -> String {
    format!(
        r#"
server: {{listen: "127.0.0.1:0", shutdown_grace_secs: 5}}
database: {{acquire_timeout_ms: 2000}}
ingest: {{commit_timeout_ms: 3000}}
admin: {{token: "{admin}"}}
mappings: {{path: "{mappings}", reload_interval_secs: 1}}
workers:
  poll_interval_ms: 50
  tracker_interval_ms: 100
  launch_lease_secs: {lease_secs}
  reconcile_skew_secs: 60
  launch_retry_base_ms: 100
  launch_retry_max_ms: 400
  callback_retry_base_ms: 100
  callback_retry_max_ms: 1000
  stdout_wait_secs: {stdout_wait_secs}
controller:
  url: "{controller}"
  retry: {{max_attempts: 2, base_delay_ms: 20, max_delay_ms: 50}}
  timeout_secs: 5
  auth: {{mode: basic, username: svc, password: svc-pass}}
sources:
  gh:
    kind: github
    secrets: ["github-old", "github-new"]
    reply: {{api_url: "{tickets}", token: gh-token}}
  pd:
    kind: pagerduty
    secrets: ["pagerduty-old", "pagerduty-new"]
    reply: {{api_url: "{tickets}", token: pd-key, from: ops-bot@example.com}}
  snow:
    kind: servicenow
    secrets: ["servicenow-old", "servicenow-new"]
    signature_header: X-Bridge-Signature
    timestamp_header: X-Bridge-Timestamp
    reply: {{api_url: "{tickets}", username: snow-bot, password: snow-pass}}
"#,
        mappings = mappings.display(),
        admin = super::ADMIN_TOKEN,
    )
}

impl Pipeline {
    pub async fn start(pool: PgPool, opts: Options) -> Self {
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
        let tickets = FakeTickets::start().await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yaml"), opts.rules).unwrap();
        let yaml = config_waiting(
            &controller.url(),
            &tickets.url(),
            dir.path(),
            opts.lease_secs,
            opts.stdout_wait_secs,
        );
        let app = TestApp::spawn_hooked(pool.clone(), pool.clone(), &yaml, opts.hooks).await;
        Pipeline {
            app,
            controller,
            tickets,
            dir,
        }
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

pub async fn launch_states(pool: &PgPool) -> Vec<(String, Option<i64>)> {
    sqlx::query_as("SELECT state, job_id FROM launches ORDER BY created_at")
        .fetch_all(pool)
        .await
        .unwrap()
}
