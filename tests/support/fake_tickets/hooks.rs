//! GitHub webhook delivery logs: `GET /repos/{o}/{r}/hooks/{id}/deliveries` (or
//! `/orgs/{org}/hooks/…`), newest first, in cursor pages (`Link: rel="next"`, `per_page` at most
//! 100); and `POST …/deliveries/{id}/attempts`, which answers 202 and then really sends the
//! original signed body with the same headers (`X-GitHub-Delivery` included) to the hook's URL,
//! logging the attempt as a `redelivery: true` delivery with the status it got (0: no answer).
//! A delivery older than 3 days answers 422, as on GitHub. Every answer carries
//! `x-ratelimit-remaining` (see `set_github_rate_remaining`).

use super::{gh_error, resp, FakeTickets, Req, Resp, State};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One attempt in a hook's delivery log, with what was sent.
#[derive(Clone, Debug)]
pub struct FakeDelivery {
    pub guid: String,
    pub event: String,
    pub action: Option<String>,
    pub delivered_at: DateTime<Utc>,
    /// 0: nothing answered (connection refused, timed out).
    pub status_code: u16,
    pub redelivery: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

struct Hook {
    /// `repos/acme/ops` or `orgs/acme`.
    owner: String,
    /// Where deliveries go (the bridge's `/hooks/{source}`).
    url: Option<String>,
    log: Vec<(i64, FakeDelivery)>,
}

#[derive(Default)]
pub struct Hooks {
    hooks: BTreeMap<u64, Hook>,
    next_id: i64,
    /// None: always 5000 left. Some(n): counts down per request; at 0 requests get 403.
    remaining: Option<i64>,
    /// The query string of each list request.
    lists: Vec<String>,
    /// (hook, delivery id) of each redelivery request answered 202.
    attempts: Vec<(u64, i64)>,
}

impl Hooks {
    fn log(&mut self, hook: u64, d: FakeDelivery) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        if let Some(h) = self.hooks.get_mut(&hook) {
            h.log.push((id, d));
        }
        id
    }
}

/// A delivery to make after answering.
pub struct Send {
    hook: u64,
    url: Option<String>,
    d: FakeDelivery,
}

impl Send {
    pub async fn run(self, state: Arc<Mutex<State>>) {
        let status = send(self.url.as_deref(), &self.d).await;
        let d = FakeDelivery {
            delivered_at: Utc::now(),
            status_code: status,
            redelivery: true,
            ..self.d
        };
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.hooks.log(self.hook, d);
    }
}

async fn send(url: Option<&str>, d: &FakeDelivery) -> u16 {
    let Some(url) = url else { return 0 };
    let mut req = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_secs(10))
        .body(d.body.clone());
    for (k, v) in &d.headers {
        req = req.header(k, v);
    }
    req.send().await.map_or(0, |r| r.status().as_u16())
}

impl FakeTickets {
    /// A repository webhook (`repo`: `owner/name`) or, with `org:` first, an organization one
    /// (`org:acme`).
    pub fn github_hook(&self, owner: &str, id: u64) {
        let owner = match owner.strip_prefix("org:") {
            Some(org) => format!("orgs/{org}"),
            None => format!("repos/{owner}"),
        };
        let hook = Hook {
            owner,
            url: None,
            log: Vec::new(),
        };
        self.st().hooks.hooks.insert(id, hook);
    }

    pub fn set_github_hook_url(&self, id: u64, url: &str) {
        if let Some(h) = self.st().hooks.hooks.get_mut(&id) {
            h.url = Some(url.to_string());
        }
    }

    /// Adds an attempt to the hook's log as if GitHub had made it; returns its id.
    pub fn github_log_delivery(&self, hook: u64, d: FakeDelivery) -> i64 {
        self.st().hooks.log(hook, d)
    }

    /// Sends a delivery to the hook's URL now, logging the status it got.
    pub async fn github_send(&self, hook: u64, mut d: FakeDelivery) -> u16 {
        let url = self.st().hooks.hooks.get(&hook).and_then(|h| h.url.clone());
        d.status_code = send(url.as_deref(), &d).await;
        d.delivered_at = Utc::now();
        let status = d.status_code;
        self.github_log_delivery(hook, d);
        status
    }

    /// The hook's log, oldest first.
    pub fn github_deliveries(&self, hook: u64) -> Vec<(i64, FakeDelivery)> {
        let st = self.st();
        st.hooks
            .hooks
            .get(&hook)
            .map(|h| h.log.clone())
            .unwrap_or_default()
    }

    /// (hook, delivery id) of every redelivery requested and accepted.
    pub fn github_redelivery_requests(&self) -> Vec<(u64, i64)> {
        self.st().hooks.attempts.clone()
    }

