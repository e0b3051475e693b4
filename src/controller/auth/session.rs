//! `session` mode: log in like the web UI (CSRF cookie, form POST), keep the session cookie,
//! send `X-CSRFToken` and a same-origin `Referer` (Django requires one over HTTPS) on unsafe
//! calls, and log in again when the session expires.

use super::{describe, ApiInfo, Credential};
use crate::controller::transport::Transport;
use crate::controller::types::{ControllerError, Flavour};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;

pub struct Session {
    username: String,
    password: SecretString,
    /// 0 = not logged in; bumped at every login.
    generation: Mutex<u64>,
}

impl Session {
    pub fn new(username: &str, password: SecretString) -> Self {
        Self {
            username: username.to_string(),
            password,
            generation: Mutex::new(0),
        }
    }

    pub async fn credential(
        &self,
        t: &Transport,
        api: &ApiInfo,
    ) -> Result<Credential, ControllerError> {
        let mut generation = self.generation.lock().await;
        if *generation == 0 {
            self.login(t, api).await?;
            *generation += 1;
        }
        Ok(Credential {
            authorization: None,
            csrf: t.cookie("csrftoken"),
            // Same scheme, host and port as the controller, which is what Django compares.
            referer: Some(format!("{}/", t.base)),
            generation: *generation,
        })
    }

    pub async fn recover(
        &self,
        t: &Transport,
        api: &ApiInfo,
        failed: u64,
    ) -> Result<(), ControllerError> {
        let mut generation = self.generation.lock().await;
        if *generation != failed {
            return Ok(());
        }
        self.login(t, api).await?;
        *generation += 1;
        Ok(())
    }

    async fn login(&self, t: &Transport, api: &ApiInfo) -> Result<(), ControllerError> {
        let path = match api.flavour {
            Flavour::Aap => "/api/gateway/v1/login/",
            Flavour::Awx => "/api/login/",
        };
        let url = t.url(path);
        let page = t
            .execute(t.http.get(&url).header("Accept", "text/html"))
            .await?;
        if !page.status().is_success() {
            return Err(ControllerError::Protocol(format!(
                "login page {path}: {}",
                describe(page).await
            )));
        }
        let csrf = t.cookie("csrftoken").ok_or_else(|| {
            ControllerError::Protocol(format!("login page {path} set no csrftoken cookie"))
        })?;
        let form = [
            ("username", self.username.as_str()),
            ("password", self.password.expose_secret()),
            ("next", api.root.as_str()),
            ("csrfmiddlewaretoken", csrf.as_str()),
        ];
        let resp = t
            .execute(
                t.http
                    .post(&url)
                    .header("X-CSRFToken", &csrf)
                    .header("Referer", &url)
                    .form(&form),
            )
            .await?;
        match resp.status().as_u16() {
            200..=299 | 302 | 303 => {
                tracing::info!(user = %self.username, "logged in to the controller (session)");
                Ok(())
            }
            401 => Err(ControllerError::Unauthorized(format!(
                "session login refused for user `{}`",
                self.username
            ))),
            _ => Err(ControllerError::Protocol(format!(
                "session login at {path}: {}",
                describe(resp).await
            ))),
        }
    }
}
