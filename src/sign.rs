//! Signing a delivery the way each sender signs it, for `aap-bridge send` and the tests. The
//! receivers in `sources` verify what this produces; the MAC itself is `signature::hmac_sha256`.

use crate::config::{SignatureScheme, SourceAuth, SourceKind, SourceSettings};
use crate::signature::{hmac_sha256, to_base64, to_hex};
use secrecy::ExposeSecret;

/// GitHub's `X-Hub-Signature-256` value: `sha256=<hex>` of the raw body.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        to_hex(&hmac_sha256(secret.as_bytes(), &[body]))
    )
}

/// PagerDuty v3's `X-PagerDuty-Signature` value: `v1=<hex>` of the raw body.
pub fn pagerduty_signature(secret: &str, body: &[u8]) -> String {
    format!("v1={}", to_hex(&hmac_sha256(secret.as_bytes(), &[body])))
}

/// ServiceNow's base64 HMAC-SHA256 over what `scheme` covers (`{body}`, `{timestamp}.{body}` or
/// `{timestamp}.{delivery}.{body}`), as `GlideCertificateEncryption.generateMac` gives it.
pub fn servicenow_signature(
    secret: &str,
    scheme: SignatureScheme,
    timestamp: &str,
    delivery: &str,
    body: &[u8],
) -> String {
    let key = secret.as_bytes();
    let mac = match scheme {
        SignatureScheme::Body => hmac_sha256(key, &[body]),
        SignatureScheme::TimestampBody => hmac_sha256(key, &[timestamp.as_bytes(), b".", body]),
        SignatureScheme::TimestampDeliveryBody => hmac_sha256(
            key,
            &[timestamp.as_bytes(), b".", delivery.as_bytes(), b".", body],
        ),
    };
    to_base64(&mac)
}

/// What a sender puts around the signature.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// GitHub's `X-GitHub-Event` (`issues`, `push`, …).
    pub github_event: String,
    /// A unique delivery id (`X-GitHub-Delivery`, `X-Webhook-Id`, the ServiceNow delivery
    /// header). It must not contain `.` when ServiceNow signs it.
    pub delivery: String,
    /// Unix seconds, for ServiceNow timestamp headers.
    pub timestamp: i64,
}

impl Envelope {
    /// A fresh delivery id and the current time.
    pub fn now(github_event: &str) -> Self {
        Self {
            github_event: github_event.to_string(),
            delivery: uuid::Uuid::new_v4().to_string(),
            timestamp: chrono::Utc::now().timestamp(),
        }
    }
}

/// The headers source `s` expects on `body`, signed with its first secret (or, for ServiceNow
/// `auth: bearer`, carrying its first bearer token), as `(name, value)` pairs.
pub fn headers(
    s: &SourceSettings,
    body: &[u8],
    env: &Envelope,
) -> Result<Vec<(String, String)>, String> {
    let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
    let secret = || {
        s.secrets
            .first()
            .map(|k| k.expose_secret().to_string())
            .ok_or_else(|| "the source has no secret to sign with".to_string())
    };
    match s.kind {
        SourceKind::Github => {
            h.push(("X-GitHub-Event".into(), env.github_event.clone()));
            h.push(("X-GitHub-Delivery".into(), env.delivery.clone()));
            h.push((
                "X-Hub-Signature-256".into(),
                github_signature(&secret()?, body),
            ));
        }
        SourceKind::Pagerduty => {
            h.push(("X-Webhook-Id".into(), env.delivery.clone()));
            h.push((
                "X-PagerDuty-Signature".into(),
                pagerduty_signature(&secret()?, body),
            ));
        }
        SourceKind::Servicenow => servicenow_headers(s, body, env, secret, &mut h)?,
    }
    Ok(h)
}

