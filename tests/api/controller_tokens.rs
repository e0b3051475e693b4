//! The managed token (password mode): created once, shared, reused, re-created when revoked or
//! about to expire, the old one deleted; one token even when two bridges start together.

use crate::support::fake_controller::{FakeController, Flavour};
use crate::support::{controller_settings, SVC_PASSWORD_AUTH};
use aap_bridge::controller::Controller;
use sqlx::PgPool;

fn bridge(fake: &FakeController, pool: &PgPool) -> Controller {
    let s = controller_settings(&fake.url(), SVC_PASSWORD_AUTH, "");
    Controller::new("default", &s, Some(pool.clone())).unwrap()
}

async fn stored_token_id(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT token_id FROM controller_tokens")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn created_once_then_reused_after_restart(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let first = bridge(&fake, &pool);
    assert_eq!(first.me().await.unwrap().username, "svc");
    first.me().await.unwrap();
    assert_eq!(fake.tokens_created(), 1);
    let id = stored_token_id(&pool).await;
    assert_eq!(fake.tokens()[0].0, id);
    assert_eq!(fake.tokens()[0].2, "aap-bridge managed token");
    drop(first);

    // A restart (a new client on the same database) reuses the stored token.
    let second = bridge(&fake, &pool);
    second.me().await.unwrap();
    assert_eq!(fake.tokens_created(), 1, "restart must not create a token");
    assert_eq!(second.auth_state().await.token_id, Some(id));
}

#[sqlx::test]
async fn revoked_token_is_recreated_and_old_one_deleted(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let c = bridge(&fake, &pool);
    c.me().await.unwrap();
    let old = stored_token_id(&pool).await;

    fake.revoke_token(old);
    c.me()
        .await
        .expect("recovers from the 401 by creating a new token");
    let new = stored_token_id(&pool).await;
    assert_ne!(new, old);
    assert_eq!(fake.tokens_created(), 2);
    let live: Vec<i64> = fake.tokens().iter().map(|t| t.0).collect();
    assert_eq!(live, vec![new]);

    // Another replica still holding the revoked token adopts the new one instead of creating a third.
    let other = bridge(&fake, &pool);
    other.me().await.unwrap();
    assert_eq!(fake.tokens_created(), 2);
}

#[sqlx::test]
async fn token_near_expiry_is_replaced_and_deleted(pool: PgPool) {
    let fake = FakeController::start(Flavour::Aap).await;
    let c = bridge(&fake, &pool);
    c.me().await.unwrap();
    let old = stored_token_id(&pool).await;
    // Created at the gateway's endpoint on AAP.
    assert_eq!(fake.requests("POST", "/api/gateway/v1/tokens/"), 1);

    sqlx::query("UPDATE controller_tokens SET expires_at = now() + interval '1 hour', created_at = now() - interval '300 days'")
        .execute(&pool)
        .await
        .unwrap();
    let restarted = bridge(&fake, &pool);
    restarted.me().await.unwrap();
    let new = stored_token_id(&pool).await;
    assert_ne!(new, old, "a token within renew_before of expiry is rotated");
    let live: Vec<i64> = fake.tokens().iter().map(|t| t.0).collect();
    assert_eq!(live, vec![new], "the superseded token is deleted");
}

#[sqlx::test]
async fn two_bridges_starting_at_once_create_one_token(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let (a, b) = (bridge(&fake, &pool), bridge(&fake, &pool));
    let (ra, rb) = tokio::join!(a.me(), b.me());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(fake.tokens_created(), 1);
    assert_eq!(a.auth_state().await.token_id, b.auth_state().await.token_id);
}

#[sqlx::test]
async fn wrong_service_password_is_a_clear_error(pool: PgPool) {
    let fake = FakeController::start(Flavour::Awx).await;
    let auth = "    mode: password\n    username: svc\n    password: wrong\n";
    let c = Controller::new(
        "default",
        &controller_settings(&fake.url(), auth, ""),
        Some(pool),
    )
    .unwrap();
    let err = c.me().await.unwrap_err().to_string();
    assert!(err.contains("svc") && err.contains("refused"), "{err}");
    assert_eq!(fake.tokens_created(), 0);
}
