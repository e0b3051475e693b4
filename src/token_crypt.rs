//! Encryption at rest for `controller_tokens` (AES-256-GCM). Encrypted values are
//! `v1:` + base64(nonce || ciphertext); anything else is a plaintext row from before a key was
//! configured, still readable. The row's key and column are the associated data, so a value
//! copied into another row or column does not decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;

/// The key, or none (values are stored as given).
#[derive(Clone, Default)]
pub struct TokenCipher(Option<Aes256Gcm>);

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.is_some() {
            "key set"
        } else {
            "no key"
        };
        f.debug_tuple("TokenCipher").field(&state).finish()
    }
}

impl TokenCipher {
    /// From `controller.token_key`: base64 of exactly 32 bytes. The value is never echoed.
    pub fn from_base64(key: &str) -> Result<Self, String> {
        let bytes = B64
            .decode(key.trim())
            .map_err(|_| "controller.token_key is not valid base64".to_string())?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            format!(
                "controller.token_key must be 32 bytes once decoded, not {} (make one with \
                 `openssl rand -base64 32`)",
                bytes.len()
            )
        })?;
        Ok(Self(Some(cipher)))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// What to store for `plain` in `column` of the row `row_key`.
    pub fn seal(&self, row_key: &str, column: &str, plain: &str) -> String {
        let Some(c) = &self.0 else {
            return plain.to_string();
        };
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = aad(row_key, column);
        let sealed = c
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short value cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// The plaintext of a stored value; errors say why without showing the value.
    pub fn open(&self, row_key: &str, column: &str, stored: &str) -> Result<String, String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let Some(c) = &self.0 else {
            return Err(format!(
                "the stored {column} is encrypted but no controller.token_key is configured"
            ));
        };
        let raw = B64
            .decode(b64)
            .ok()
            .filter(|r| r.len() > NONCE_LEN)
            .ok_or_else(|| format!("the stored {column} is not a valid encrypted value"))?;
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let aad = aad(row_key, column);
        let plain = c
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                format!(
                    "the stored {column} cannot be decrypted with the configured \
                     controller.token_key (it was encrypted with another key)"
                )
            })?;
        String::from_utf8(plain).map_err(|_| format!("the stored {column} is not UTF-8"))
    }
}

fn aad(row_key: &str, column: &str) -> String {
    format!("aap-bridge|{row_key}|{column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> TokenCipher {
        TokenCipher::from_base64(&B64.encode([b; 32])).unwrap()
    }

    #[test]
    fn sealed_values_round_trip_and_plaintext_rows_still_read() {
        let k = key(1);
        let sealed = k.seal("row", "token", "s3cret");
        assert!(sealed.starts_with("v1:") && !sealed.contains("s3cret"));
        assert_ne!(
            sealed,
            k.seal("row", "token", "s3cret"),
            "fresh nonce each time"
        );
        assert_eq!(k.open("row", "token", &sealed).unwrap(), "s3cret");
        assert_eq!(k.open("row", "token", "legacy").unwrap(), "legacy");
        assert_eq!(TokenCipher::default().seal("row", "token", "p"), "p");
    }

    #[test]
    fn wrong_key_row_or_missing_key_are_clear_errors() {
        let sealed = key(1).seal("row", "token", "s3cret");
        assert_eq!(
            key(2).open("row", "token", &sealed).unwrap_err(),
            "the stored token cannot be decrypted with the configured controller.token_key \
             (it was encrypted with another key)"
        );
        assert!(key(1).open("other", "token", &sealed).is_err());
        assert_eq!(
            TokenCipher::default()
                .open("row", "token", &sealed)
                .unwrap_err(),
            "the stored token is encrypted but no controller.token_key is configured"
        );
        assert_eq!(
            TokenCipher::from_base64(&B64.encode([0u8; 16]))
                .err()
                .unwrap(),
            "controller.token_key must be 32 bytes once decoded, not 16 (make one with \
             `openssl rand -base64 32`)"
        );
        assert!(format!("{:?}", key(1)).contains("key set"));
    }
}
