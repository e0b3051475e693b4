//! `controller:` settings. Absent means dry-run: the bridge records what it would launch.

use super::{ConfigError, Settings, DEFAULT_CONTROLLER};
use crate::token_crypt::TokenCipher;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSettings {
    /// Base URL of the platform gateway or AWX, e.g. `https://aap.example.com`.
    pub url: String,
    /// `auto` probes `/api/controller/v2/` (AAP 2.5+ gateway), then `/api/v2/` (AWX, Tower, AAP ≤ 2.4).
    #[serde(default)]
    pub flavour: FlavourSetting,
    /// Overrides discovery, e.g. `/api/controller/v2/`.
    pub api_root: Option<String>,
    pub auth: AuthSettings,
    /// PEM text of extra CA certificates to trust; write `ca_file: /path` to read it from a file.
    pub ca: Option<String>,
    /// Turns TLS verification off. Logged as a warning at start-up; never for production.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Allows an `http://` url (credentials in clear text); for local tests only.
    #[serde(default)]
    pub allow_insecure_http: bool,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default)]
    pub retry: RetrySettings,
    /// Job link shown in tickets; `{base}`, `{kind}` (`playbook`/`workflow`) and `{id}` are replaced.
    pub job_link_template: Option<String>,
    /// Managed tokens are re-created this long before they expire.
    #[serde(default = "default_renew_before")]
    pub token_renew_before_secs: u64,
    /// Managed and OAuth2 tokens are replaced once this old, whatever their expiry.
    #[serde(default = "default_token_max_age")]
    pub token_max_age_secs: u64,
    /// Record what would be launched on this controller, and send it nothing (not even a
    /// login): a new rule can be tried against production mappings without launching.
    #[serde(default)]
    pub dry_run: bool,
    /// Base64 of 32 bytes: encrypts the stored token (`token_key_file: /path` reads it from a
    /// file). Without it the token is stored in plain text, with a warning at start-up.
    pub token_key: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlavourSetting {
    #[default]
    Auto,
    Aap,
    Awx,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSettings {
    /// A personal access / OAuth2 token created by someone else, sent as Bearer.
    Token { token: SecretString },
    /// A service user: the bridge creates, stores, rotates and deletes its own token.
    Password {
        username: String,
        password: SecretString,
        #[serde(default = "default_token_description")]
        token_description: String,
    },
    /// Session login with CSRF, like the web UI.
    Session {
        username: String,
        password: SecretString,
    },
    /// HTTP basic auth on every call (if the platform allows it).
    Basic {
        username: String,
        password: SecretString,
    },
    /// An OAuth2 application (client id/secret) with the service user: password grant + refresh.
    Oauth2App {
        username: String,
        password: SecretString,
        client_id: String,
        client_secret: SecretString,
        #[serde(default = "default_scope")]
        scope: String,
    },
    /// Ansible Tower ≤ 3.2: `POST /api/v2/authtoken/`, sent as `Authorization: Token …`.
    TowerAuthtoken {
        username: String,
        password: SecretString,
    },
}

impl AuthSettings {
    pub fn mode(&self) -> &'static str {
        match self {
            AuthSettings::Token { .. } => "token",
            AuthSettings::Password { .. } => "password",
            AuthSettings::Session { .. } => "session",
            AuthSettings::Basic { .. } => "basic",
            AuthSettings::Oauth2App { .. } => "oauth2_app",
            AuthSettings::TowerAuthtoken { .. } => "tower_authtoken",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySettings {
    /// Attempts for idempotent calls on connection errors and 502/503/504.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay_ms: 200,
            max_delay_ms: 5000,
        }
    }
}

fn default_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_renew_before() -> u64 {
    7 * 24 * 3600
}
fn default_token_max_age() -> u64 {
    30 * 24 * 3600
}
fn default_token_description() -> String {
    "aap-bridge managed token".into()
}
fn default_scope() -> String {
    "write".into()
}

impl ControllerSettings {
    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("controller.url `{}` is not a URL: {e}", self.url))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_insecure_http => {}
            "http" => {
                return Err(format!(
                    "controller.url `{}` is http://: credentials would travel in clear text; \
                     use https:// (or set controller.allow_insecure_http: true for a local test)",
                    self.url
                ))
            }
            _ => return Err("controller.url must be https://".into()),
        }
        if self.token_max_age_secs == 0 {
            return Err("controller.token_max_age_secs must be at least 1".into());
        }
        self.token_cipher()?;
        if let Some(root) = &self.api_root {
            if !root.starts_with('/') || !root.ends_with('/') {
                return Err("controller.api_root must start and end with `/`".into());
            }
        }
        if self.retry.max_attempts == 0 {
            return Err("controller.retry.max_attempts must be at least 1".into());
        }
        Ok(())
    }

    /// The cipher for `controller_tokens` (none without `token_key`).
    pub fn token_cipher(&self) -> Result<TokenCipher, String> {
        match &self.token_key {
            Some(k) => TokenCipher::from_base64(k.expose_secret()),
            None => Ok(TokenCipher::default()),
        }
    }
}

