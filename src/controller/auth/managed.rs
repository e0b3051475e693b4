//! `password` mode: the bridge creates its own token with the service user's credentials, keeps it
//! in Postgres so every replica and restart shares one token, re-creates it on 401 or before it
//! expires or reaches `token_max_age_secs`, and deletes the one it replaced. An advisory lock lets
//! one replica rotate at a time. A stored token that cannot be decrypted (wrong key) is replaced.

use super::tokens::{self, StoredToken};
use super::{basic, describe, ApiInfo, AuthState, Credential};
use crate::controller::transport::Transport;
use crate::controller::types::{ControllerError, Flavour};
use crate::token_crypt::TokenCipher;
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::Mutex;

pub struct ManagedToken {
    key: String,
    username: String,
    password: SecretString,
    description: String,
    pool: Option<PgPool>,
    pub renew_before: Duration,
    pub max_age: Duration,
    pub cipher: TokenCipher,
    current: Mutex<Current>,
}

#[derive(Default)]
struct Current {
    token: Option<StoredToken>,
    generation: u64,
}

impl ManagedToken {
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn new(
        base: &str,
        username: &str,
        password: SecretString,
        description: &str,
        pool: Option<PgPool>,
    ) -> Self {
        Self {
            key: format!("{}|{username}", base.trim_end_matches('/')),
            username: username.to_string(),
            password,
            description: description.to_string(),
            pool,
            renew_before: Duration::days(7),
            max_age: Duration::days(30),
            cipher: TokenCipher::default(),
            current: Mutex::new(Current::default()),
        }
    }

    /// Usable and not yet due for renewal. Renewal starts `renew_before` ahead of expiry, but
    /// never before half the token's lifetime, so a short-lived token is not rotated at every call.
    /// Past `max_age` it is replaced even if the controller would accept it for years.
    fn fresh(&self, t: &StoredToken) -> bool {
        let now = Utc::now();
        now - t.created_at < self.max_age
            && t.expires_at.is_none_or(|e| {
                let ahead = self.renew_before.min((e - t.created_at) / 2);
                e - ahead > now
            })
    }

