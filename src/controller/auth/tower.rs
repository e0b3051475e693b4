//! `tower_authtoken` (Tower ≤ 3.2): `POST /api/v2/authtoken/`, sent as `Authorization: Token …`.

use super::{describe, ApiInfo, AuthState, Credential};
use crate::controller::transport::Transport;
use crate::controller::types::ControllerError;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::Mutex;

struct Held {
    access: SecretString,
    expires: DateTime<Utc>,
    lifetime: Duration,
    generation: u64,
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
