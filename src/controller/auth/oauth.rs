//! `oauth2_app`: password grant with an OAuth2 application, then refresh before expiry.
//!
//! Every grant creates an access token on the controller (AWX: valid ~1000 years, listed under
//! `tokens/`), and nothing removes it but a revoke. So, like the managed token, the current one
//! is kept in Postgres (`controller_tokens`) and reused across restarts and replicas, and the one
//! it replaces is revoked at `/api/o/revoke_token/` (`/o/revoke_token/` on the gateway).
//! Both the access and the refresh token are encrypted at rest when a key is configured.

use super::tokens::{self, StoredToken};
use super::{basic, describe, ApiInfo, AuthState, Credential};
use crate::controller::transport::Transport;
use crate::controller::types::{ControllerError, Flavour};
use crate::token_crypt::TokenCipher;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::PgPool;
use tokio::sync::Mutex;

pub struct OAuthApp {
    key: String,
    username: String,
    password: SecretString,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    pool: Option<PgPool>,
    pub max_age: Duration,
    pub cipher: TokenCipher,
    current: Mutex<Current>,
}

#[derive(Default)]
struct Current {
    token: Option<StoredToken>,
    generation: u64,
}

impl OAuthApp {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn new(
        base: &str,
        username: &str,
        password: SecretString,
        client_id: &str,
        client_secret: SecretString,
        scope: &str,
        pool: Option<PgPool>,
    ) -> Self {
        Self {
            key: format!(
                "oauth2|{}|{client_id}|{username}",
                base.trim_end_matches('/')
            ),
            username: username.into(),
            password,
            client_id: client_id.into(),
            client_secret,
            scope: scope.into(),
            pool,
            max_age: Duration::days(30),
            cipher: TokenCipher::default(),
            current: Mutex::new(Current::default()),
        }
    }

    /// Usable and not due for a refresh: younger than `max_age`, and more than a tenth of its
    /// lifetime (at least a minute) left.
    fn fresh(&self, t: &StoredToken) -> bool {
        Utc::now() - t.created_at < self.max_age && lifetime_left(t)
    }

    pub async fn credential(
        &self,
        t: &Transport,
        api: &ApiInfo,
    ) -> Result<Credential, ControllerError> {
        let mut cur = self.current.lock().await;
        if !cur.token.as_ref().is_some_and(|t| self.fresh(t)) {
            // A restart or another replica may already hold a good token.
            let stored = match &self.pool {
                Some(pool) => tokens::get(pool, &self.key, &self.cipher)
                    .await
                    .map_err(store_err)?,
                None => None,
            };
            match stored {
                Some(Ok(s)) if self.fresh(&s) => adopt(&mut cur, s),
                _ => self.rotate(&mut cur, t, api, None).await?,
            }
        }
        let tok = cur.token.as_ref().expect("a token was just adopted");
        Credential::header(&format!("Bearer {}", tok.token), cur.generation)
    }

    /// A 401 with the credential of `generation`: get another token, unless someone already did.
    pub async fn recover(
        &self,
        t: &Transport,
        api: &ApiInfo,
        generation: u64,
    ) -> Result<(), ControllerError> {
        let mut cur = self.current.lock().await;
        if cur.token.is_some() && cur.generation != generation {
            return Ok(());
        }
        let failed = cur.token.as_ref().map(|t| t.token.clone());
        self.rotate(&mut cur, t, api, failed).await
    }

    /// Replaces the token (refresh grant, else password grant) and revokes the one replaced.
    async fn rotate(
        &self,
        cur: &mut Current,
        t: &Transport,
        api: &ApiInfo,
        failed: Option<String>,
    ) -> Result<(), ControllerError> {
        let Some(pool) = &self.pool else {
            let old = cur.token.take();
            let new = self.obtain(t, api, old.as_ref()).await?;
            adopt(cur, new);
            if let Some(old) = old {
                self.revoke(t, api, &old).await;
            }
            return Ok(());
        };
        let mut tx = pool.begin().await.map_err(store_err)?;
        tokens::lock(&mut tx, &self.key).await.map_err(store_err)?;
        let stored = match tokens::get(&mut *tx, &self.key, &self.cipher)
            .await
            .map_err(store_err)?
        {
            // Another replica replaced it while we waited for the lock: use its token.
            Some(Ok(s)) if self.fresh(&s) && failed.as_deref() != Some(s.token.as_str()) => {
                adopt(cur, s);
                return Ok(());
            }
            Some(Ok(s)) => Some(s),
            Some(Err(u)) => {
                // Nothing to refresh or revoke with: a new password grant replaces it.
                tracing::warn!(error = %u.reason, "the stored OAuth2 token is unreadable; requesting a new one");
                None
            }
            None => None,
        };
        let old = stored.or_else(|| cur.token.clone());
        let new = self.obtain(t, api, old.as_ref()).await?;
        tokens::put(&mut tx, &self.key, &new, &self.cipher)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        tracing::info!(client_id = %self.client_id, "obtained an OAuth2 access token for the controller");
        adopt(cur, new);
        if let Some(old) = old {
            self.revoke(t, api, &old).await;
        }
        Ok(())
    }