fn servicenow_headers(
    s: &SourceSettings,
    body: &[u8],
    env: &Envelope,
    secret: impl Fn() -> Result<String, String>,
    h: &mut Vec<(String, String)>,
) -> Result<(), String> {
    if env.delivery.contains('.') {
        return Err("a ServiceNow delivery id must not contain `.`".into());
    }
    let timestamp = env.timestamp.to_string();
    if let Some(name) = &s.timestamp_header {
        h.push((name.clone(), timestamp.clone()));
    }
    if let Some(name) = &s.delivery_header {
        h.push((name.clone(), env.delivery.clone()));
    }
    match s.auth {
        SourceAuth::Bearer => {
            let token = s
                .bearer_tokens
                .first()
                .ok_or("the source has no bearer token")?;
            h.push((
                "Authorization".into(),
                format!("Bearer {}", token.expose_secret()),
            ));
        }
        SourceAuth::Hmac => {
            let name = s
                .signature_header
                .clone()
                .unwrap_or_else(|| "X-ServiceNow-Signature".into());
            let sig = servicenow_signature(&secret()?, s.scheme(), &timestamp, &env.delivery, body);
            h.push((name, sig));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::sources::Source;

    const YAML: &str = r#"
dev_mode: true
server: {listen: "127.0.0.1:0"}
sources:
  gh: {kind: github, secrets: [gh-key-1, gh-key-2]}
  pd: {kind: pagerduty, secrets: [pd-key]}
  sn-body: {kind: servicenow, secrets: [sn-key]}
  sn-ts:
    kind: servicenow
    secrets: [sn-key]
    signature_header: X-Sig
    timestamp_header: X-Ts
  sn-full:
    kind: servicenow
    secrets: [sn-key]
    signature_header: X-Sig
    timestamp_header: X-Ts
    delivery_header: X-Delivery
    signature_scheme: "{timestamp}.{delivery}.{body}"
  sn-bearer: {kind: servicenow, auth: bearer, bearer_tokens: [sn-token], timestamp_header: X-Ts}
"#;

    fn body(kind: SourceKind) -> Vec<u8> {
        let v = match kind {
            SourceKind::Github => serde_json::json!({"action": "opened", "issue": {"number": 1}}),
            SourceKind::Pagerduty => serde_json::json!({"event": {"id": "E1",
                "event_type": "incident.triggered", "data": {"id": "P1", "number": 1}}}),
            SourceKind::Servicenow => serde_json::json!({"sys_id": "abc",
                "sys_updated_on": "2026-01-01 00:00:00", "number": "INC1"}),
        };
        serde_json::to_vec(&v).unwrap()
    }

    /// Signs with `headers`, then checks with the source's own receiver; a changed body fails.
    fn round_trip(name: &str) -> Vec<(String, String)> {
        let settings = Settings::from_parts(Some(YAML), None, false).unwrap();
        let s = &settings.sources[name];
        let source = Source::new(name, s, 1 << 20);
        let body = body(s.kind);
        let h = headers(s, &body, &Envelope::now("issues")).unwrap();
        let map =
            crate::admin::header_map(h.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        let event = source
            .accept(&map, &body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(event.source, name);
        let mut tampered = body.clone();
        tampered.insert(1, b' ');
        let refused = source.accept(&map, &tampered);
        if s.auth == SourceAuth::Hmac {
            assert_eq!(refused.unwrap_err().status.as_u16(), 401, "{name}");
        }
        h
    }

    fn value<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {h:?}"))
    }

    #[test]
    fn github_signs_the_body_and_sends_event_and_delivery() {
        let h = round_trip("gh");
        assert!(value(&h, "X-Hub-Signature-256").starts_with("sha256="));
        assert_eq!(value(&h, "X-GitHub-Event"), "issues");
        assert_eq!(value(&h, "X-GitHub-Delivery").len(), 36);
    }

    #[test]
    fn pagerduty_signs_v1() {
        let h = round_trip("pd");
        assert!(value(&h, "X-PagerDuty-Signature").starts_with("v1="));
    }

    #[test]
    fn servicenow_signs_each_scheme() {
        let h = round_trip("sn-body");
        assert_eq!(
            value(&h, "X-ServiceNow-Signature").len(),
            44,
            "base64 of 32 bytes"
        );
        let h = round_trip("sn-ts");
        value(&h, "X-Ts").parse::<i64>().unwrap();
        let h = round_trip("sn-full");
        assert_eq!(value(&h, "X-Delivery").len(), 36);
        let h = round_trip("sn-bearer");
        assert_eq!(value(&h, "Authorization"), "Bearer sn-token");
    }

    #[test]
    fn the_primitives_match_published_and_fixed_vectors() {
        // GitHub's documented example.
        assert_eq!(
            github_signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        let mac = hmac_sha256(b"k", &[b"1700000000.d1.{}"]);
        assert_eq!(
            servicenow_signature(
                "k",
                SignatureScheme::TimestampDeliveryBody,
                "1700000000",
                "d1",
                b"{}"
            ),
            to_base64(&mac)
        );
    }

    #[test]
    fn a_dotted_servicenow_delivery_is_refused() {
        let settings = Settings::from_parts(Some(YAML), None, false).unwrap();
        let mut env = Envelope::now("issues");
        env.delivery = "a.b".into();
        let err = headers(&settings.sources["sn-full"], b"{}", &env).unwrap_err();
        assert!(err.contains("must not contain"), "{err}");
    }
}
