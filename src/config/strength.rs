//! Refuses weak inbound secrets (webhook secrets, bearer tokens, the admin token): a short or
//! placeholder secret lets anyone forge deliveries that launch jobs. `dev_mode` allows them,
//! but only on a loopback listener.

use super::{ConfigError, Settings};
use secrecy::{ExposeSecret, SecretString};
use std::net::{IpAddr, SocketAddr};

pub const MIN_SECRET_BYTES: usize = 16;

/// Values shipped in examples and docs; a secret equal to one, or starting with one followed
/// by `-`/`_`, is refused. Compared case-insensitively.
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replaceme",
    "secret",
    "s3cret",
    "password",
    "example",
    "xxx",
];

/// Why a secret is weak, or None.
pub fn weakness(secret: &str) -> Option<String> {
    let lower = secret.to_ascii_lowercase();
    let placeholder = PLACEHOLDERS.iter().find(|p| match lower.strip_prefix(**p) {
        Some(rest) => rest.is_empty() || rest.starts_with(['-', '_']) || **p == "xxx",
        None => false,
    });
    if let Some(p) = placeholder {
        return Some(format!(
            "is a placeholder (`{p}`…); use a long random value"
        ));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!(
            "is {} bytes; at least {MIN_SECRET_BYTES} are required (use a long random value)",
            secret.len()
        ));
    }
    None
}

impl Settings {
    /// Every inbound secret is strong, unless `dev_mode`, which must listen on loopback only.
    pub(super) fn check_secrets(&self) -> Result<(), ConfigError> {
        if self.dev_mode {
            return match is_loopback(&self.server.listen) {
                true => Ok(()),
                false => Err(ConfigError(format!(
                    "dev_mode: true allows weak secrets, so it listens on loopback only; \
                     server.listen is `{}` (use 127.0.0.1:PORT or [::1]:PORT)",
                    self.server.listen
                ))),
            };
        }
        let mut named: Vec<(String, &SecretString)> = Vec::new();
        for (name, s) in &self.sources {
            for (i, v) in s.secrets.iter().enumerate() {
                named.push((format!("sources.{name}.secrets[{i}]"), v));
            }
            for (i, v) in s.bearer_tokens.iter().enumerate() {
                named.push((format!("sources.{name}.bearer_tokens[{i}]"), v));
            }
        }
        if let Some(t) = &self.admin.token {
            named.push(("admin.token".into(), t));
        }
        for (key, secret) in named {
            if let Some(why) = weakness(secret.expose_secret()) {
                return Err(ConfigError(format!(
                    "{key} {why} (dev_mode: true allows it on a loopback listener)"
                )));
            }
        }
        Ok(())
    }
}

fn is_loopback(listen: &str) -> bool {
    if let Ok(a) = listen.parse::<SocketAddr>() {
        return a.ip().is_loopback();
    }
    match listen.rsplit_once(':') {
        Some((host, _)) => {
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &str = "k9J2mQ7vX4pL8sR1";

    fn load(yaml: &str) -> Result<Settings, String> {
        Settings::from_parts(Some(yaml), None, false).map_err(|e| e.to_string())
    }

    fn source(secret: &str) -> String {
        format!("sources:\n  gh:\n    kind: github\n    secrets: [\"{secret}\"]\n")
    }

    #[test]
    fn a_short_webhook_secret_is_refused() {
        assert_eq!(
            load(&source("github-new")).unwrap_err(),
            "configuration: sources.gh.secrets[0] is 10 bytes; at least 16 are required \
             (use a long random value) (dev_mode: true allows it on a loopback listener)"
        );
    }

    #[test]
    fn placeholders_are_refused_whatever_their_length() {
        for (secret, p) in [
            ("change-me", "change-me"),
            ("change-me-github-webhook-secret", "change-me"),
            ("CHANGEME", "changeme"),
            ("secret", "secret"),
            ("password_for_the_github_hook", "password"),
            ("xxxxxxxxxxxxxxxxxxxxxxxx", "xxx"),
            ("example-example-example", "example"),
        ] {
            assert_eq!(
                load(&source(secret)).unwrap_err(),
                format!(
                    "configuration: sources.gh.secrets[0] is a placeholder (`{p}`…); use a long \
                     random value (dev_mode: true allows it on a loopback listener)"
                ),
                "{secret}"
            );
        }
    }

    #[test]
    fn weak_admin_and_bearer_tokens_are_refused() {
        let admin = format!("{}admin:\n  token: change-me-too\n", source(STRONG));
        assert_eq!(
            load(&admin).unwrap_err(),
            "configuration: admin.token is a placeholder (`change-me`…); use a long random \
             value (dev_mode: true allows it on a loopback listener)"
        );
        let bearer = "sources:\n  sn:\n    kind: servicenow\n    auth: bearer\n    \
                      bearer_tokens: [short]\n";
        assert!(load(bearer)
            .unwrap_err()
            .starts_with("configuration: sources.sn.bearer_tokens[0] is 5 bytes;"));
    }

    #[test]
    fn strong_secrets_pass() {
        let yaml = format!("{}admin:\n  token: {STRONG}-admin\n", source(STRONG));
        load(&yaml).unwrap();
    }

    #[test]
    fn dev_mode_allows_weak_secrets_on_loopback_only() {
        let weak = source("x");
        for listen in ["127.0.0.1:0", "[::1]:8080", "localhost:8080"] {
            let yaml = format!("dev_mode: true\nserver:\n  listen: \"{listen}\"\n{weak}");
            load(&yaml).unwrap_or_else(|e| panic!("{listen}: {e}"));
        }
        let yaml = format!("dev_mode: true\nserver:\n  listen: \"0.0.0.0:8080\"\n{weak}");
        assert_eq!(
            load(&yaml).unwrap_err(),
            "configuration: dev_mode: true allows weak secrets, so it listens on loopback only; \
             server.listen is `0.0.0.0:8080` (use 127.0.0.1:PORT or [::1]:PORT)"
        );
        // Refused even with strong secrets: dev mode is for a developer's machine.
        let yaml = format!("dev_mode: true\n{}", source(STRONG));
        assert!(load(&yaml).unwrap_err().contains("loopback only"));
    }
}
