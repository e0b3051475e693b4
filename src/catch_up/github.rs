//! GitHub: each hook's recent deliveries, newest first (`GET …/hooks/{id}/deliveries`, cursor
//! pages through `Link: rel="next"`), back to the checkpoint but never past GitHub's 3-day
//! redelivery window. A delivery that no attempt answered 2xx, whose guid the bridge has not
//! stored and has not asked for before, is redelivered (`POST …/deliveries/{id}/attempts`).
//!
//! `status_code` 0 means nothing answered at all; GitHub's `status=failure` filter leaves those
//! out, so every delivery is listed and judged here.

use super::{db, describe, Redelivery, Summary};
use crate::config::{GithubPlan, Hook};
use crate::store::catch_up as store;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, LINK};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};

/// GitHub redelivers deliveries of the last 3 days; the margin leaves time for the request.
const WINDOW: chrono::Duration = chrono::Duration::days(3);
const WINDOW_MARGIN: chrono::Duration = chrono::Duration::minutes(10);
/// Stop a pass while this many requests are left, so post-backs keep their share.
const RATE_RESERVE: u64 = 100;
const PER_PAGE: u32 = 100;
const ERROR_BODY_MAX_BYTES: usize = 16 * 1024;

pub struct Github {
    plan: GithubPlan,
    http: reqwest::Client,
    auth: HeaderValue,
    origin: reqwest::Url,
}

#[derive(Debug, Deserialize)]
struct Item {
    id: i64,
    guid: String,
    delivered_at: DateTime<Utc>,
    #[serde(default)]
    redelivery: bool,
    #[serde(default)]
    status_code: i64,
    #[serde(default)]
    event: String,
    #[serde(default)]
    action: Option<String>,
}

/// Why a request's answer ends the pass (or, for `Failed` redeliveries, one request).
enum Stop {
    RateLimited(String),
    Failed(String),
}

enum Asked {
    Requested,
    TooOld,
    Gone,
}

impl Github {
    pub fn new(plan: GithubPlan) -> Result<Self, String> {
        let http = super::http_client(&plan.pace)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", plan.token.expose_secret()))
            .map_err(|_| "catch_up.token is not a valid header value".to_string())?;
        auth.set_sensitive(true);
        let origin = reqwest::Url::parse(&plan.api_url).map_err(|e| e.to_string())?;
        Ok(Github {
            plan,
            http,
            auth,
            origin,
        })
    }

    pub async fn pass(
        &self,
        pool: &PgPool,
        source: &str,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        let result = self.hooks(pool, source, since, summary).await;
        store::prune_redeliveries(pool, source).await.map_err(db)?;
        result
    }