    /// The query string of every delivery-list request.
    pub fn github_delivery_lists(&self) -> Vec<String> {
        self.st().hooks.lists.clone()
    }

    /// `x-ratelimit-remaining` of the hook endpoints: None for plenty, Some(n) to count down
    /// from n (0 refuses with 403).
    pub fn set_github_rate_remaining(&self, n: Option<i64>) {
        self.st().hooks.remaining = n;
    }
}

pub fn route(h: &mut Hooks, req: &Req, segs: &[&str]) -> Resp {
    let (owner, rest) = match segs {
        ["repos", o, n, "hooks", rest @ ..] => (format!("repos/{o}/{n}"), rest),
        ["orgs", org, "hooks", rest @ ..] => (format!("orgs/{org}"), rest),
        _ => return gh_error(404, "Not Found"),
    };
    let reset = (Utc::now().timestamp() + 3600).to_string();
    let remaining = match h.remaining {
        None => 5000,
        Some(n) if n <= 0 => {
            let mut r = gh_error(403, "API rate limit exceeded for user ID 1.");
            r.headers.push(("x-ratelimit-remaining", "0".into()));
            r.headers.push(("x-ratelimit-reset", reset));
            return r;
        }
        Some(n) => {
            h.remaining = Some(n - 1);
            n - 1
        }
    };
    let hook = rest
        .first()
        .and_then(|id| id.parse::<u64>().ok())
        .filter(|id| h.hooks.get(id).is_some_and(|k| k.owner == owner));
    let mut r = match (req.method, hook, rest) {
        (_, None, _) => gh_error(404, "Not Found"),
        ("GET", Some(id), [_, "deliveries"]) => list(h, id, req),
        ("POST", Some(id), [_, "deliveries", d, "attempts"]) => attempt(h, id, d),
        _ => gh_error(404, "Not Found"),
    };
    r.headers.push(("x-ratelimit-limit", "5000".into()));
    r.headers
        .push(("x-ratelimit-remaining", remaining.to_string()));
    r.headers.push(("x-ratelimit-reset", reset));
    r
}

fn list(h: &mut Hooks, id: u64, req: &Req) -> Resp {
    h.lists.push(req.query.to_string());
    let params: BTreeMap<String, String> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    let per_page = params
        .get("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let hook = &h.hooks[&id];
    let mut log: Vec<&(i64, FakeDelivery)> = hook.log.iter().collect();
    log.sort_by_key(|d| std::cmp::Reverse((d.1.delivered_at, d.0)));
    let start = match params.get("cursor").and_then(|c| c.strip_prefix("v1_")) {
        Some(c) => match log.iter().position(|(i, _)| i.to_string() == c) {
            Some(p) => p,
            None => return gh_error(422, "Invalid cursor"),
        },
        None => 0,
    };
    let page: Vec<_> = log.iter().skip(start).take(per_page).collect();
    let body: Vec<_> = page
        .iter()
        .map(|(i, d)| {
            json!({
                "id": i,
                "guid": d.guid,
                "delivered_at": d.delivered_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "redelivery": d.redelivery,
                "duration": 0.12,
                "status": match d.status_code {
                    0 => "failed to connect to host".to_string(),
                    200..=299 => "OK".to_string(),
                    s => format!("Invalid HTTP Response: {s}"),
                },
                "status_code": d.status_code,
                "event": d.event,
                "action": d.action,
                "installation_id": null,
                "repository_id": 1,
                "throttled_at": null,
            })
        })
        .collect();
    let mut r = resp(200, json!(body));
    if let Some((next, _)) = log.get(start + per_page) {
        // The fakes serve plain HTTP here.
        r.headers.push((
            "link",
            format!(
                "<http://{}/{}/hooks/{id}/deliveries?per_page={per_page}&cursor=v1_{next}>; rel=\"next\"",
                req.host, hook.owner
            ),
        ));
    }
    r
}

fn attempt(h: &mut Hooks, hook: u64, delivery: &str) -> Resp {
    let found = h.hooks[&hook]
        .log
        .iter()
        .find(|(i, _)| i.to_string() == delivery)
        .map(|(_, d)| d.clone());
    let Some(d) = found else {
        return gh_error(404, "Not Found");
    };
    if d.delivered_at < Utc::now() - chrono::Duration::days(3) {
        return gh_error(
            422,
            "Validation Failed: redelivery is only possible for deliveries of the last 3 days",
        );
    }
    h.attempts
        .push((hook, delivery.parse().unwrap_or_default()));
    let mut r = resp(202, json!({}));
    r.then = Some(Send {
        hook,
        url: h.hooks[&hook].url.clone(),
        d,
    });
    r
}
