//! Authentication modes. Each gives a credential to attach to a request and knows how to
//! recover once from a 401.

mod managed;
mod oauth;
mod session;
mod tokens;
mod tower;

use super::transport::Transport;
use super::types::{ControllerError, Flavour};
use crate::config::{AuthSettings, ControllerSettings};
use base64::Engine;
use reqwest::header::HeaderValue;
use reqwest::RequestBuilder;
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::PgPool;

pub use managed::ManagedToken;

/// Where the API lives, known after discovery.
#[derive(Debug, Clone)]
pub struct ApiInfo {
    pub flavour: Flavour,
    pub root: String,
    pub version: Option<String>,
}

/// What to attach to one request.
#[derive(Clone, Default)]
pub struct Credential {
    authorization: Option<HeaderValue>,
    /// Session mode: the CSRF token for unsafe methods.
    csrf: Option<String>,
    /// Session mode: Django checks `Referer` on unsafe requests over HTTPS.
    referer: Option<String>,
    /// Identifies the credential, so a 401 only re-authenticates if nobody did it meanwhile.
    pub generation: u64,
}

impl Credential {
    pub fn header(value: &str, generation: u64) -> Result<Self, ControllerError> {
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| ControllerError::Protocol("credential is not a valid header".into()))?;
        v.set_sensitive(true);
        Ok(Self {
            authorization: Some(v),
            csrf: None,
            referer: None,
            generation,
        })
    }

    pub fn apply(&self, mut rb: RequestBuilder, unsafe_method: bool) -> RequestBuilder {
        if let Some(a) = &self.authorization {
            rb = rb.header(reqwest::header::AUTHORIZATION, a.clone());
        }
        if let (true, Some(csrf)) = (unsafe_method, &self.csrf) {
            rb = rb.header("X-CSRFToken", csrf);
        }
        if let (true, Some(referer)) = (unsafe_method, &self.referer) {
            rb = rb.header(reqwest::header::REFERER, referer);
        }
        rb
    }
}

/// For `aap-bridge controller check`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct AuthState {
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_created_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub enum Auth {
    Static {
        mode: &'static str,
        credential: Credential,
    },
    Managed(ManagedToken),
    Session(session::Session),
    OAuth(oauth::OAuthApp),
    Tower(tower::TowerToken),
}

impl Auth {
    pub fn new(
        s: &AuthSettings,
        base: &str,
        pool: Option<PgPool>,
    ) -> Result<Self, ControllerError> {
        Ok(match s {
            AuthSettings::Token { token } => Auth::Static {
                mode: "token",
                credential: Credential::header(&format!("Bearer {}", token.expose_secret()), 0)?,
            },
            AuthSettings::Basic { username, password } => Auth::Static {
                mode: "basic",
                credential: Credential::header(&basic(username, password.expose_secret()), 0)?,
            },
            AuthSettings::Password {
                username,
                password,
                token_description,
            } => Auth::Managed(ManagedToken::new(
                base,
                username,
                password.clone(),
                token_description,
                pool,
            )),
            AuthSettings::Session { username, password } => {
                Auth::Session(session::Session::new(username, password.clone()))
            }
            AuthSettings::Oauth2App {
                username,
                password,
                client_id,
                client_secret,
                scope,
            } => Auth::OAuth(oauth::OAuthApp::new(
                base,
                username,
                password.clone(),
                client_id,
                client_secret.clone(),
                scope,
                pool,
            )),
            AuthSettings::TowerAuthtoken { username, password } => {
                Auth::Tower(tower::TowerToken::new(username, password.clone()))
            }
        })
    }

    /// Lifetimes and the at-rest cipher of stored tokens (`password` and `oauth2_app`).
    pub fn configure(&mut self, s: &ControllerSettings) -> Result<(), ControllerError> {
        let cipher = s.token_cipher().map_err(ControllerError::Config)?;
        let max_age = i64::try_from(s.token_max_age_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX);
        let stores = matches!(self, Auth::Managed(_) | Auth::OAuth(_));
        if stores && !cipher.is_set() {
            tracing::warn!(
                "controller.token_key is not set: the controller token is stored in plain text"
            );
        }
        match self {
            Auth::Managed(m) => {
                m.renew_before = chrono::Duration::seconds(s.token_renew_before_secs as i64);
                m.max_age = max_age;
                m.cipher = cipher;
            }
            Auth::OAuth(o) => {
                o.max_age = max_age;
                o.cipher = cipher;
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn credential(
        &self,
        t: &Transport,
        api: &ApiInfo,
    ) -> Result<Credential, ControllerError> {
        match self {
            Auth::Static { credential, .. } => Ok(credential.clone()),
            Auth::Managed(m) => m.credential(t, api).await,
            Auth::Session(s) => s.credential(t, api).await,
            Auth::OAuth(o) => o.credential(t, api).await,
            Auth::Tower(tw) => tw.credential(t, api).await,
        }
    }

    /// After a 401 with `failed`: get a fresh credential, once.
    pub async fn recover(
        &self,
        t: &Transport,
        api: &ApiInfo,
        failed: &Credential,
    ) -> Result<(), ControllerError> {
        match self {
            Auth::Static { mode, .. } => Err(ControllerError::Unauthorized(format!(
                "the configured {mode} credentials were rejected; check controller.auth"
            ))),
            Auth::Managed(m) => m.recover(t, api, failed.generation).await,
            Auth::Session(s) => s.recover(t, api, failed.generation).await,
            Auth::OAuth(o) => o.recover(t, api, failed.generation).await,
            Auth::Tower(tw) => tw.recover(t, api, failed.generation).await,
        }
    }

    /// The `controller_tokens` key of a stored token (managed and OAuth2 modes).
    pub fn stored_key(&self) -> Option<&str> {
        match self {
            Auth::Managed(m) => Some(m.key()),
            Auth::OAuth(o) => Some(o.key()),
            Auth::Static { .. } | Auth::Session(_) | Auth::Tower(_) => None,
        }
    }

    pub async fn state(&self) -> AuthState {
        match self {
            Auth::Static { mode, .. } => AuthState {
                mode,
                ..AuthState::default()
            },
            Auth::Managed(m) => m.state().await,
            Auth::Session(_) => AuthState {
                mode: "session",
                ..AuthState::default()
            },
            Auth::OAuth(o) => o.state().await,
            Auth::Tower(tw) => tw.state().await,
        }
    }
}

pub fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The error text of a non-success auth response, without echoing credentials.
pub async fn describe(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("detail")
                .or_else(|| v.get("error_description"))
                .or_else(|| v.get("error"))
                .map(|d| d.to_string())
        })
        .unwrap_or_else(|| super::types::truncate(body.trim(), 200));
    format!("HTTP {status}: {detail}")
}
