//! The stored controller token at rest: encrypted with `controller.token_key`, readable across a
//! restart, plaintext rows from before still read, a wrong key replaced by a new token (not a
//! loop), and rotation after `token_max_age_secs`.

use crate::support::fake_controller::{FakeController, Flavour};
use crate::support::{controller_settings, SVC_PASSWORD_AUTH};
use aap_bridge::controller::Controller;
use base64::Engine;
use sqlx::PgPool;

const OAUTH: &str = "    mode: oauth2_app\n    username: svc\n    password: svc-pass\n    client_id: bridge-app\n    client_secret: bridge-app-secret\n";

fn key(byte: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([byte; 32])
}

fn bridge(fake: &FakeController, pool: &PgPool, auth: &str, extra: &str) -> Controller {
    Controller::new(
        "default",
        &controller_settings(&fake.url(), auth, extra),
        Some(pool.clone()),
    )
    .unwrap()
}

fn keyed(byte: u8) -> String {
    format!("  token_key: \"{}\"\n", key(byte))
}

async fn stored(pool: &PgPool) -> (i64, String, Option<String>) {
    sqlx::query_as("SELECT token_id, token, refresh_token FROM controller_tokens")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn stored_encrypted_and_read_back_after_a_restart(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    bridge(&fake, &pool, SVC_PASSWORD_AUTH, &keyed(1))
        .me()
        .await
        .unwrap();
    let (id, value, _) = stored(&pool).await;
    let plain = fake.token_value(id).unwrap();
    assert!(value.starts_with("v1:"), "{value}");
    assert!(!value.contains(&plain), "the plaintext is not stored");

    let restarted = bridge(&fake, &pool, SVC_PASSWORD_AUTH, &keyed(1));
    restarted.me().await.unwrap();
    assert_eq!(
        fake.tokens_created(),
        1,
        "the restart decrypts and reuses it"
    );
}

#[sqlx::test]
async fn a_plaintext_row_from_before_the_key_is_still_used(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    bridge(&fake, &pool, SVC_PASSWORD_AUTH, "")
        .me()
        .await
        .unwrap();
    let (id, value, _) = stored(&pool).await;
    assert_eq!(
        Some(value),
        fake.token_value(id),
        "no key: stored as before"
    );

    bridge(&fake, &pool, SVC_PASSWORD_AUTH, &keyed(1))
        .me()
        .await
        .unwrap();
    assert_eq!(fake.tokens_created(), 1);
}

#[sqlx::test]
async fn a_wrong_key_replaces_the_token_once(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    bridge(&fake, &pool, SVC_PASSWORD_AUTH, &keyed(1))
        .me()
        .await
        .unwrap();
    let (old, _, _) = stored(&pool).await;

    let other = bridge(&fake, &pool, SVC_PASSWORD_AUTH, &keyed(2));
    other
        .me()
        .await
        .expect("creates a new token instead of failing");
    other.me().await.unwrap();
    assert_eq!(fake.tokens_created(), 2, "one new token, no loop");
    let (new, _, _) = stored(&pool).await;
    assert_ne!(new, old);
    let live: Vec<i64> = fake.tokens().iter().map(|t| t.0).collect();
    assert_eq!(live, vec![new], "the unreadable one is deleted by id");
}

#[sqlx::test]
async fn rotated_after_max_age_even_if_the_controller_accepts_it(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = bridge(&fake, &pool, SVC_PASSWORD_AUTH, "  token_max_age_secs: 1\n");
    c.me().await.unwrap();
    let (old, _, _) = stored(&pool).await;
    c.me().await.unwrap();
    assert_eq!(fake.tokens_created(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    c.me().await.unwrap();
    let (new, _, _) = stored(&pool).await;
    assert_ne!(new, old);
    assert_eq!(fake.tokens().len(), 1, "the old one is deleted");

    // After a restart, the stored creation time counts.
    sqlx::query("UPDATE controller_tokens SET created_at = now() - interval '31 days'")
        .execute(&pool)
        .await
        .unwrap();
    bridge(&fake, &pool, SVC_PASSWORD_AUTH, "")
        .me()
        .await
        .unwrap();
    assert_eq!(fake.tokens_created(), 3, "default max age: 30 days");
}

#[sqlx::test]
async fn oauth2_access_and_refresh_tokens_are_encrypted(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    bridge(&fake, &pool, OAUTH, &keyed(3)).me().await.unwrap();
    let (_, access, refresh) = stored(&pool).await;
    assert!(access.starts_with("v1:"), "{access}");
    assert!(refresh.unwrap().starts_with("v1:"));

    bridge(&fake, &pool, OAUTH, &keyed(3)).me().await.unwrap();
    assert_eq!(
        fake.requests("POST", "/api/o/token/"),
        1,
        "reused after a restart"
    );

    // A wrong key: a new password grant, once.
    let other = bridge(&fake, &pool, OAUTH, &keyed(4));
    other.me().await.unwrap();
    other.me().await.unwrap();
    assert_eq!(fake.requests("POST", "/api/o/token/"), 2);
}