/// The named controllers (`controllers:`, with `controller:` as `default`).
impl Settings {
    /// Every controller by name: `controller:` is `default`.
    pub fn controllers(&self) -> BTreeMap<&str, &ControllerSettings> {
        let named = self.controllers.iter().map(|(n, c)| (n.as_str(), c));
        self.controller
            .iter()
            .map(|c| (DEFAULT_CONTROLLER, c))
            .chain(named)
            .collect()
    }

    /// The controller named `default` (`controller:`, or `controllers.default`): the one this
    /// build launches on. None: dry-run.
    pub fn default_controller(&self) -> Option<&ControllerSettings> {
        self.controller
            .as_ref()
            .or_else(|| self.controllers.get(DEFAULT_CONTROLLER))
    }

    /// The controller a source's rules launch on unless a rule names another.
    pub fn source_controller(&self, source: &str) -> &str {
        self.sources
            .get(source)
            .and_then(|s| s.controller.as_deref())
            .unwrap_or(DEFAULT_CONTROLLER)
    }

    pub(super) fn validate_controllers(&self) -> Result<(), ConfigError> {
        if self.controller.is_some() && self.controllers.contains_key(DEFAULT_CONTROLLER) {
            return Err(ConfigError(
                "both `controller:` and `controllers.default` are set: `controller:` is the \
                 controller named `default`; keep one"
                    .into(),
            ));
        }
        for (name, c) in self.controllers() {
            let plain = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !plain {
                return Err(ConfigError(format!(
                    "controllers.{name}: controller names use lowercase letters, digits, `-` and `_`"
                )));
            }
            c.validate().map_err(|e| match name {
                DEFAULT_CONTROLLER if self.controller.is_some() => ConfigError(e),
                _ => ConfigError(format!("controllers.{name}: {e}")),
            })?;
        }
        let named = self.controllers();
        for (name, source) in &self.sources {
            // Without a `default`, a source that names none would plan launches no
            // controller serves.
            if source.controller.is_none()
                && !named.is_empty()
                && !named.contains_key(DEFAULT_CONTROLLER)
            {
                return Err(ConfigError(format!(
                    "sources.{name}.controller: name the controller this source's rules launch \
                     on (no controller is named `default`; {})",
                    self.controller_names()
                )));
            }
            if let Some(c) = &source.controller {
                if !named.contains_key(c.as_str()) {
                    return Err(ConfigError(format!(
                        "sources.{name}.controller: no controller is named `{c}` ({})",
                        self.controller_names()
                    )));
                }
            }
        }
        Ok(())
    }

    /// The controllers marked `dry_run: true`: their launches are recorded, never sent.
    pub fn dry_run_controllers(&self) -> std::collections::BTreeSet<String> {
        let all = self.controllers().into_iter();
        all.filter(|(_, c)| c.dry_run)
            .map(|(n, _)| n.to_string())
            .collect()
    }

    /// "configured: a, b" or "none is configured", for errors.
    pub fn controller_names(&self) -> String {
        let names: Vec<&str> = self.controllers().into_keys().collect();
        match names.is_empty() {
            true => "none is configured: the bridge runs dry".into(),
            false => format!("configured: {}", names.join(", ")),
        }
    }
}