    async fn hooks(
        &self,
        pool: &PgPool,
        source: &str,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<(), String> {
        for hook in &self.plan.hooks {
            if !self.hook(pool, source, hook, since, summary).await? {
                break;
            }
        }
        Ok(())
    }

    /// One hook; false when the whole pass must stop (rate limit).
    async fn hook(
        &self,
        pool: &PgPool,
        source: &str,
        hook: &Hook,
        since: Option<DateTime<Utc>>,
        summary: &mut Summary,
    ) -> Result<bool, String> {
        let scope = hook.scope();
        let window = Utc::now() - WINDOW + WINDOW_MARGIN;
        let overlap = chrono::Duration::seconds(self.plan.pace.overlap_secs as i64);
        let checkpoint = store::checkpoint(pool, source, &scope).await.map_err(db)?;
        let floor = since
            .or(checkpoint.map(|c| c - overlap))
            .map_or(window, |t| t.max(window));
        summary.since = summary.since.min(floor);
        // Newest first: read pages until one reaches past the floor.
        let mut url = format!(
            "{}{}/deliveries?per_page={PER_PAGE}",
            self.plan.api_url,
            hook.path()
        );
        let mut items: Vec<Item> = Vec::new();
        loop {
            let (page, next, headers) = match self.list(&url).await {
                Ok(p) => p,
                Err(Stop::RateLimited(why)) => {
                    summary.stop(why);
                    return Ok(false);
                }
                Err(Stop::Failed(why)) => {
                    return Err(format!("{scope}: listing deliveries: {why}"))
                }
            };
            summary.pages += 1;
            let past = page.iter().any(|d| d.delivered_at < floor);
            items.extend(page.into_iter().filter(|d| d.delivered_at >= floor));
            if let Some(why) = rate_low(&headers) {
                summary.stop(why);
                return Ok(false);
            }
            match next {
                Some(next) if !past => url = self.same_origin(&next)?,
                _ => break,
            }
        }
        summary.examined += items.len() as u32;
        let newest = items.iter().map(|d| d.delivered_at).max();
        let (complete, go_on) = self
            .redeliver_missing(pool, source, hook, &items, summary)
            .await?;
        if let (true, Some(newest)) = (complete, newest) {
            store::advance(pool, source, &scope, newest)
                .await
                .map_err(db)?;
        }
        Ok(go_on)
    }

    /// Asks for each missing delivery; returns (every missing one settled, go on with the pass).
    async fn redeliver_missing(
        &self,
        pool: &PgPool,
        source: &str,
        hook: &Hook,
        items: &[Item],
        summary: &mut Summary,
    ) -> Result<(bool, bool), String> {
        // All attempts of one delivery share its guid; one 2xx among them means it arrived.
        let mut by_guid: BTreeMap<&str, Vec<&Item>> = BTreeMap::new();
        for d in items {
            by_guid.entry(d.guid.as_str()).or_default().push(d);
        }
        by_guid.retain(|_, attempts| !attempts.iter().any(|d| (200..300).contains(&d.status_code)));
        let Some(oldest) = items.iter().map(|d| d.delivered_at).min() else {
            return Ok((true, true));
        };
        let id_of = |guid: &str| format!("{}:{guid}", hook.id());
        let mut ids: Vec<String> = by_guid.keys().map(|g| id_of(g)).collect();
        let asked: HashSet<String> = store::requested(pool, source, &ids)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        // Without X-GitHub-Hook-ID the delivery id is the bare guid.
        ids.extend(by_guid.keys().map(|g| g.to_string()));
        let after = oldest - chrono::Duration::days(1);
        let stored: HashSet<String> = store::stored_deliveries(pool, source, &ids, after)
            .await
            .map_err(db)?
            .into_iter()
            .collect();
        let mut missing: Vec<(&str, &Item)> = by_guid
            .iter()
            .filter(|(g, _)| !stored.contains(&id_of(g)) && !stored.contains(**g))
            .filter(|(g, _)| !asked.contains(&id_of(g)))
            .map(|(g, attempts)| {
                // Redeliver the original, which GitHub keeps longest.
                let pick = attempts
                    .iter()
                    .find(|d| !d.redelivery)
                    .unwrap_or(&attempts[0]);
                (*g, *pick)
            })
            .collect();
        missing.sort_by_key(|(_, d)| d.delivered_at);
        let mut complete = true;
        for (guid, d) in missing {
            let asked_now = summary.redeliveries.len() as u32;
            if asked_now >= self.plan.pace.max_per_run {
                summary.stop(format!(
                    "max_per_run ({asked_now}) redeliveries requested; the next pass continues"
                ));
                return Ok((false, false));
            }
            let delivery_id = id_of(guid);
            if !store::claim_redelivery(pool, source, &delivery_id, d.id)
                .await
                .map_err(db)?
            {
                continue; // another pass asked for it meanwhile
            }
            summary.missing += 1;
            metrics::counter!("aap_bridge_catch_up_missing_total", "source" => source.to_string())
                .increment(1);
            let (result, keep, stop) = match self.ask(hook, d.id).await {
                Ok((Asked::Requested, headers)) => {
                    ("requested".to_string(), true, rate_low(&headers))
                }
                Ok((Asked::TooOld, _)) => ("too_old".to_string(), true, None),
                Ok((Asked::Gone, _)) => ("not_found".to_string(), true, None),
                Err(Stop::RateLimited(why)) => ("rate_limited".to_string(), false, Some(why)),
                Err(Stop::Failed(why)) => {
                    complete = false;
                    (format!("failed: {why}"), false, None)
                }
            };
            let label = result.split(':').next().unwrap_or("failed").to_string();
            let settled = keep.then_some(label.as_str());
            store::settle_redelivery(pool, source, &delivery_id, settled)
                .await
                .map_err(db)?;
            metrics::counter!("aap_bridge_catch_up_redeliveries_total",
                "source" => source.to_string(), "result" => label)
            .increment(1);
            summary.redeliveries.push(Redelivery {
                hook: hook.scope(),
                guid: guid.to_string(),
                delivery: d.id,
                event: match &d.action {
                    Some(a) if !d.event.is_empty() => format!("{}.{a}", d.event),
                    _ => d.event.clone(),
                },
                delivered_at: d.delivered_at,
                status_code: d.status_code,
                result,
            });
            if let Some(why) = stop {
                summary.stop(why);
                return Ok((false, false));
            }
        }
        Ok((complete, true))
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
    }

    /// One page of deliveries and the next page's URL.
    async fn list(&self, url: &str) -> Result<(Vec<Item>, Option<String>, HeaderMap), Stop> {
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

    async fn ask(&self, hook: &Hook, id: i64) -> Result<(Asked, HeaderMap), Stop> {
        let url = format!(
            "{}{}/deliveries/{id}/attempts",
            self.plan.api_url,
            hook.path()
        );
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
    fn same_origin(&self, next: &str) -> Result<String, String> {
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
fn rate_low(headers: &HeaderMap) -> Option<String> {
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
