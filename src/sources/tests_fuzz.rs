//! Property tests: arbitrary bytes and headers, signed or not, never panic a verifier or
//! normalizer and never give a 5xx; whatever is accepted has a dedupe key.

use super::{build, Source, Sources};
use crate::config::Settings;
use crate::signature::{hmac_sha256, to_base64, to_hex};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

const YAML: &str = r#"
dev_mode: true
server: {listen: "127.0.0.1:0"}
sources:
  gh: {kind: github, secrets: [k]}
  pd: {kind: pagerduty, secrets: [k]}
  snow: {kind: servicenow, secrets: [k], timestamp_header: X-Ts, delivery_header: X-Delivery}
  snow-signed: {kind: servicenow, secrets: [k], timestamp_header: X-Ts, delivery_header: X-Delivery,
                signature_scheme: "{timestamp}.{delivery}.{body}"}
  snow-plain: {kind: servicenow, secrets: [k]}
  snow-bearer: {kind: servicenow, auth: bearer, bearer_tokens: [t], timestamp_header: X-Ts}
"#;

const NAMES: &[&str] = &[
    "content-type",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-webhook-id",
    "x-ts",
    "x-delivery",
    "authorization",
    "x-hub-signature-256",
    "x-pagerduty-signature",
    "x-servicenow-signature",
];

const KEYS: &[&str] = &[
    "event",
    "id",
    "event_type",
    "data",
    "type",
    "incident",
    "service",
    "summary",
    "sys_id",
    "sys_updated_on",
    "sys_mod_count",
    "table",
    "operation",
    "category",
    "work_notes",
    "value",
    "action",
    "label",
    "name",
    "issue",
    "labels",
    "ref",
    "after",
    "comment",
    "body",
    "context",
];

fn sources() -> Sources {
    build(&Settings::from_parts(Some(YAML), None, false).expect("fuzz settings"))
}

fn json() -> impl Strategy<Value = Value> {
    let text = prop_oneof![
        prop::sample::select(vec!["", "[aap-bridge] x", "incident", "a\u{0}b", "0"])
            .prop_map(String::from),
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        json().prop_map(|v| {
            let form = form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &v.to_string())
                .finish();
            form.into_bytes()
        }),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    let value = prop_oneof![
        prop::sample::select(vec![
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain; charset=x",
            "issues",
            "sha256=00",
            "v1=zz,v1=",
            "Bearer t",
            "1",
            "",
        ])
        .prop_map(|s: &str| s.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec((prop::sample::select(NAMES), value), 0..8)
}

/// Adds a valid signature (and timestamp) for `name`, so the normalizer sees the bytes too.
fn sign(name: &str, h: &mut HeaderMap, body: &[u8]) {
    let ts = chrono::Utc::now().timestamp().to_string();
    let mut set = |k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).unwrap());
    };
    match name {
        "gh" => set(
            "x-hub-signature-256",
            format!("sha256={}", to_hex(&hmac_sha256(b"k", &[body]))),
        ),
        "pd" => set(
            "x-pagerduty-signature",
            format!("v1={}", to_hex(&hmac_sha256(b"k", &[body]))),
        ),
        "snow" => {
            set(
                "x-servicenow-signature",
                to_base64(&hmac_sha256(b"k", &[ts.as_bytes(), b".", body])),
            );
            set("x-ts", ts);
        }
        "snow-signed" => {
            let mac = hmac_sha256(b"k", &[ts.as_bytes(), b".d-1.", body]);
            set("x-servicenow-signature", to_base64(&mac));
            set("x-delivery", "d-1".into());
            set("x-ts", ts);
        }
        "snow-plain" => set(
            "x-servicenow-signature",
            to_hex(&hmac_sha256(b"k", &[body])),
        ),
        _ => {
            set("authorization", "Bearer t".into());
            set("x-ts", ts);
        }
    }
}

fn check(src: &Source, h: &HeaderMap, body: &[u8]) -> Result<(), TestCaseError> {
    for r in [src.accept(h, body), src.normalize_unverified(h, body)] {
        match r {
            Ok(ev) => prop_assert!(!ev.dedupe_key.is_empty(), "{}: empty dedupe key", src.name),
            Err(e) => prop_assert!(
                e.status.is_client_error(),
                "{}: {} {}",
                src.name,
                e.status,
                e.message
            ),
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_deliveries_are_4xx_or_stored(
        which in prop::sample::select(vec!["gh", "pd", "snow", "snow-signed", "snow-plain", "snow-bearer"]),
        pairs in headers(),
        body in body(),
        signed in any::<bool>(),
    ) {
        let sources = sources();
        let src = &sources[which];
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                h.append(HeaderName::from_static(k), v);
            }
        }
        if signed {
            sign(which, &mut h, &body);
        }
        check(src, &h, &body)?;
    }
}
