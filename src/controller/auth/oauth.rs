//! `oauth2_app` (password grant, then refresh before expiry) and `tower_authtoken` (Tower ≤ 3.2).

use super::{basic, describe, ApiInfo, AuthState, Credential};
use crate::controller::transport::Transport;
use crate::controller::types::{ControllerError, Flavour};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::Mutex;

struct Held {
    access: SecretString,
    refresh: Option<SecretString>,
    expires: DateTime<Utc>,
    lifetime: Duration,
    generation: u64,
}

pub struct OAuthApp {
    username: String,
    password: SecretString,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    held: Mutex<Option<Held>>,
}

impl OAuthApp {
    pub fn new(
        username: &str,
        password: SecretString,
        client_id: &str,
        client_secret: SecretString,
        scope: &str,
    ) -> Self {
        Self {
            username: username.into(),
            password,
            client_id: client_id.into(),
            client_secret,
            scope: scope.into(),
            held: Mutex::new(None),
        }
    }

    pub async fn credential(
        &self,
        t: &Transport,
        api: &ApiInfo,
    ) -> Result<Credential, ControllerError> {
        let mut held = self.held.lock().await;
        // Refresh when less than a tenth of the lifetime (at least a minute) is left.
        let stale = held
            .as_ref()
            .is_none_or(|h| h.expires - (h.lifetime / 10).max(Duration::seconds(60)) <= Utc::now());
        if stale {
            self.renew(&mut held, t, api).await?;
        }
        let h = held.as_ref().expect("renewed above");
        Credential::header(
            &format!("Bearer {}", h.access.expose_secret()),
            h.generation,
        )
    }

    pub async fn recover(
        &self,
        t: &Transport,
        api: &ApiInfo,
        failed: u64,
    ) -> Result<(), ControllerError> {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.generation != failed) {
            return Ok(());
        }
        self.renew(&mut held, t, api).await
    }

    async fn renew(
        &self,
        held: &mut Option<Held>,
        t: &Transport,
        api: &ApiInfo,
    ) -> Result<(), ControllerError> {
        let generation = held.as_ref().map_or(0, |h| h.generation) + 1;
        if let Some(refresh) = held.as_ref().and_then(|h| h.refresh.clone()) {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.expose_secret()),
            ];
            if let Ok(h) = self.grant(t, api, &form, generation).await {
                *held = Some(h);
                return Ok(());
            }
            tracing::info!("refresh token refused; using the password grant");
        }
        let form = [
            ("grant_type", "password"),
            ("username", self.username.as_str()),
            ("password", self.password.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        *held = Some(self.grant(t, api, &form, generation).await?);
        Ok(())
    }

    async fn grant(
        &self,
        t: &Transport,
        api: &ApiInfo,
        form: &[(&str, &str)],
        generation: u64,
    ) -> Result<Held, ControllerError> {
        let path = match api.flavour {
            Flavour::Aap => "/o/token/",
            Flavour::Awx => "/api/o/token/",
        };
        let auth = basic(&self.client_id, self.client_secret.expose_secret());
        let resp = t
            .execute(
                t.http
                    .post(t.url(path))
                    .header("Authorization", auth)
                    .form(form),
            )
            .await?;
        // AWX answers 201, the gateway 200.
        match resp.status().as_u16() {
            200 | 201 => {}
            400 | 401 => {
                return Err(ControllerError::Unauthorized(format!(
                    "OAuth2 token request for application `{}` refused: {}",
                    self.client_id,
                    describe(resp).await
                )))
            }
            _ => {
                return Err(ControllerError::Protocol(format!(
                    "{path}: {}",
                    describe(resp).await
                )))
            }
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ControllerError::Protocol(format!("{path}: {e}")))?;
        let access = v
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ControllerError::Protocol(format!("{path}: no access_token")))?;
        let lifetime =
            Duration::seconds(v.get("expires_in").and_then(Value::as_i64).unwrap_or(36000));
        Ok(Held {
            access: access.to_string().into(),
            refresh: v
                .get("refresh_token")
                .and_then(Value::as_str)
                .map(|s| SecretString::from(s.to_string())),
            expires: Utc::now() + lifetime,
            lifetime,
            generation,
        })
    }

    pub async fn state(&self) -> AuthState {
        AuthState {
            mode: "oauth2_app",
            expires_at: self.held.lock().await.as_ref().map(|h| h.expires),
            ..AuthState::default()
        }
    }
}

/// Tower ≤ 3.2 auth tokens: valid for 30 minutes after their last use.
pub struct TowerToken {
    username: String,
    password: SecretString,
    held: Mutex<Option<Held>>,
}

impl TowerToken {
    pub fn new(username: &str, password: SecretString) -> Self {
        Self {
            username: username.into(),
            password,
            held: Mutex::new(None),
        }
    }

    pub async fn credential(
        &self,
        t: &Transport,
        _api: &ApiInfo,
    ) -> Result<Credential, ControllerError> {
        let mut held = self.held.lock().await;
        if held
            .as_ref()
            .is_none_or(|h| h.expires - Duration::seconds(60) <= Utc::now())
        {
            let generation = held.as_ref().map_or(0, |h| h.generation) + 1;
            *held = Some(self.login(t, generation).await?);
        }
        let h = held.as_mut().expect("logged in above");
        // Each use slides the expiry forward.
        h.expires = Utc::now() + h.lifetime;
        Credential::header(&format!("Token {}", h.access.expose_secret()), h.generation)
    }

    pub async fn recover(
        &self,
        t: &Transport,
        _api: &ApiInfo,
        failed: u64,
    ) -> Result<(), ControllerError> {
        let mut held = self.held.lock().await;
        if held.as_ref().is_some_and(|h| h.generation != failed) {
            return Ok(());
        }
        let generation = held.as_ref().map_or(0, |h| h.generation) + 1;
        *held = Some(self.login(t, generation).await?);
        Ok(())
    }

    async fn login(&self, t: &Transport, generation: u64) -> Result<Held, ControllerError> {
        let body = json!({"username": self.username, "password": self.password.expose_secret()});
        let resp = t
            .execute(t.http.post(t.url("/api/v2/authtoken/")).json(&body))
            .await?;
        match resp.status().as_u16() {
            200 | 201 => {}
            400 | 401 => {
                return Err(ControllerError::Unauthorized(format!(
                    "authtoken login refused for user `{}`",
                    self.username
                )))
            }
            _ => {
                return Err(ControllerError::Protocol(format!(
                    "authtoken: {}",
                    describe(resp).await
                )))
            }
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| ControllerError::Protocol(format!("authtoken: {e}")))?;
        let key = v
            .get("token")
            .and_then(Value::as_str)
            .ok_or_else(|| ControllerError::Protocol("authtoken: no token".into()))?;
        let expires = v
            .get("expires")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|| Utc::now() + Duration::seconds(1800));
        Ok(Held {
            access: key.to_string().into(),
            refresh: None,
            lifetime: (expires - Utc::now()).max(Duration::seconds(120)),
            expires,
            generation,
        })
    }

    pub async fn state(&self) -> AuthState {
        AuthState {
            mode: "tower_authtoken",
            expires_at: self.held.lock().await.as_ref().map(|h| h.expires),
            ..AuthState::default()
        }
    }
}
