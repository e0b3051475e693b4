//! Settings: built-in defaults < YAML file < `AAP_BRIDGE__SECTION__KEY` environment variables.

mod admin;
mod catch_up;
mod controller;
mod expand;
mod reply;
mod sources;
mod strength;
#[cfg(test)]
mod tests_catch_up;
mod workers;

pub use admin::{AdminSettings, OperatorRoles};
pub use catch_up::{
    CatchUpPlan, CatchUpSettings, GithubPlan, Hook, HookSetting, Pace, ServiceNowPlan, SnAuth,
    Versions,
};
pub use controller::{AuthSettings, ControllerSettings, FlavourSetting, RetrySettings};
pub use expand::{expand_env, expand_tree, resolve_files};
pub use reply::ReplySettings;
pub use sources::{SignatureScheme, SourceAuth, SourceKind, SourceSettings};
pub use strength::{weakness, MIN_SECRET_BYTES};
pub use workers::{MappingSettings, RetentionSettings, WorkerSettings};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DEFAULTS: &str = include_str!("defaults.yaml");

/// The name of the controller `controller:` configures, and of the one launches go to when
/// nothing names another.
pub const DEFAULT_CONTROLLER: &str = "default";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub ingest: IngestSettings,
    pub mappings: MappingSettings,
    pub workers: WorkerSettings,
    pub retention: RetentionSettings,
    /// The controller named `default`. Absent, with no `controllers:` either: dry-run,
    /// nothing is launched.
    #[serde(default)]
    pub controller: Option<ControllerSettings>,
    /// More controllers by name (production, lab, one per region); `controller:` is the one
    /// named `default`.
    #[serde(default)]
    pub controllers: BTreeMap<String, ControllerSettings>,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSettings>,
    /// The admin API; without a token it is disabled.
    #[serde(default)]
    pub admin: AdminSettings,
    /// Accept short and placeholder secrets (tests, a laptop); only with a loopback listener.
    #[serde(default)]
    pub dev_mode: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on; port 0 picks a free port (tests).
    pub listen: String,
    /// Default request body limit; a source may raise it (GitHub sends up to 25 MB).
    pub body_limit_bytes: usize,
    /// After SIGTERM, how long `/readyz` answers 503 while the listener still serves, so load
    /// balancers stop sending before it closes.
    pub drain_secs: u64,
    /// After the drain, the one budget within which in-flight requests, the commit writers and
    /// the workers all stop (in parallel).
    pub shutdown_grace_secs: u64,
    /// A request head must arrive whole within this time. hyper runs the timer whenever it waits
    /// for a head, so it also closes an HTTP/1.1 connection idle for this long between requests.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress for this long is closed (HTTP/2 included).
    pub idle_timeout_secs: u64,
    /// A hook's body must arrive whole within this time after its head: 408 otherwise.
    pub body_timeout_secs: u64,
    /// `/hooks` requests in progress at once; beyond it 503 with Retry-After.
    pub max_concurrent_hooks: usize,
    /// Body bytes all `/hooks` requests may hold at once, reserved before buffering; beyond it
    /// 503 with Retry-After. Bounds memory under stalled uploads (README, "Hostile senders").
    pub max_inflight_body_bytes: usize,
    /// How often the database gauges of `/metrics` are recomputed in the background.
    pub metrics_refresh_ms: u64,
    /// Serve the admin API and `/metrics` on this address instead of `listen`.
    #[serde(default)]
    pub admin_listen: Option<String>,
    /// Behind a reverse proxy: the header it puts the client's address in (`X-Forwarded-For`);
    /// its right-most entry, the one the proxy added, is the client. Unset: the peer address.
    #[serde(default)]
    pub client_address_header: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: secrecy::SecretString,
    pub max_connections: u32,
    /// A separate small pool for `/metrics`, `/readyz` and the admin API, so they never take
    /// connections from ingest.
    pub admin_max_connections: u32,
    /// Bound on waiting for a connection; past it requests get 503 instead of hanging.
    pub acquire_timeout_ms: u64,
    /// Create the database named in the URL when it does not exist.
    pub create_if_missing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `aap_bridge=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Concurrent group-commit writers; each commits one batch at a time.
    pub writers: usize,
    /// While one writer's commit is in flight, another commits only this many events or more
    /// (or once that commit ends): a commit costs nearly as much for 5 events as for 30.
    pub parallel_batch_min: usize,
    /// Most events committed in one transaction.
    pub batch_max: usize,
    /// Requests waiting for a writer before new ones are told 503.
    pub queue_capacity: usize,
    /// A delivery not committed within this time is answered 503 so the sender retries.
    pub commit_timeout_ms: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads defaults, then the file (if any), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let file_text = match path {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?,
            ),
            None => None,
        };
        let base = path.and_then(Path::parent).map(Path::to_path_buf);
        Self::from_parts(file_text.as_deref(), base, true)
    }

    /// Defaults plus an optional YAML text; `with_env` adds `AAP_BRIDGE__*` overrides.
    pub fn from_parts(
        yaml: Option<&str>,
        base: Option<PathBuf>,
        with_env: bool,
    ) -> Result<Self, ConfigError> {
        Self::from_parts_with(yaml, base, with_env, &|name| std::env::var(name).ok())
    }

    /// `from_parts`, with `${NAME}` looked up through `lookup`.
    pub fn from_parts_with(
        yaml: Option<&str>,
        base: Option<PathBuf>,
        with_env: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        use config::{Config, File, FileFormat};
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Yaml));
        if let Some(text) = yaml {
            // Parse first, then expand inside string values (see `expand`).
            let mut file: serde_json::Value = Config::builder()
                .add_source(File::from_str(text, FileFormat::Yaml))
                .build()
                .and_then(|c| c.try_deserialize())
                .map_err(|e| ConfigError(e.to_string()))?;
            expand_tree(&mut file, "", lookup).map_err(ConfigError)?;
            // JSON is YAML; the `config` crate is built without its JSON format.
            builder = builder.add_source(File::from_str(&file.to_string(), FileFormat::Yaml));
        }
        if with_env {
            let env = env_layer(None)?;
            builder = builder.add_source(File::from_str(&env.to_string(), FileFormat::Yaml));
        }
        let raw: serde_json::Value = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError(e.to_string()))?;
        let mut raw = raw;
        resolve_files(&mut raw, base.as_deref()).map_err(ConfigError)?;
        let settings: Settings =
            serde_json::from_value(raw).map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ingest.writers == 0 || self.ingest.batch_max == 0 {
            return Err(ConfigError(
                "ingest.writers and ingest.batch_max must be at least 1".into(),
            ));
        }
        self.validate_server()?;
        self.validate_controllers()?;
        self.workers
            .validate(self.controllers().values().map(|c| c.timeout_secs).max())
            .map_err(ConfigError)?;
        self.retention.validate().map_err(ConfigError)?;
        self.admin.validate().map_err(ConfigError)?;
        for (name, source) in &self.sources {
            source
                .validate(name)
                .map_err(|e| ConfigError(format!("sources.{name}: {e}")))?;
            if let Some(reply) = &source.reply {
                if reply.timeout_secs >= self.workers.callback_lease_secs {
                    return Err(ConfigError(format!(
                        "sources.{name}.reply.timeout_secs ({}) must be shorter than \
                         workers.callback_lease_secs ({}), or a slow post-back is sent twice",
                        reply.timeout_secs, self.workers.callback_lease_secs
                    )));
                }
            }
        }
        self.check_secrets()
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let zero = [
            (
                "server.header_read_timeout_secs",
                s.header_read_timeout_secs as usize,
            ),
            ("server.idle_timeout_secs", s.idle_timeout_secs as usize),
            ("server.body_timeout_secs", s.body_timeout_secs as usize),
            ("server.max_concurrent_hooks", s.max_concurrent_hooks),
            ("server.metrics_refresh_ms", s.metrics_refresh_ms as usize),
            (
                "database.admin_max_connections",
                self.database.admin_max_connections as usize,
            ),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError(format!("{key} must be at least 1")));
        }
        // A body the largest limit allows must fit in the budget, or it is never accepted.
        let largest = self
            .sources
            .values()
            .filter_map(|src| src.body_limit_bytes)
            .chain([s.body_limit_bytes])
            .max()
            .unwrap_or(s.body_limit_bytes);
        if s.max_inflight_body_bytes < largest || s.max_inflight_body_bytes > u32::MAX as usize {
            return Err(ConfigError(format!(
                "server.max_inflight_body_bytes ({}) must be at least the largest body limit \
                 ({largest}) and at most {}",
                s.max_inflight_body_bytes,
                u32::MAX
            )));
        }
        Ok(())
    }
}

/// `AAP_BRIDGE__SECTION__KEY` overrides (from `vars`, or the process environment). Numbers and
/// booleans are typed, except under secret keys: `AAP_BRIDGE__ADMIN__TOKEN=000123…` stays the
/// string it is.
fn env_layer(vars: Option<config::Map<String, String>>) -> Result<serde_json::Value, ConfigError> {
    let mut env: serde_json::Value = config::Config::builder()
        .add_source(
            config::Environment::with_prefix("AAP_BRIDGE")
                .prefix_separator("__")
                .separator("__")
                .source(vars),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| ConfigError(e.to_string()))?;
    typed(&mut env, "");
    Ok(env)
}

const SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "secrets",
    "bearer_tokens",
    "client_secret",
    "url",
];

fn typed(v: &mut serde_json::Value, key: &str) {
    use serde_json::Value;
    match v {
        Value::Object(map) => map.iter_mut().for_each(|(k, v)| typed(v, k)),
        Value::String(s) if !SECRET_KEYS.contains(&key) => {
            if let Ok(b) = s.parse::<bool>() {
                *v = Value::Bool(b);
            } else if let Ok(i) = s.parse::<i64>() {
                *v = Value::from(i);
            } else if let Some(n) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                *v = Value::Number(n);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn defaults_alone_are_valid() {
        let s = Settings::from_parts(None, None, false).unwrap();
        assert_eq!(s.server.body_limit_bytes, 5 * 1024 * 1024);
        assert!(s.database.url.expose_secret().contains("127.0.0.1:5432"));
        assert!(s.sources.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Settings::from_parts(Some("server:\n  listne: x\n"), None, false).unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
    }

    #[test]
    fn secrets_never_print() {
        let yaml = "sources:\n  gh:\n    kind: github\n    secrets: [hunter2-very-secret-value]\n";
        let s = Settings::from_parts(Some(yaml), None, false).unwrap();
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    fn with_env(yaml: &str, vars: &[(&str, &str)]) -> Settings {
        let lookup = |n: &str| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        };
        Settings::from_parts_with(Some(yaml), None, false, &lookup).unwrap()
    }

    fn secret(s: &Settings, source: &str) -> String {
        s.sources[source].secrets[0].expose_secret().to_string()
    }

    const PD: &str = "sources:\n  pd:\n    kind: pagerduty\n    secrets: [\"${PD_SECRET}\"]\n";

    #[test]
    fn expanded_secrets_keep_yaml_syntax_characters() {
        for value in [
            "abc: def ghi-123456",
            "abc #not-a-comment-12345",
            "quote\"in'side-0123456789",
            "{braces: [and, brackets]} 123",
        ] {
            assert_eq!(secret(&with_env(PD, &[("PD_SECRET", value)]), "pd"), value);
        }
        // In a list a newline is part of the one secret; a single string is split on lines
        // (rotation), each line intact.
        let two = "first-secret-123456\nsecond: 0123456789abc";
        assert_eq!(secret(&with_env(PD, &[("PD_SECRET", two)]), "pd"), two);
        let single = PD.replace("[\"${PD_SECRET}\"]", "\"${PD_SECRET}\"");
        let s = with_env(&single, &[("PD_SECRET", two)]);
        let all: Vec<&str> = s.sources["pd"]
            .secrets
            .iter()
            .map(|x| x.expose_secret())
            .collect();
        assert_eq!(all, ["first-secret-123456", "second: 0123456789abc"]);
    }

    #[test]
    fn an_all_digit_secret_stays_a_string() {
        let s = with_env(PD, &[("PD_SECRET", "123456789012345678")]);
        assert_eq!(secret(&s, "pd"), "123456789012345678");
        // Unquoted in the file, too: the text never sees the value.
        let bare = PD.replace("[\"${PD_SECRET}\"]", "${PD_SECRET}");
        let s = with_env(&bare, &[("PD_SECRET", "000123456789012345")]);
        assert_eq!(secret(&s, "pd"), "000123456789012345");
    }

    #[test]
    fn environment_overrides_are_typed_except_secrets() {
        let vars = [
            ("AAP_BRIDGE__ADMIN__TOKEN", "000123456789012345"),
            ("AAP_BRIDGE__SERVER__DRAIN_SECS", "0"),
            ("AAP_BRIDGE__DATABASE__CREATE_IF_MISSING", "false"),
        ];
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let env = env_layer(Some(vars.collect())).unwrap();
        assert_eq!(
            env,
            serde_json::json!({"admin": {"token": "000123456789012345"},
                "server": {"drain_secs": 0}, "database": {"create_if_missing": false}})
        );
    }

    #[test]
    fn an_unset_variable_names_the_key() {
        let yaml = "admin:\n  token: \"${AAP_BRIDGE_TEST_UNSET_VARIABLE_9F2}\"\n";
        let err = Settings::from_parts(Some(yaml), None, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: `admin.token`: environment variable \
             `AAP_BRIDGE_TEST_UNSET_VARIABLE_9F2` is not set \
             (use `${AAP_BRIDGE_TEST_UNSET_VARIABLE_9F2:-default}` for a default)"
        );
    }
}
