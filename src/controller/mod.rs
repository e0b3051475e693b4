//! Client for the Ansible controller (AAP 2.5+ gateway or AWX): discovery, authentication,
//! retries, and the typed calls the bridge needs (in `api`).

mod api;
pub mod auth;
mod fleet;
mod health;
mod settings;
mod transport;
pub mod types;
mod unreached;
mod users;

pub use auth::{ApiInfo, AuthState};
pub use fleet::{Fleet, HealthByName, Lane};
pub use health::{ControllerHealth, Health};
pub use settings::JinjaSetting;
pub use types::*;
pub use users::ControllerUser;

use crate::config::{ControllerSettings, FlavourSetting};
use auth::Auth;
use reqwest::{Method, Response};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use transport::Transport;

pub struct Controller {
    /// Its configured name: the `controller` label of its request metrics.
    name: String,
    t: Transport,
    /// For people's console logins (`users`): no cookie jar, never the service's credential.
    login_t: Transport,
    auth: Auth,
    flavour: FlavourSetting,
    api_root: Option<String>,
    link_template: Option<String>,
    api: tokio::sync::OnceCell<ApiInfo>,
    /// Template names resolved to ids, so launches skip the lookup (refreshed on a 404).
    names: std::sync::Mutex<std::collections::HashMap<NameKey, i64>>,
}

type NameKey = (TemplateKind, String, Option<String>);

/// What `aap-bridge controller check` prints.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub url: String,
    pub flavour: Flavour,
    pub api_root: String,
    pub version: Option<String>,
    pub user: Me,
    pub auth: AuthState,
    pub jinja: JinjaSetting,
}

impl Controller {
    /// `name` is the controller's configured name. `pool` holds the managed token (password
    /// mode); without it the token lives in memory only.
    pub fn new(
        name: &str,
        s: &ControllerSettings,
        pool: Option<PgPool>,
    ) -> Result<Self, ControllerError> {
        let session = matches!(s.auth, crate::config::AuthSettings::Session { .. });
        let t = Transport::new(s, session)?;
        let mut auth = Auth::new(&s.auth, &t.base, pool)?;
        auth.configure(s)?;
        Ok(Self {
            name: name.to_string(),
            t,
            login_t: Transport::new(s, false)?,
            auth,
            flavour: s.flavour,
            api_root: s.api_root.clone(),
            link_template: s.job_link_template.clone(),
            api: tokio::sync::OnceCell::new(),
            names: Default::default(),
        })
    }

    pub fn timeout(&self) -> std::time::Duration {
        self.t.timeout
    }

