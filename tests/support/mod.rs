//! Test harness: the real service on 127.0.0.1:0 against a per-test Postgres database.
#![allow(dead_code)]

pub mod binary;
pub mod console;
pub mod fake_controller;
pub mod fake_tickets;
pub mod pipeline;
pub mod proxy;
pub mod senders;
pub mod tls;
pub mod webdriver;

use aap_bridge::config::Settings;
use aap_bridge::Application;
use serde_json::Value;
use sqlx::PgPool;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use senders::Sender;

/// The admin API token of the pipeline config (`pipeline::config`).
pub const ADMIN_TOKEN: &str = "admin-secret";

/// Sources every test app has; secrets are `<kind>-old` and `<kind>-new` (rotation).
pub const SOURCES_YAML: &str = r#"
# Short test secrets; dev mode allows them on 127.0.0.1.
dev_mode: true
server:
  listen: "127.0.0.1:0"
  drain_secs: 0
  shutdown_grace_secs: 5
  metrics_refresh_ms: 200
database:
  acquire_timeout_ms: 1000
ingest:
  commit_timeout_ms: 2000
mappings:
  path: tests/support/no-rules.yaml
sources:
  gh:
    kind: github
    secrets: ["github-old", "github-new"]
  pd:
    kind: pagerduty
    secrets: ["pagerduty-old", "pagerduty-new"]
  snow:
    kind: servicenow
    secrets: ["servicenow-old", "servicenow-new"]
    signature_header: X-Bridge-Signature
    timestamp_header: X-Bridge-Timestamp
    delivery_header: X-ServiceNow-Delivery
  snow-signed:
    kind: servicenow
    secrets: ["servicenow-new"]
    signature_header: X-Bridge-Signature
    timestamp_header: X-Bridge-Timestamp
    delivery_header: X-ServiceNow-Delivery
    signature_scheme: "{timestamp}.{delivery}.{body}"
  snow-bearer:
    kind: servicenow
    auth: bearer
    bearer_tokens: ["sn-token-1"]
  snow-bearer-ts:
    kind: servicenow
    auth: bearer
    bearer_tokens: ["sn-token-1"]
    timestamp_header: X-Bridge-Timestamp
  small:
    kind: github
    secrets: ["github-new"]
    body_limit_bytes: 1024
  vector:
    kind: github
    secrets: ["It's a Secret to Everybody"]
"#;

pub struct TestApp {
    pub base: String,
    /// `server.admin_listen`'s address, when the config sets it.
    pub admin_base: Option<String>,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(pool: PgPool) -> Self {
        Self::spawn_with(pool.clone(), pool, SOURCES_YAML).await
    }

    /// `app_pool` is what the service uses (maybe through a proxy); `pool` is for assertions.
    pub async fn spawn_with(pool: PgPool, app_pool: PgPool, yaml: &str) -> Self {
        Self::spawn_hooked(pool, app_pool, yaml, Default::default()).await
    }

    pub async fn spawn_hooked(
        pool: PgPool,
        app_pool: PgPool,
        yaml: &str,
        hooks: aap_bridge::workers::Hooks,
    ) -> Self {
        let settings = Settings::from_parts(Some(yaml), None, false).expect("test settings");
        let app = Application::build_with(settings, app_pool, hooks)
            .await
            .expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let admin_base = app.admin_port().map(|p| format!("http://127.0.0.1:{p}"));
        let shutdown = app.shutdown_token();
        let handle = tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        TestApp {
            base,
            admin_base,
            pool,
            client,
            shutdown,
            handle: Some(handle),
        }
    }

    pub async fn post(
        &self,
        source: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/hooks/{source}", self.base))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("request completes");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    /// Sends a correctly signed delivery from `sender` with the given delivery id.
    pub async fn deliver(&self, sender: Sender, delivery: &str) -> (u16, Value) {
        let body = sender.body(delivery);
        let headers = sender.signed_headers(sender.new_secret(), delivery, &body);
        self.post(sender.source(), &headers, &body).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request completes");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An admin API call (`/api/v1/…`) with the bearer `token` (None: no Authorization header).
    pub async fn admin_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request completes");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// An admin API call with the right token, e.g. `admin("GET", "/events", None)`.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.admin_as(Some(ADMIN_TOKEN), method, path, body).await
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The `error` text of a JSON error body.
pub fn error_of(v: &Value) -> String {
    v.get("error")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("expected {{\"error\": …}}, got {v}"))
        .to_string()
}

/// Controller settings for `url` with the given `auth:` block (YAML, indented by 4).
pub fn controller_settings(
    url: &str,
    auth_yaml: &str,
    extra: &str,
) -> aap_bridge::config::ControllerSettings {
    // The fakes serve plain HTTP unless started with TLS.
    let insecure = url.starts_with("http://");
    let yaml = format!(
        "controller:\n  url: \"{url}\"\n  allow_insecure_http: {insecure}\n  retry: {{max_attempts: 3, base_delay_ms: 10, max_delay_ms: 50}}\n  timeout_secs: 10\n{extra}  auth:\n{auth_yaml}"
    );
    settings_from(&yaml).controller.expect("controller section")
}

fn settings_from(yaml: &str) -> Settings {
    Settings::from_parts(Some(yaml), None, false).expect("controller settings")
}

pub const SVC_PASSWORD_AUTH: &str =
    "    mode: password\n    username: svc\n    password: svc-pass\n";

/// `database.url` for a bridge process on this test's database: the same server as
/// `DATABASE_URL` (the machine's, or the runner's private one on another port).
pub fn database_url(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "postgres://postgres@{}:{}/{}",
        o.get_host(),
        o.get_port(),
        o.get_database().unwrap_or("postgres")
    )
}
