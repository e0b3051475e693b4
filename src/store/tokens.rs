//! `controller_tokens`: the managed token (`password` mode) or the OAuth2 access token
//! (`oauth2_app` mode), and the lock that makes one replica rotate it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
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

/// The stored token, through the pool or inside the rotation transaction.
pub async fn get<'e, E: sqlx::PgExecutor<'e>>(
    ex: E,
    key: &str,
) -> Result<Option<StoredToken>, sqlx::Error> {
    sqlx::query_as(
        "SELECT token_id, token, endpoint, refresh_token, expires_at, created_at
         FROM controller_tokens WHERE controller_key = $1",
    )
    .bind(key)
    .fetch_optional(ex)
    .await
}

/// Serializes rotation across replicas until the transaction ends.
pub async fn lock(conn: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('aap-bridge:token:' || $1, 0))")
        .bind(key)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn put(conn: &mut PgConnection, key: &str, t: &StoredToken) -> Result<(), sqlx::Error> {
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
    .bind(&t.token)
    .bind(&t.endpoint)
    .bind(&t.refresh_token)
    .bind(t.expires_at)
    .bind(t.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}
