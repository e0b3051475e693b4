//! A small HTTP-level sample of hostile deliveries (the property test in src/sources covers the
//! verifiers and normalizers in depth): never a 5xx, always a JSON error.

use crate::support::{error_of, Sender, TestApp};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sqlx::PgPool;

#[sqlx::test]
async fn random_deliveries_never_get_a_5xx(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let mut rng = StdRng::seed_from_u64(10);
    let names = [
        "X-GitHub-Event",
        "X-GitHub-Delivery",
        "X-Webhook-Id",
        "X-Bridge-Timestamp",
        "X-ServiceNow-Delivery",
        "Content-Type",
        "Authorization",
    ];
    for n in 0..60 {
        let sender = Sender::ALL[n % 3];
        let mut body = sender.body(&format!("f-{n}"));
        // Flip some bytes, sometimes truncate; sign the result about half the time.
        for _ in 0..rng.gen_range(0..4) {
            let i = rng.gen_range(0..body.len());
            body[i] = rng.gen();
        }
        if rng.gen_bool(0.2) {
            body.truncate(rng.gen_range(0..body.len()));
        }
        let mut headers = if rng.gen_bool(0.5) {
            sender.signed_headers(sender.new_secret(), &format!("f-{n}"), &body)
        } else {
            sender.unsigned_headers(&format!("f-{n}"))
        };
        let value: String = (0..rng.gen_range(0..20))
            .map(|_| rng.gen_range(' '..='~'))
            .collect();
        headers.push((names[rng.gen_range(0..names.len())].to_string(), value));
        let (status, resp) = app.post(sender.source(), &headers, &body).await;
        assert!(status < 500, "{status} {resp}");
        if status >= 400 {
            assert!(!error_of(&resp).is_empty());
        }
    }
}
