//! One HTTP client per source with `reply:` settings.

use super::answer::{classify, SendError};
use super::Prepared;
use crate::config::{ReplySettings, SourceKind, SourceSettings};
use base64::Engine;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::Method;
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// Most bytes of an error answer read (only a short excerpt is kept).
const ERROR_BODY_MAX_BYTES: usize = 64 * 1024;

#[derive(Clone)]
struct Client {
    kind: SourceKind,
    http: reqwest::Client,
    /// `reply.api_url` without a trailing slash.
    base: String,
    /// Marked sensitive, so it never prints.
    auth: HeaderValue,
    /// PagerDuty `From`.
    from: Option<HeaderValue>,
    status_context: String,
    /// servicenow: tables post-backs may write to.
    tables: Vec<String>,
}

/// One client per source that has `reply:` configured.
#[derive(Clone, Default)]
pub struct Notifier {
    clients: BTreeMap<String, Client>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("sources", &self.clients.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Notifier {
    pub fn new(sources: &BTreeMap<String, SourceSettings>) -> Result<Self, String> {
        let mut clients = BTreeMap::new();
        for (name, source) in sources {
            if source.reply.is_some() {
                let client =
                    Client::new(name, source).map_err(|e| format!("sources.{name}.reply: {e}"))?;
                clients.insert(name.clone(), client);
            }
        }
        Ok(Self { clients })
    }

    pub fn can_reply(&self, source: &str) -> bool {
        self.clients.contains_key(source)
    }

    /// The commit status context for a GitHub source (`aap-bridge` unless configured).
    pub fn status_context(&self, source: &str) -> String {
        self.clients.get(source).map_or_else(
            || ReplySettings::DEFAULT_STATUS_CONTEXT.to_string(),
            |c| c.status_context.clone(),
        )
    }

    /// A GET through the source's reply client (its credentials and API URL): the answer's
    /// status and JSON body (Null when it is not JSON). Used to check who may approve.
    pub async fn read(&self, source: &str, path: &str) -> Result<(u16, serde_json::Value), String> {
        let client = self
            .clients
            .get(source)
            .ok_or_else(|| format!("source `{source}` has no `reply:` settings"))?;
        if !safe_path(path) {
            return Err("not a plain API path".into());
        }
        let rb = client
            .http
            .get(format!("{}{path}", client.base))
            .header(AUTHORIZATION, client.auth.clone());
        let rb = match client.kind {
            SourceKind::Github => rb
                .header(ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            _ => rb.header(ACCEPT, "application/json"),
        };
        let resp = rb.send().await.map_err(|e| describe(e.without_url()))?;
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(serde_json::Value::Null);
        Ok((status, body))
    }

    /// Sends one prepared post-back; `Ok` carries the 2xx status.
    pub async fn send(&self, source: &str, p: &Prepared) -> Result<u16, SendError> {
        let client = self
            .clients
            .get(source)
            .ok_or_else(|| SendError::Permanent {
                reason: format!("source `{source}` has no `reply:` settings"),
            })?;
        client.send(p).await
    }
}

impl Client {
    fn new(name: &str, source: &SourceSettings) -> Result<Self, String> {
        let reply = source.reply.as_ref().ok_or("no reply settings")?;
        reply.validate(source.kind)?;
        let base = reply.api_url(source.kind).ok_or("api_url is required")?;
        let timeout = Duration::from_secs(reply.timeout_secs);
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirect would be a misconfigured api_url; never follow it with credentials.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("aap-bridge");
        if let Some(pem) = &reply.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| format!("ca_file: {e}"))?;
            if certs.is_empty() {
                return Err("ca_file holds no PEM certificate".into());
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if reply.insecure_skip_verify {
            tracing::warn!(
                source = name,
                "reply.insecure_skip_verify is on: TLS certificates are NOT verified"
            );
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        let token = reply.token.as_ref().map(|t| t.expose_secret().to_string());
        let auth = match (source.kind, token) {
            (SourceKind::Github, Some(t)) => format!("Bearer {t}"),
            (SourceKind::Pagerduty, Some(t)) => format!("Token token={t}"),
            (SourceKind::Servicenow, Some(t)) => format!("Bearer {t}"),
            (SourceKind::Servicenow, None) => {
                let user = reply.username.as_deref().unwrap_or_default();
                let pass = reply.password.as_ref().map_or("", |p| p.expose_secret());
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                format!("Basic {pair}")
            }
            _ => return Err("token is required".into()),
        };
        // Never echo the value: it holds the credential.
        let mut auth = HeaderValue::from_str(&auth)
            .map_err(|_| "the credentials are not a valid header value".to_string())?;
        auth.set_sensitive(true);
        let from = match &reply.from {
            Some(f) => Some(HeaderValue::from_str(f).map_err(|_| "from is not a valid header")?),
            None => None,
        };
        Ok(Self {
            kind: source.kind,
            http,
            base,
            auth,
            from,
            status_context: reply.status_context().to_string(),
            tables: reply.tables(),
        })
    }

    async fn send(&self, p: &Prepared) -> Result<u16, SendError> {
        let method = match p.method.as_str() {
            "POST" => Method::POST,
            "PATCH" => Method::PATCH,
            "PUT" => Method::PUT,
            other => {
                return Err(SendError::Permanent {
                    reason: format!("method `{other}` is not used for post-backs"),
                })
            }
        };
        if !safe_path(&p.path) {
            return Err(SendError::Permanent {
                reason: "the prepared path is not a plain API path".into(),
            });
        }
        if self.kind == SourceKind::Servicenow {
            self.table_allowed(&p.path)?;
        }
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base, p.path))
            .header(AUTHORIZATION, self.auth.clone())
            .json(&p.body);
        rb = match self.kind {
            SourceKind::Github => rb
                .header(ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            SourceKind::Pagerduty => {
                let rb = rb.header(ACCEPT, "application/json");
                match &self.from {
                    Some(from) => rb.header("From", from.clone()),
                    None => rb,
                }
            }
            SourceKind::Servicenow => rb.header(ACCEPT, "application/json"),
        };
        let mut resp = rb.send().await.map_err(|e| SendError::Retry {
            after: None,
            reason: describe(e.without_url()),
        })?;
        let status = resp.status().as_u16();
        // The path names the ticket; the base URL and the headers are not logged.
        tracing::debug!(
            kind = self.kind.as_str(),
            method = %p.method,
            path = %p.path,
            status,
            "post-back answered"
        );
        if (200..300).contains(&status) {
            return Ok(status);
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= ERROR_BODY_MAX_BYTES {
                break;
            }
        }
        let body = String::from_utf8_lossy(&body);
        classify(self.kind, status, &headers, &body, SystemTime::now())
    }
}

impl Client {
    /// The table in `/api/now/table/{table}/…` must be in `reply.tables`: a ticket names its
    /// own table, and a hostile one must not make the bridge write elsewhere.
    fn table_allowed(&self, path: &str) -> Result<(), SendError> {
        let table = path
            .strip_prefix("/api/now/table/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        if self.tables.iter().any(|t| t == table) {
            return Ok(());
        }
        Err(SendError::Permanent {
            reason: format!(
                "ServiceNow table `{table}` is not in reply.tables (allowed: {})",
                self.tables.join(", ")
            ),
        })
    }
}

/// Paths built by `prepare` hold only these characters; anything else did not come from it.
fn safe_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 512
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'))
        && path[1..]
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// The error and its causes (the caller has removed the URL).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "no answer"
    };
    let mut text = format!("{kind}: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_sent() {
        assert!(safe_path("/api/now/table/incident/0123"));
        for p in [
            "",
            "api",
            "/a/../b",
            "/a//b",
            "/a?x=1",
            "/a#f",
            "/a/",
            "//evil.example/x",
            "/a/%2e%2e",
        ] {
            assert!(!safe_path(p), "{p}");
        }
    }
}