    pub async fn credential(
        &self,
        t: &Transport,
        api: &ApiInfo,
    ) -> Result<Credential, ControllerError> {
        let mut cur = self.current.lock().await;
        let usable = cur.token.as_ref().is_some_and(|tok| self.fresh(tok));
        if !usable {
            // A restart or another replica may already have a good token in the store.
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
        bearer(&cur)
    }

    /// A 401 with the credential of `generation`: rotate, unless someone already did.
    pub async fn recover(
        &self,
        t: &Transport,
        api: &ApiInfo,
        generation: u64,
    ) -> Result<(), ControllerError> {
        let mut cur = self.current.lock().await;
        if cur.generation != generation {
            return Ok(());
        }
        let failed = cur.token.as_ref().map(|t| t.token.clone());
        self.rotate(&mut cur, t, api, failed).await
    }

    async fn rotate(
        &self,
        cur: &mut Current,
        t: &Transport,
        api: &ApiInfo,
        failed: Option<String>,
    ) -> Result<(), ControllerError> {
        let Some(pool) = &self.pool else {
            let old = cur.token.take();
            let new = self.create(t, api).await?;
            adopt(cur, new);
            if let Some(old) = old {
                self.delete(t, old.token_id, &old.endpoint).await;
            }
            return Ok(());
        };
        let mut tx = pool.begin().await.map_err(store_err)?;
        tokens::lock(&mut tx, &self.key).await.map_err(store_err)?;
        let stored = tokens::get(&mut *tx, &self.key, &self.cipher)
            .await
            .map_err(store_err)?;
        let old = match stored {
            // Another replica rotated while we waited for the lock: use its token.
            Some(Ok(s)) if self.fresh(&s) && failed.as_deref() != Some(s.token.as_str()) => {
                adopt(cur, s);
                return Ok(());
            }
            Some(Ok(s)) => Some((s.token_id, s.endpoint)),
            Some(Err(u)) => {
                tracing::warn!(token_id = u.token_id, error = %u.reason, "the stored controller token is unreadable; creating a new one");
                Some((u.token_id, u.endpoint))
            }
            None => None,
        };
        let new = self.create(t, api).await?;
        tokens::put(&mut tx, &self.key, &new, &self.cipher)
            .await
            .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        tracing::info!(token_id = new.token_id, endpoint = %new.endpoint, "created the managed controller token");
        adopt(cur, new);
        if let Some((id, endpoint)) = old {
            self.delete(t, id, &endpoint).await;
        }
        Ok(())
    }

    /// Tries the gateway's tokens endpoint first, then the controller's.
    async fn create(&self, t: &Transport, api: &ApiInfo) -> Result<StoredToken, ControllerError> {
        let mut endpoints = Vec::new();
        if api.flavour == Flavour::Aap {
            endpoints.push("/api/gateway/v1/tokens/".to_string());
        }
        endpoints.push(format!("{}tokens/", api.root));
        let auth = basic(&self.username, self.password.expose_secret());
        let body = json!({"description": self.description, "application": null, "scope": "write"});
        for endpoint in &endpoints {
            let rb = t
                .http
                .post(t.url(endpoint))
                .header("Authorization", &auth)
                .json(&body);
            let resp = t.execute(rb).await?;
            match resp.status().as_u16() {
                200 | 201 => {
                    let v: Value = resp
                        .json()
                        .await
                        .map_err(|e| ControllerError::Protocol(format!("token response: {e}")))?;
                    return parse_created(&v, endpoint);
                }
                404 | 405 => continue,
                401 => {
                    return Err(ControllerError::Unauthorized(format!(
                        "cannot create a token: user `{}` and its password were refused",
                        self.username
                    )))
                }
                403 => {
                    return Err(ControllerError::Forbidden(format!(
                        "user `{}` may not create tokens at {endpoint}",
                        self.username
                    )))
                }
                _ => {
                    return Err(ControllerError::Protocol(format!(
                        "creating a token at {endpoint}: {}",
                        describe(resp).await
                    )))
                }
            }
        }
        Err(ControllerError::NotFound(format!(
            "no tokens endpoint answered (tried {})",
            endpoints.join(", ")
        )))
    }

    /// Best effort: a token we cannot delete is logged, not fatal. A 404 means someone (an
    /// admin, a cleanup) deleted it already: nothing was deleted now, and nothing is wrong.
    async fn delete(&self, t: &Transport, token_id: i64, endpoint: &str) -> Removal {
        let path = format!("{endpoint}{token_id}/");
        let auth = basic(&self.username, self.password.expose_secret());
        let removal = match t
            .execute(t.http.delete(t.url(&path)).header("Authorization", auth))
            .await
        {
            Ok(r) => removal(r.status().as_u16()),
            Err(e) => {
                tracing::warn!(token_id, error = %e, "could not delete the superseded controller token");
                return Removal::Failed;
            }
        };
        match removal {
            Removal::Deleted => {
                tracing::info!(token_id, "deleted the superseded controller token")
            }
            Removal::AlreadyGone => {
                tracing::info!(token_id, "the superseded controller token was already gone")
            }
            Removal::Failed => {
                tracing::warn!(token_id, "could not delete the superseded controller token")
            }
        }
        removal
    }

    pub async fn state(&self) -> AuthState {
        let cur = self.current.lock().await;
        AuthState {
            mode: "password",
            token_id: cur.token.as_ref().map(|t| t.token_id),
            token_created_at: cur.token.as_ref().map(|t| t.created_at),
            expires_at: cur.token.as_ref().and_then(|t| t.expires_at),
        }
    }
}

/// What a DELETE of a superseded token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// 404: deleted before we got to it.
    AlreadyGone,
    Failed,
}

pub fn removal(status: u16) -> Removal {
    match status {
        200..=299 => Removal::Deleted,
        404 => Removal::AlreadyGone,
        _ => Removal::Failed,
    }
}

fn adopt(cur: &mut Current, token: StoredToken) {
    cur.token = Some(token);
    cur.generation += 1;
}

fn bearer(cur: &Current) -> Result<Credential, ControllerError> {
    let tok = cur.token.as_ref().expect("a token was just adopted");
    Credential::header(&format!("Bearer {}", tok.token), cur.generation)
}

fn parse_created(v: &Value, endpoint: &str) -> Result<StoredToken, ControllerError> {
    let token = v.get("token").and_then(Value::as_str).ok_or_else(|| {
        ControllerError::Protocol(
            "the token response has no `token` (shown only at creation)".into(),
        )
    })?;
    let id = v
        .get("id")
        .and_then(Value::as_i64)
        .ok_or_else(|| ControllerError::Protocol("the token response has no `id`".into()))?;
    let expires_at = v
        .get("expires")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&Utc));
    Ok(StoredToken {
        token_id: id,
        token: token.to_string(),
        endpoint: endpoint.to_string(),
        refresh_token: None,
        expires_at,
        created_at: Utc::now(),
    })
}

fn store_err(e: sqlx::Error) -> ControllerError {
    ControllerError::Store(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_404_on_delete_is_already_gone_not_deleted() {
        assert_eq!(removal(204), Removal::Deleted);
        assert_eq!(removal(404), Removal::AlreadyGone);
        assert_eq!(removal(403), Removal::Failed);
        assert_eq!(removal(500), Removal::Failed);
    }
}
