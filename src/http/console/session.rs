//! Console sessions without server state, so every replica accepts every session.
//!
//! The cookie is `<issued>.<nonce>.<mac>`: a random nonce, the issue time, and an HMAC over both
//! under a key derived from `admin.token` (never the token itself, which the cookie must not
//! carry). The CSRF token of a session is an HMAC of its nonce under the same key, so it needs no
//! storage either. Rotating `admin.token` ends every session.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const COOKIE_NAME: &str = "aap_bridge_session";
/// A session ends this long after login; logging in again starts a new one.
pub const MAX_AGE_SECS: i64 = 12 * 3600;

/// The key sessions and CSRF tokens are signed with.
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

/// A valid session: the CSRF token its forms must carry.
#[derive(Clone, Debug)]
pub struct Session {
    pub csrf: String,
}

impl Session {
    pub fn csrf_ok(&self, presented: &str) -> bool {
        self.csrf.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl Keys {
    pub fn from_token(token: &SecretString) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(token.expose_secret().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"aap-bridge console session key v1");
        Keys {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, parts: &[&str]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("32-byte key");
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b"|");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new session: the cookie value and the session it stands for.
    pub fn issue(&self, now: i64) -> (String, Session) {
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let issued = now.to_string();
        let value = format!(
            "{issued}.{nonce}.{}",
            self.mac(&["session", &issued, &nonce])
        );
        (value, self.session(&nonce))
    }

    fn session(&self, nonce: &str) -> Session {
        Session {
            csrf: self.mac(&["csrf", nonce]),
        }
    }

    /// The session of a cookie value, if it is ours and has not expired.
    pub fn verify(&self, value: &str, now: i64) -> Option<Session> {
        let mut parts = value.splitn(3, '.');
        let (issued, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        let want = self.mac(&["session", issued, nonce]);
        if !bool::from(want.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let at: i64 = issued.parse().ok()?;
        (at <= now + 60 && now - at < MAX_AGE_SECS).then(|| self.session(nonce))
    }
}

/// The session cookie's value from the request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
}

/// `Set-Cookie` for a new session. `Secure` is left out only in `dev_mode`, which binds to
/// loopback and serves plain HTTP, where a browser would not send a `Secure` cookie back.
pub fn set_cookie(value: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={MAX_AGE_SECS}{secure}"
    ))
    .expect("cookie text is ASCII")
}

pub fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
    ))
    .expect("cookie text is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(token: &str) -> Keys {
        Keys::from_token(&SecretString::from(token.to_string()))
    }

    #[test]
    fn sessions_verify_expire_and_depend_on_the_token() {
        let k = keys("admin-secret");
        let (value, session) = k.issue(1_000);
        assert!(!value.contains("admin-secret"));
        let back = k.verify(&value, 1_100).expect("valid");
        assert_eq!(back.csrf, session.csrf);
        assert!(back.csrf_ok(&session.csrf));
        assert!(!back.csrf_ok("x"));
        assert!(k.verify(&value, 1_000 + MAX_AGE_SECS).is_none(), "expired");
        assert!(keys("other-token").verify(&value, 1_100).is_none());
        let forged = value.replacen("1000", "9000", 1);
        assert!(k.verify(&forged, 9_100).is_none());
        assert!(k.verify("garbage", 1_100).is_none());
        let (other, s2) = k.issue(1_000);
        assert_ne!(other, value);
        assert_ne!(s2.csrf, session.csrf, "each session has its own CSRF token");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; aap_bridge_session=v.w.x; b=2"),
        );
        assert_eq!(cookie(&h), Some("v.w.x"));
        let set = set_cookie("v", true);
        let text = set.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Secure"] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!set_cookie("v", false).to_str().unwrap().contains("Secure"));
    }
}
