//! The console's session cookie. The session itself is a row (`operators::sessions`), so
//! logging out ends it on every replica and each session knows its user and role.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

pub use crate::operators::sessions::Session;

pub const COOKIE_NAME: &str = "aap_bridge_session";

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
pub fn set_cookie(value: &str, max_age_secs: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
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

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("a=1; aap_bridge_session=v.w.x; b=2"),
        );
        assert_eq!(cookie(&h), Some("v.w.x"));
        let set = set_cookie("v", 60, true);
        let text = set.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/ui",
            "Secure",
            "Max-Age=60",
        ] {
            assert!(text.contains(part), "{text}");
        }
        assert!(!set_cookie("v", 60, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
