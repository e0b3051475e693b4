//! HMAC-SHA256 checks on the raw request bytes, in constant time, against every active secret.

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 over the concatenation of `parts` (so `{timestamp}.{body}` needs no copy).
pub fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// True when any `candidate` equals the HMAC of `parts` under any secret.
pub fn matches_any(secrets: &[SecretString], parts: &[&[u8]], candidates: &[Vec<u8>]) -> bool {
    let mut ok = subtle::Choice::from(0);
    for secret in secrets {
        let expected = hmac_sha256(secret.expose_secret().as_bytes(), parts);
        for c in candidates {
            // Length differences are public (always 32 bytes when valid); contents are not.
            ok |= expected.as_slice().ct_eq(c.as_slice());
        }
    }
    ok.into()
}

/// Constant-time equality for bearer tokens.
pub fn token_matches(tokens: &[SecretString], presented: &str) -> bool {
    let mut ok = subtle::Choice::from(0);
    for t in tokens {
        ok |= t.expose_secret().as_bytes().ct_eq(presented.as_bytes());
    }
    ok.into()
}

/// Decodes a hex or base64 signature of a SHA-256 MAC (32 bytes).
pub fn decode_hex_or_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() == 64 {
        if let Ok(bytes) = hex::decode(text) {
            return Some(bytes);
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
        .ok()?;
    (bytes.len() == 32).then_some(bytes)
}

pub fn to_hex(mac: &[u8]) -> String {
    hex::encode(mac)
}

pub fn to_base64(mac: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_published_vector() {
        let mac = hmac_sha256(b"It's a Secret to Everybody", &[b"Hello, World!"]);
        assert_eq!(
            to_hex(&mac),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn any_of_several_secrets_matches() {
        let secrets = vec![SecretString::from("old"), SecretString::from("new")];
        let sig = hmac_sha256(b"new", &[b"a", b"b"]).to_vec();
        assert!(matches_any(&secrets, &[b"ab"], std::slice::from_ref(&sig)));
        assert!(!matches_any(&secrets[..1], &[b"ab"], &[sig]));
        assert!(!matches_any(&secrets, &[b"ab"], &[vec![0u8; 3]]));
    }

    #[test]
    fn decodes_both_encodings() {
        let mac = hmac_sha256(b"k", &[b"x"]);
        assert_eq!(decode_hex_or_base64(&to_hex(&mac)).unwrap(), mac);
        assert_eq!(decode_hex_or_base64(&to_base64(&mac)).unwrap(), mac);
        assert!(decode_hex_or_base64("not a signature").is_none());
        assert!(decode_hex_or_base64("c2hvcnQ=").is_none());
    }
}
