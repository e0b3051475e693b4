//! The GitHub REST calls of a catch-up pass: one page of a hook's deliveries, one redelivery
//! request, and how an answer's rate-limit headers and errors are read.

use super::describe;
use crate::config::{GithubPlan, Hook};
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LINK};
use secrecy::ExposeSecret;
use serde::Deserialize;

/// Stop a pass while this many requests are left, so post-backs keep their share.
const RATE_RESERVE: u64 = 100;
const ERROR_BODY_MAX_BYTES: usize = 16 * 1024;

/// One attempt in a hook's delivery log.
#[derive(Debug, Deserialize)]
pub(super) struct Item {
    pub id: i64,
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    #[serde(default)]
    pub redelivery: bool,
    #[serde(default)]
    pub status_code: i64,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

/// Why a request's answer ends the pass (or, for `Failed` redeliveries, one request).
pub(super) enum Stop {
    RateLimited(String),
    Failed(String),
}

pub(super) enum Asked {
    Requested,
    TooOld,
    Gone,
}

pub(super) struct Api {
    api_url: String,
    http: reqwest::Client,
    auth: HeaderValue,
    origin: reqwest::Url,
}

impl Api {
    pub fn new(plan: &GithubPlan) -> Result<Self, String> {
        let http = super::http_client(&plan.pace)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", plan.token.expose_secret()))
            .map_err(|_| "catch_up.token is not a valid header value".to_string())?;
        auth.set_sensitive(true);
        let origin = reqwest::Url::parse(&plan.api_url).map_err(|e| e.to_string())?;
        Ok(Api {
            api_url: plan.api_url.clone(),
            http,
            auth,
            origin,
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// One page of deliveries and the next page's URL.
    pub async fn list(&self, url: &str) -> Result<(Vec<Item>, Option<String>, HeaderMap), Stop> {
        let resp = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .map_err(|e| Stop::Failed(describe(e)))?;
        let headers = resp.headers().clone();
        if !resp.status().is_success() {
            return Err(refusal(resp).await);
        }
        let items: Vec<Item> = resp
            .json()
            .await
            .map_err(|e| Stop::Failed(format!("unreadable delivery list: {}", describe(e))))?;
        Ok((items, next_link(&headers), headers))
    }

    pub async fn ask(&self, hook: &Hook, id: i64) -> Result<(Asked, HeaderMap), Stop> {
        let url = format!("{}{}/deliveries/{id}/attempts", self.api_url, hook.path());
        let resp = self
            .request(reqwest::Method::POST, &url)
            .send()
            .await
            .map_err(|e| Stop::Failed(describe(e)))?;
        let headers = resp.headers().clone();
        match resp.status().as_u16() {
            200..=299 => Ok((Asked::Requested, headers)),
            422 => Ok((Asked::TooOld, headers)),
            404 => Ok((Asked::Gone, headers)),
            _ => Err(refusal(resp).await),
        }
    }

    /// Pages are followed only on the configured API's own origin, so the token never goes
    /// where an answer points.
    pub fn same_origin(&self, next: &str) -> Result<String, String> {
        let url = reqwest::Url::parse(next)
            .map_err(|e| format!("the next-page link is not a URL: {e}"))?;
        let same = url.scheme() == self.origin.scheme()
            && url.host_str() == self.origin.host_str()
            && url.port_or_known_default() == self.origin.port_or_known_default();
        if !same {
            return Err(format!(
                "the next-page link points to {}://{}, not to catch_up.api_url; not following it \
                 with the token",
                url.scheme(),
                url.host_str().unwrap_or("?")
            ));
        }
        Ok(url.to_string())
    }
}

/// `x-ratelimit-remaining` at or below the reserve: why the pass stops.
pub(super) fn rate_low(headers: &HeaderMap) -> Option<String> {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    let remaining = num("x-ratelimit-remaining")?;
    if remaining > RATE_RESERVE as i64 {
        return None;
    }
    let reset = num("x-ratelimit-reset")
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map_or_else(
            || "later".to_string(),
            |t| t.format("%H:%M:%S UTC").to_string(),
        );
    Some(format!(
        "GitHub rate limit: {remaining} request(s) left until {reset} (the bridge keeps \
         {RATE_RESERVE} for post-backs); the next pass continues"
    ))
}

/// A non-2xx answer: a rate limit stops the pass, anything else fails the request.
async fn refusal(resp: reqwest::Response) -> Stop {
    let status = resp.status().as_u16();
    let limited = rate_low(resp.headers()).is_some() && matches!(status, 403 | 429);
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    let mut resp = resp;
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_BODY_MAX_BYTES {
            break;
        }
    }
    let text = String::from_utf8_lossy(&body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.chars().take(200).collect());
    let reason = format!("HTTP {status}: {message}");
    if limited
        || status == 429
        || (status == 403 && message.to_ascii_lowercase().contains("rate limit"))
    {
        return Stop::RateLimited(
            rate_low(&headers).unwrap_or(format!("GitHub rate limit: {reason}")),
        );
    }
    Stop::Failed(reason)
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        let next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
        next.then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            "<https://api.github.com/x?cursor=a>; rel=\"prev\", <https://api.github.com/x?per_page=2&cursor=v1_9>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/x?per_page=2&cursor=v1_9")
        );
        h.insert(LINK, "<https://a/x>; rel=\"prev\"".parse().unwrap());
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn low_rate_names_the_reset() {
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", "0".parse().unwrap());
        h.insert("x-ratelimit-reset", "1800000000".parse().unwrap());
        assert!(rate_low(&h).unwrap().contains("0 request(s) left until"));
        h.insert("x-ratelimit-remaining", "4000".parse().unwrap());
        assert_eq!(rate_low(&h), None);
    }
}