    pub fn base_url(&self) -> &str {
        &self.t.base
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `controller_tokens` row this controller's token lives in (managed token modes).
    pub fn token_row(&self) -> Option<&str> {
        self.auth.stored_key()
    }

    /// The API root and flavour, discovered once (retried later if the controller was down).
    pub async fn api(&self) -> Result<&ApiInfo, ControllerError> {
        self.api.get_or_try_init(|| self.discover()).await
    }

    /// The API root, flavour and version if discovery has run; never calls the controller.
    pub fn discovered(&self) -> Option<&ApiInfo> {
        self.api.get()
    }

    async fn discover(&self) -> Result<ApiInfo, ControllerError> {
        let candidates: Vec<(Flavour, String)> = match (&self.api_root, self.flavour) {
            (Some(root), f) => {
                let flavour = match f {
                    FlavourSetting::Aap => Flavour::Aap,
                    FlavourSetting::Awx => Flavour::Awx,
                    FlavourSetting::Auto if root.contains("/controller/") => Flavour::Aap,
                    FlavourSetting::Auto => Flavour::Awx,
                };
                vec![(flavour, root.clone())]
            }
            (None, FlavourSetting::Aap) => vec![(Flavour::Aap, "/api/controller/v2/".into())],
            (None, FlavourSetting::Awx) => vec![(Flavour::Awx, "/api/v2/".into())],
            (None, FlavourSetting::Auto) => vec![
                (Flavour::Aap, "/api/controller/v2/".into()),
                (Flavour::Awx, "/api/v2/".into()),
            ],
        };
        let mut tried = Vec::new();
        for (flavour, root) in candidates {
            let path = format!("{root}ping/");
            let resp = self.send(Method::GET, &path, None, None).await?;
            let status = resp.status().as_u16();
            if status == 200 {
                let header_version = resp
                    .headers()
                    .get("x-api-product-version")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let version = body
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or(header_version);
                tracing::info!(?flavour, %root, version = version.as_deref().unwrap_or("?"), "controller API found");
                return Ok(ApiInfo {
                    flavour,
                    root,
                    version,
                });
            }
            if status >= 500 {
                // Down or overloaded is not "no API here": launches wait, nobody is refused.
                return Err(ControllerError::Unavailable {
                    status,
                    attempts: 1,
                });
            }
            tried.push(format!("{path} (HTTP {status})"));
        }
        Err(ControllerError::NotFound(format!(
            "no controller API at {}: tried {}; set controller.api_root if it lives elsewhere",
            self.t.base,
            tried.join(", ")
        )))
    }

    /// Everything a launch needs before its POST: discovery and a fresh credential, so the
    /// critical section after the owner check is the POST alone.
    pub async fn prepare(&self) -> Result<(), ControllerError> {
        let api = self.api().await?;
        self.auth.credential(&self.t, api).await.map(|_| ())
    }

    /// Discovery is done, so a launch whose template id is known needs no preparation.
    pub fn is_prepared(&self) -> bool {
        self.api.initialized()
    }

    /// A cheap unauthenticated look: does the controller answer its ping?
    pub async fn probe(&self) -> Result<(), ControllerError> {
        let api = self.api().await?;
        let resp = self
            .send(Method::GET, &format!("{}ping/", api.root), None, None)
            .await?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            s if s >= 500 => Err(ControllerError::Unavailable {
                status: s,
                attempts: 1,
            }),
            s => Err(ControllerError::Protocol(format!("ping answered HTTP {s}"))),
        }
    }

    /// A template's id by name, from the cache or one lookup.
    pub async fn template_id_by_name(
        &self,
        kind: TemplateKind,
        name: &str,
        organization: Option<&str>,
    ) -> Result<i64, ControllerError> {
        let key = (kind, name.to_string(), organization.map(str::to_string));
        if let Some(id) = self.names_cache().get(&key) {
            return Ok(*id);
        }
        let t = self.template_by_name(kind, name, organization).await?;
        self.names_cache().insert(key, t.id);
        Ok(t.id)
    }

    /// Drops a cached name whose id the controller no longer knows.
    pub fn forget_template_name(&self, kind: TemplateKind, name: &str, organization: Option<&str>) {
        let key = (kind, name.to_string(), organization.map(str::to_string));
        self.names_cache().remove(&key);
    }

