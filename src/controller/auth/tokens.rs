//! `controller_tokens`: the managed token (`password` mode) or the OAuth2 access token
//! (`oauth2_app` mode), and the lock that makes one replica rotate it. `token` and
//! `refresh_token` are encrypted when `controller.token_key` is set (see `token_crypt`).

use crate::token_crypt::TokenCipher;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Clone)]
pub struct StoredToken {
    /// 0 when the controller gave no id (OAuth2 grants).
    pub token_id: i64,
    pub token: String,
    /// Where it is deleted (tokens endpoint) or revoked (OAuth2 revoke endpoint).
    pub endpoint: String,
    /// OAuth2 grants only.
    pub refresh_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Never prints the token or the refresh token.
impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("token_id", &self.token_id)
            .field("token", &"[redacted]")
            .field("endpoint", &self.endpoint)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A row whose values cannot be decrypted (wrong or missing key): what is still known.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub token_id: i64,
    pub endpoint: String,
    pub reason: String,
}

pub type Read = Result<StoredToken, Unreadable>;

#[derive(sqlx::FromRow)]
struct Row {
    token_id: i64,
    token: String,
    endpoint: String,
    refresh_token: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// The stored token, through the pool or inside the rotation transaction.
pub async fn get<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    key: &str,
    cipher: &TokenCipher,
) -> Result<Option<Read>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT token_id, token, endpoint, refresh_token, expires_at, created_at
         FROM controller_tokens WHERE controller_key = $1",
    )
    .bind(key)
    .fetch_optional(ex)
    .await?;
    Ok(row.map(|r| open(r, key, cipher)))
}

fn open(r: Row, key: &str, cipher: &TokenCipher) -> Read {
    let unreadable = |reason| Unreadable {
        token_id: r.token_id,
        endpoint: r.endpoint.clone(),
        reason,
    };
    let token = cipher.open(key, "token", &r.token).map_err(unreadable)?;
    let refresh_token = match &r.refresh_token {
        Some(v) => Some(cipher.open(key, "refresh_token", v).map_err(unreadable)?),
        None => None,
    };
    Ok(StoredToken {
        token_id: r.token_id,
        token,
        endpoint: r.endpoint,
        refresh_token,
        expires_at: r.expires_at,
        created_at: r.created_at,
    })
}

/// Serializes rotation across replicas until the transaction ends.
pub async fn lock(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aap-bridge:token:' || $1, 0))")
        .bind(key)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn put(
    conn: &mut PgConnection,
    key: &str,
    t: &StoredToken,
    cipher: &TokenCipher,
) -> Result<(), sqlx::Error> {
    let refresh = t
        .refresh_token
        .as_deref()
        .map(|r| cipher.seal(key, "refresh_token", r));
    sqlx::query(
        "INSERT INTO controller_tokens
             (controller_key, token_id, token, endpoint, refresh_token, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (controller_key) DO UPDATE
           SET token_id = EXCLUDED.token_id, token = EXCLUDED.token, endpoint = EXCLUDED.endpoint,
               refresh_token = EXCLUDED.refresh_token, expires_at = EXCLUDED.expires_at,
               created_at = EXCLUDED.created_at",
    )
    .bind(key)
    .bind(t.token_id)
    .bind(cipher.seal(key, "token", &t.token))
    .bind(&t.endpoint)
    .bind(refresh)
    .bind(t.expires_at)
    .bind(t.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_tokens() {
        let t = StoredToken {
            token_id: 7,
            token: "access-secret".into(),
            endpoint: "/api/v2/tokens/".into(),
            refresh_token: Some("refresh-secret".into()),
            expires_at: None,
            created_at: Utc::now(),
        };
        let text = format!("{t:?}");
        assert!(
            !text.contains("secret") && text.contains("[redacted]"),
            "{text}"
        );
    }
}
