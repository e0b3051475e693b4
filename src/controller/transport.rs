//! The HTTP client underneath: TLS settings, timeouts, and reqwest errors sorted into
//! "never sent" (safe to retry) and "sent, no answer" (outcome unknown).

use super::types::ControllerError;
use crate::config::ControllerSettings;
use crate::retry::Backoff;
use reqwest::cookie::Jar;
use reqwest::{RequestBuilder, Response};
use std::sync::Arc;
use std::time::Duration;

pub struct Transport {
    pub http: reqwest::Client,
    /// Base URL without a trailing slash.
    pub base: String,
    /// Cookie jar, session mode only.
    pub jar: Option<Arc<Jar>>,
    pub backoff: Backoff,
    pub max_attempts: u32,
    /// The whole-request timeout: the longest a launch POST can take from our side.
    pub timeout: Duration,
}

impl Transport {
    pub fn new(s: &ControllerSettings, with_cookies: bool) -> Result<Self, ControllerError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(s.timeout_secs))
            .connect_timeout(Duration::from_secs(s.connect_timeout_secs))
            // The API never needs redirects; a login answers 302, which we read ourselves.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("aap-bridge/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &s.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| ControllerError::Config(format!("controller.ca_file: {e}")))?;
            if certs.is_empty() {
                return Err(ControllerError::Config(
                    "controller.ca_file holds no PEM certificate".into(),
                ));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if s.insecure_skip_verify {
            tracing::warn!(
                url = %s.url,
                "controller.insecure_skip_verify is on: TLS certificates are NOT verified"
            );
            b = b.danger_accept_invalid_certs(true);
        }
        let jar = with_cookies.then(|| Arc::new(Jar::default()));
        if let Some(j) = &jar {
            b = b.cookie_provider(j.clone());
        }
        let http = b
            .build()
            .map_err(|e| ControllerError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: s.url.trim_end_matches('/').to_string(),
            jar,
            backoff: Backoff::new(s.retry.base_delay_ms, s.retry.max_delay_ms),
            max_attempts: s.retry.max_attempts,
            timeout: Duration::from_secs(s.timeout_secs),
        })
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A pagination `next` link, checked: relative (AWX) or on the controller's own
    /// scheme/host/port. Credentials never go to another origin a response names.
    pub fn follow(&self, link: &str, what: &str) -> Result<String, ControllerError> {
        if link.starts_with('/') && !link.starts_with("//") {
            return Ok(link.to_string());
        }
        let base = reqwest::Url::parse(&self.base)
            .map_err(|e| ControllerError::Config(format!("controller.url: {e}")))?;
        let target = base.join(link).map_err(|_| {
            ControllerError::Protocol(format!("the `next` link of {what} is not a URL"))
        })?;
        if target.origin() != base.origin() {
            return Err(ControllerError::Protocol(format!(
                "the `next` link of {what} points to {}, not to the controller ({}); \
                 not following it with credentials",
                target.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            )));
        }
        Ok(target.to_string())
    }

    /// One attempt.
    pub async fn execute(&self, rb: RequestBuilder) -> Result<Response, ControllerError> {
        rb.send().await.map_err(sort_error)
    }

    /// A cookie's value from the jar (session mode).
    pub fn cookie(&self, name: &str) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let jar = self.jar.as_ref()?;
        let url = reqwest::Url::parse(&self.base).ok()?;
        let header = jar.cookies(&url)?;
        header.to_str().ok()?.split(';').find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

fn sort_error(e: reqwest::Error) -> ControllerError {
    // Never print the URL's query or any header: only the error kind and its cause.
    let connect = e.is_connect();
    let e = e.without_url();
    // reqwest's own text is only "error sending request": the cause says which TLS check failed.
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text = format!("{text}: {s}");
        }
        cause = c.source();
    }
    if text.contains("certificate") {
        text.push_str(
            " (the controller's TLS certificate was refused: trust its CA with \
             controller.ca_file, or use the host name the certificate names)",
        );
    }
    if connect {
        ControllerError::Connect(text)
    } else {
        ControllerError::NoAnswer(text)
    }
}