    /// A refresh grant with the old token's refresh token, else the password grant.
    async fn obtain(
        &self,
        t: &Transport,
        api: &ApiInfo,
        old: Option<&StoredToken>,
    ) -> Result<StoredToken, ControllerError> {
        if let Some(refresh) = old.and_then(|o| o.refresh_token.as_deref()) {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
            match self.grant(t, api, &form).await {
                Ok(new) => return Ok(new),
                Err(e) => {
                    tracing::info!(error = %e, "refresh token refused; using the password grant")
                }
            }
        }
        let form = [
            ("grant_type", "password"),
            ("username", self.username.as_str()),
            ("password", self.password.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        self.grant(t, api, &form).await
    }

    fn oauth_path(api: &ApiInfo, name: &str) -> String {
        match api.flavour {
            Flavour::Aap => format!("/o/{name}/"),
            Flavour::Awx => format!("/api/o/{name}/"),
        }
    }

    async fn grant(
        &self,
        t: &Transport,
        api: &ApiInfo,
        form: &[(&str, &str)],
    ) -> Result<StoredToken, ControllerError> {
        let path = Self::oauth_path(api, "token");
        let auth = basic(&self.client_id, self.client_secret.expose_secret());
        let rb = t
            .http
            .post(t.url(&path))
            .header("Authorization", auth)
            .form(form);
        let resp = t.execute(rb).await?;
        // AWX has answered both 200 and 201; the gateway 200.
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
        parse_grant(&v, &Self::oauth_path(api, "revoke_token"))
            .ok_or_else(|| ControllerError::Protocol(format!("{path}: no access_token")))
    }

    /// Best effort (RFC 7009): the old access token, then its refresh token. A token we cannot
    /// revoke is logged; it would otherwise stay valid for the controller's full lifetime.
    async fn revoke(&self, t: &Transport, api: &ApiInfo, old: &StoredToken) {
        let path = Self::oauth_path(api, "revoke_token");
        let auth = basic(&self.client_id, self.client_secret.expose_secret());
        let mut revoked = true;
        let tokens = [
            Some((old.token.as_str(), "access_token")),
            old.refresh_token.as_deref().map(|r| (r, "refresh_token")),
        ];
        for (token, hint) in tokens.into_iter().flatten() {
            let form = [("token", token), ("token_type_hint", hint)];
            let rb = t
                .http
                .post(t.url(&path))
                .header("Authorization", &auth)
                .form(&form);
            match t.execute(rb).await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => {
                    revoked = false;
                    tracing::warn!(
                        status = r.status().as_u16(),
                        hint,
                        "could not revoke the replaced OAuth2 token"
                    );
                }
                Err(e) => {
                    revoked = false;
                    tracing::warn!(error = %e, hint, "could not revoke the replaced OAuth2 token");
                }
            }
        }
        if revoked {
            tracing::info!(client_id = %self.client_id, "revoked the replaced OAuth2 access token");
        }
    }

    pub async fn state(&self) -> AuthState {
        let cur = self.current.lock().await;
        AuthState {
            mode: "oauth2_app",
            token_created_at: cur.token.as_ref().map(|t| t.created_at),
            expires_at: cur.token.as_ref().and_then(|t| t.expires_at),
            ..AuthState::default()
        }
    }
}

/// A grant's answer: `expires_in` seconds, or an `expires_at` / `expires` time.
fn parse_grant(v: &Value, revoke_path: &str) -> Option<StoredToken> {
    let access = v.get("access_token").and_then(Value::as_str)?;
    let now = Utc::now();
    let at = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|d| d.with_timezone(&Utc))
    };
    let expires_at = v
        .get("expires_in")
        .and_then(Value::as_i64)
        .and_then(|s| now.checked_add_signed(Duration::try_seconds(s)?))
        .or_else(|| at("expires_at"))
        .or_else(|| at("expires"))
        .or_else(|| Some(now + Duration::seconds(36000)));
    Some(StoredToken {
        token_id: 0,
        token: access.to_string(),
        endpoint: revoke_path.to_string(),
        refresh_token: v
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_string),
        expires_at,
        created_at: now,
    })
}

fn lifetime_left(t: &StoredToken) -> bool {
    t.expires_at.is_none_or(|e| {
        let margin = ((e - t.created_at) / 10).max(Duration::seconds(60));
        e - margin > Utc::now()
    })
}

fn adopt(cur: &mut Current, token: StoredToken) {
    cur.token = Some(token);
    cur.generation += 1;
}

fn store_err(e: sqlx::Error) -> ControllerError {
    ControllerError::Store(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grant_lifetimes() {
        let awx =
            json!({"access_token": "a", "expires_in": 31_536_000_000i64, "refresh_token": "r"});
        let t = parse_grant(&awx, "/api/o/revoke_token/").unwrap();
        assert!(t.expires_at.unwrap() > Utc::now() + Duration::days(365 * 900));
        assert_eq!(t.refresh_token.as_deref(), Some("r"));
        assert!(lifetime_left(&t));
        let at = json!({"access_token": "a", "expires_at": "2030-01-01T00:00:00Z"});
        let t = parse_grant(&at, "/o/revoke_token/").unwrap();
        assert_eq!(
            t.expires_at.unwrap().to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        );
        assert!(parse_grant(&json!({"error": "x"}), "").is_none());
        let mut near = parse_grant(&json!({"access_token": "a", "expires_in": 50}), "").unwrap();
        assert!(!lifetime_left(&near), "less than a minute left");
        near.expires_at = Some(Utc::now() + Duration::seconds(3000));
        near.created_at = Utc::now() - Duration::seconds(600);
        assert!(lifetime_left(&near));
    }
}
