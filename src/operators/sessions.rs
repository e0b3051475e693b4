//! Console sessions, kept in the database so that logging out ends a session on every replica.
//! The cookie carries 32 random bytes; the table holds only their SHA-256.

use crate::domain::Role;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;

/// A live session: who, what they may do, and the CSRF token their forms must carry.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
}

impl Session {
    pub fn csrf_ok(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    pub fn can_act(&self) -> bool {
        self.role == Role::Operator
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn hash(cookie: &str) -> Vec<u8> {
    Sha256::digest(cookie.as_bytes()).to_vec()
}

/// Starts a session; returns the cookie value and the session.
pub async fn start(
    pool: &PgPool,
    user: &str,
    role: Role,
    client: Option<&str>,
    ttl: Duration,
) -> Result<(String, Session), sqlx::Error> {
    let cookie = random_hex();
    let csrf = random_hex();
    sqlx::query(
        "INSERT INTO console_sessions (id_hash, username, role, csrf, client, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(hash(&cookie))
    .bind(user)
    .bind(role)
    .bind(&csrf)
    .bind(client)
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok((
        cookie,
        Session {
            user: user.to_string(),
            role,
            csrf,
        },
    ))
}

/// The live session of a cookie value: not ended, not expired.
pub async fn find(pool: &PgPool, cookie: &str) -> Result<Option<Session>, sqlx::Error> {
    if cookie.len() != 64 {
        return Ok(None);
    }
    let row: Option<(String, Role, String)> = sqlx::query_as(
        "SELECT username, role, csrf FROM console_sessions
         WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > now()",
    )
    .bind(hash(cookie))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(user, role, csrf)| Session { user, role, csrf }))
}

/// Ends the session; the cookie is worthless afterwards, on every replica.
pub async fn end(pool: &PgPool, cookie: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE console_sessions SET ended_at = now() WHERE id_hash = $1 AND ended_at IS NULL",
    )
    .bind(hash(cookie))
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes sessions that ended or expired a day ago (retention's pass).
pub async fn prune(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM console_sessions
         WHERE coalesce(ended_at, expires_at) < now() - interval '1 day'",
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