    fn names_cache(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<NameKey, i64>> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An authenticated call, with retries where they cannot do harm.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ControllerError> {
        let api = self.api().await?;
        self.send(method, path, body, Some(api)).await
    }

    /// Retries connection failures (nothing was sent) for every method; no-answer and 502/503/504
    /// only for idempotent methods. A 401 re-authenticates once and repeats the call: the
    /// controller did nothing with a request it could not authenticate, so even a launch is safe.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        api: Option<&ApiInfo>,
    ) -> Result<Response, ControllerError> {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::DELETE | Method::PUT
        );
        let unsafe_method = !matches!(method, Method::GET | Method::HEAD);
        let mut attempt = 0;
        let mut recovered = false;
        loop {
            attempt += 1;
            let cred = match api {
                Some(api) => Some(self.auth.credential(&self.t, api).await?),
                None => None,
            };
            let mut rb = self.t.http.request(method.clone(), self.t.url(path));
            if let Some(c) = &cred {
                rb = c.apply(rb, unsafe_method);
            }
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let started = std::time::Instant::now();
            let result = self.t.execute(rb).await;
            let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
            metrics::histogram!("aap_bridge_controller_request_duration_seconds",
                "controller" => self.name.clone())
            .record(started.elapsed().as_secs_f64());
            let outcome = if result.is_err() || status >= 500 {
                "error"
            } else {
                "ok"
            };
            metrics::counter!("aap_bridge_controller_requests_total",
                "controller" => self.name.clone(), "outcome" => outcome)
            .increment(1);
            if status == 401 {
                if let (Some(api), Some(cred), false) = (api, &cred, recovered) {
                    recovered = true;
                    self.auth.recover(&self.t, api, cred).await?;
                    continue;
                }
                return Err(ControllerError::Unauthorized(format!(
                    "{method} {path} was refused after re-authenticating"
                )));
            }
            let retryable = match &result {
                Err(ControllerError::Connect(_)) => true,
                Err(ControllerError::NoAnswer(_)) => idempotent,
                Ok(_) => idempotent && matches!(status, 502..=504),
                Err(_) => false,
            };
            if retryable && attempt < self.t.max_attempts {
                let delay = self.t.backoff.delay(attempt);
                tracing::debug!(%method, path, attempt, ?delay, "retrying controller call");
                tokio::time::sleep(delay).await;
                continue;
            }
            return match result {
                Ok(resp) if matches!(status, 502..=504) => {
                    let headers = resp.headers().clone();
                    let body = resp.text().await.unwrap_or_default();
                    match unreached::never_reached(status, &headers, &body) {
                        Some(why) => Err(ControllerError::NotReached(why)),
                        None => Err(ControllerError::Unavailable {
                            status,
                            attempts: attempt,
                        }),
                    }
                }
                other => other,
            };
        }
    }

    /// The web UI page of a job, for tickets.
    pub fn job_link(&self, api: &ApiInfo, kind: TemplateKind, id: i64) -> String {
        let ui_kind = match kind {
            TemplateKind::Job => "playbook",
            TemplateKind::Workflow => "workflow",
        };
        if let Some(tpl) = &self.link_template {
            return tpl
                .replace("{base}", &self.t.base)
                .replace("{kind}", ui_kind)
                .replace("{id}", &id.to_string());
        }
        match api.flavour {
            Flavour::Aap => format!("{}/execution/jobs/{ui_kind}/{id}/output", self.t.base),
            Flavour::Awx => format!("{}/#/jobs/{ui_kind}/{id}", self.t.base),
        }
    }

    pub async fn auth_state(&self) -> AuthState {
        self.auth.state().await
    }

    /// Everything an operator checks first: reachability, flavour, version, who we are.
    pub async fn check(&self) -> Result<CheckReport, ControllerError> {
        let api = self.api().await?.clone();
        let user = self.me().await?;
        Ok(CheckReport {
            url: self.t.base.clone(),
            flavour: api.flavour,
            api_root: api.root.clone(),
            version: api.version.clone(),
            user,
            auth: self.auth_state().await,
            jinja: self.allow_jinja().await?,
        })
    }
}

/// Reads a JSON answer; non-2xx become the error that names the problem. Error bodies are kept
/// (a JSON `detail`, else the raw text, shortened and with credentials masked), since text
/// endpoints such as stdout answer errors in plain text.
pub(crate) async fn read_json(resp: Response, what: &str) -> Result<Value, ControllerError> {
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .map_err(|e| ControllerError::NoAnswer(e.without_url().to_string()))?;
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let detail = || match parsed.as_ref().and_then(|v| v.get("detail")) {
        Some(Value::String(d)) => body_excerpt(d, 300),
        _ if text.trim().is_empty() => "empty body".to_string(),
        _ => body_excerpt(&text, 300),
    };
    match status {
        200..=299 => Ok(parsed.unwrap_or(Value::String(text))),
        400 => Err(classify_400(&parsed.unwrap_or(Value::String(text)))),
        401 => Err(ControllerError::Unauthorized(format!(
            "{what}: {}",
            detail()
        ))),
        403 => Err(ControllerError::Forbidden(format!("{what}: {}", detail()))),
        404 => Err(ControllerError::NotFound(format!(
            "{what} (HTTP 404: {})",
            detail()
        ))),
        _ => Err(ControllerError::Protocol(format!(
            "{what}: HTTP {status}: {}",
            detail()
        ))),
    }
}
