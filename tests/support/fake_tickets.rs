//! Stateful fake ticket systems on one 127.0.0.1 port: the parts of the ServiceNow Table API,
//! the GitHub REST API and the PagerDuty REST API that post-backs use. Paths do not collide.
//!
//! Accepted credentials: ServiceNow basic `snow-bot`/`snow-pass` or bearer `snow-token`; GitHub
//! bearer `gh-token`; PagerDuty `Token token=pd-key` plus a `From` header. Wrong or missing
//! auth answers 401. Only authenticated, valid writes are recorded.
//!
//! Records that do not exist (404): a ServiceNow sys_id that is not 32 lowercase hex digits (or
//! is all zeros), a GitHub issue number at or above [`GITHUB_MISSING_ISSUE`], a PagerDuty
//! incident id that is not `[A-Z0-9]+`.
#![allow(dead_code)]

mod hooks;
mod table;

#[allow(unused_imports)] // not every test crate uses it
pub use hooks::FakeDelivery;

use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// GitHub issue numbers from here on do not exist.
pub const GITHUB_MISSING_ISSUE: u64 = 1_000_000;

#[derive(Default)]
struct State {
    requests: usize,
    next_id: u64,
    snow: HashMap<String, Vec<(String, String)>>,
    gh_comments: HashMap<(String, u64), Vec<String>>,
    gh_statuses: HashMap<(String, String), Vec<Value>>,
    pd_notes: HashMap<String, Vec<String>>,
    /// (remaining, status, Retry-After seconds)
    fail: Option<(usize, u16, Option<u64>)>,
    /// (remaining, seconds until the reset)
    gh_limited: Option<(usize, u64)>,
    /// GitHub webhook delivery logs (`hooks.rs`).
    hooks: hooks::Hooks,
    /// ServiceNow table rows (`table.rs`).
    tables: table::Tables,
    /// Paths (by prefix) answered only after a delay.
    slow: Vec<(String, std::time::Duration)>,
    /// GitHub: (repo, login) -> permission (`read` for anyone not set).
    gh_permissions: HashMap<(String, String), String>,
    /// GitHub: `org/team` -> active member logins.
    gh_teams: HashMap<String, Vec<String>>,
}

/// Handle on the running fake; clones share state. The server stops when the last clone drops.
#[derive(Clone)]
pub struct FakeTickets {
    state: Arc<Mutex<State>>,
    port: u16,
    tls: bool,
    _guard: Arc<StopOnDrop>,
}

struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
    /// Work done after answering (a GitHub redelivery).
    then: Option<hooks::Send>,
}

fn resp(status: u16, body: Value) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body,
        then: None,
    }
}

/// What `route` needs to know about a request.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    host: &'a str,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

impl FakeTickets {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Over HTTPS with this server identity (see `support::tls`).
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake tickets binds");
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let app = Router::new().fallback(handle).with_state(state.clone());
        let stopped = stop.clone();
        let tls_on = tls.is_some();
        tokio::spawn(async move {
            let _ = match tls {
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stopped.cancelled_owned())
                        .await
                }
                Some(cfg) => {
                    axum::serve(super::tls::TlsListener::new(listener, cfg), app)
                        .with_graceful_shutdown(stopped.cancelled_owned())
                        .await
                }
            };
        });
        FakeTickets {
            state,
            port,
            tls: tls_on,
            _guard: Arc::new(StopOnDrop(stop)),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    fn st(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn servicenow_notes(&self, sys_id: &str) -> Vec<(String, String)> {
        self.st().snow.get(sys_id).cloned().unwrap_or_default()
    }

    pub fn github_comments(&self, repo: &str, number: u64) -> Vec<String> {
        let key = (repo.to_string(), number);
        self.st().gh_comments.get(&key).cloned().unwrap_or_default()
    }

    pub fn github_statuses(&self, repo: &str, sha: &str) -> Vec<Value> {
        let key = (repo.to_string(), sha.to_string());
        self.st().gh_statuses.get(&key).cloned().unwrap_or_default()
    }

    pub fn pagerduty_notes(&self, incident: &str) -> Vec<String> {
        self.st()
            .pd_notes
            .get(incident)
            .cloned()
            .unwrap_or_default()
    }

    /// Every request received, refused ones included.
    pub fn requests(&self) -> usize {
        self.st().requests
    }

    /// The next `n` requests answer `status`, with `Retry-After` when given.
    pub fn fail_next(&self, n: usize, status: u16, retry_after_secs: Option<u64>) {
        self.st().fail = Some((n, status, retry_after_secs));
    }

    /// Every request answers 503 (no Retry-After) until `set_down(false)`.
    /// Requests whose path starts with `prefix` are answered `delay` late (after being handled).
    pub fn set_slow(&self, prefix: &str, delay: std::time::Duration) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.slow.push((prefix.to_string(), delay));
    }

    /// GitHub's permission of `login` on `repo` (admin, maintain, write, triage, read).
    pub fn set_github_permission(&self, repo: &str, login: &str, permission: &str) {
        self.st()
            .gh_permissions
            .insert((repo.into(), login.into()), permission.into());
    }

    /// `login` is an active member of `org/team`.
    pub fn add_github_team_member(&self, team: &str, login: &str) {
        self.st()
            .gh_teams
            .entry(team.into())
            .or_default()
            .push(login.into());
    }

    pub fn set_down(&self, down: bool) {
        self.st().fail = down.then_some((usize::MAX, 503, None));
    }

    /// The next `n` GitHub requests hit the primary rate limit: 403 with
    /// `x-ratelimit-remaining: 0` and `x-ratelimit-reset` `reset_in_secs` from now.
    pub fn set_github_rate_limited(&self, n: usize, reset_in_secs: u64) {
        self.st().gh_limited = Some((n, reset_in_secs));
    }
}

async fn handle(AxState(state): AxState<Arc<Mutex<State>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut delay = None;
    let mut r = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        st.requests += 1;
        let path = parts.uri.path();
        delay = st
            .slow
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            .map(|(_, d)| *d)
            .or(delay);
        let req = Req {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            host: header(&parts.headers, "host").unwrap_or("127.0.0.1"),
            headers: &parts.headers,
            body: &body,
        };
        route(&mut st, &req)
    };
    if let Some(send) = r.then.take() {
        tokio::spawn(send.run(state.clone()));
    }
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    let mut out = Response::new(Body::from(r.body.to_string()));
    *out.status_mut() = StatusCode::from_u16(r.status).unwrap();
    let h = out.headers_mut();
    h.insert("content-type", "application/json".parse().unwrap());
    for (k, v) in r.headers {
        h.insert(k, v.parse().unwrap());
    }
    out
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn now_iso() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn route(st: &mut State, req: &Req) -> Resp {
    let (method, path, h, body) = (req.method, req.path, req.headers, req.body);
    if let Some((n, status, after)) = st.fail.take() {
        if n > 1 {
            st.fail = Some((n - 1, status, after));
        }
        let mut r = resp(status, json!({"error": {"message": "injected failure"}}));
        if let Some(a) = after {
            r.headers.push(("retry-after", a.to_string()));
        }
        return r;
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("PATCH" | "PUT", ["api", "now", "table", table, sys_id]) => {
            servicenow(st, table, sys_id, h, body)
        }
        ("GET", ["api", "now", "table", table]) => match snow_auth(h) {
            Some(refused) => refused,
            None => table::list(&mut st.tables, table, req.query),
        },
        (_, ["repos", _, _, "hooks", ..] | ["orgs", _, "hooks", ..]) => {
            match github_checks(st, h) {
                Some(refused) => refused,
                None => hooks::route(&mut st.hooks, req, &segs),
            }
        }
        (_, ["repos", ..]) => github(st, method, &segs[1..], h, body),
        ("GET", ["orgs", org, "teams", team, "memberships", login]) => match github_checks(st, h) {
            Some(refused) => refused,
            None => {
                let members = st.gh_teams.get(&format!("{org}/{team}"));
                match members.is_some_and(|m| m.iter().any(|x| x == login)) {
                    true => resp(200, json!({"state": "active", "role": "member"})),
                    false => gh_error(404, "Not Found"),
                }
            }
        },
        ("POST", ["incidents", id, "notes"]) => pagerduty(st, id, h, body),
        _ => resp(
            404,
            json!({"error": {"message": "no such path in the fake"}}),
        ),
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn json_body(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

// ---- ServiceNow Table API ----

/// A 401 unless the request carries the ServiceNow credentials.
fn snow_auth(h: &HeaderMap) -> Option<Resp> {
    let basic = base64::engine::general_purpose::STANDARD.encode("snow-bot:snow-pass");
    let auth = header(h, "authorization").unwrap_or("");
    if auth != format!("Basic {basic}") && auth != "Bearer snow-token" {
        return Some(resp(
            401,
            json!({"error": {"message": "User Not Authenticated",
                "detail": "Required to provide Auth information"}, "status": "failure"}),
        ));
    }
    None
}

fn servicenow(st: &mut State, table: &str, sys_id: &str, h: &HeaderMap, body: &[u8]) -> Resp {
    if let Some(refused) = snow_auth(h) {
        return refused;
    }
    let exists = sys_id.len() == 32
        && sys_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && sys_id.bytes().any(|b| b != b'0');
    if !exists {
        return resp(
            404,
            json!({"error": {"message": "No Record found",
                "detail": "Record doesn't exist or ACL restricts the record retrieval"},
                "status": "failure"}),
        );
    }
    let Some(Value::Object(fields)) = json_body(body) else {
        return resp(
            400,
            json!({"error": {"message": "Exception while reading request",
                "detail": "The payload is not valid JSON."}, "status": "failure"}),
        );
    };
    let notes = st.snow.entry(sys_id.to_string()).or_default();
    for key in ["work_notes", "comments"] {
        if let Some(Value::String(text)) = fields.get(key) {
            if !text.is_empty() {
                notes.push((key.to_string(), text.clone()));
            }
        }
    }
    resp(
        200,
        json!({"result": {
            "sys_id": sys_id,
            "sys_class_name": table,
            "number": "INC0010001",
            "work_notes": "",
            "comments": "",
            "sys_updated_on": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
            "sys_updated_by": "snow-bot",
        }}),
    )
}

// ---- GitHub REST API ----

fn gh_error(status: u16, message: &str) -> Resp {
    resp(
        status,
        json!({"message": message, "documentation_url": "https://docs.github.com/rest",
            "status": status.to_string()}),
    )
}

/// The rate limit, User-Agent, token and API version checks every GitHub call passes first.
fn github_checks(st: &mut State, h: &HeaderMap) -> Option<Resp> {
    if let Some((n, reset_in)) = st.gh_limited.take() {
        if n > 1 {
            st.gh_limited = Some((n - 1, reset_in));
        }
        let mut r = gh_error(403, "API rate limit exceeded for user ID 1.");
        r.headers.extend([
            ("x-ratelimit-limit", "5000".to_string()),
            ("x-ratelimit-remaining", "0".to_string()),
            ("x-ratelimit-used", "5000".to_string()),
            ("x-ratelimit-reset", (now_secs() + reset_in).to_string()),
            ("x-ratelimit-resource", "core".to_string()),
        ]);
        return Some(r);
    }
    if header(h, "user-agent").is_none_or(str::is_empty) {
        return Some(gh_error(403, "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"));
    }
    let auth = header(h, "authorization").unwrap_or("");
    if auth != "Bearer gh-token" && auth != "token gh-token" {
        return Some(gh_error(401, "Bad credentials"));
    }
    if header(h, "x-github-api-version").is_some_and(|v| v != "2022-11-28") {
        return Some(gh_error(400, "Unsupported 'X-GitHub-Api-Version'"));
    }
    None
}

fn github(st: &mut State, method: &str, segs: &[&str], h: &HeaderMap, body: &[u8]) -> Resp {
    if let Some(refused) = github_checks(st, h) {
        return refused;
    }
    let valid_part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    let (owner, name, rest) = match segs {
        [o, n, rest @ ..] if valid_part(o) && valid_part(n) => (*o, *n, rest),
        _ => return gh_error(404, "Not Found"),
    };
    let repo = format!("{owner}/{name}");
    match (method, rest) {
        ("POST", ["issues", number, "comments"]) => {
            let Ok(number) = number.parse::<u64>() else {
                return gh_error(404, "Not Found");
            };
            if number == 0 || number >= GITHUB_MISSING_ISSUE {
                return gh_error(404, "Not Found");
            }
            let Some(text) = json_body(body)
                .and_then(|v| v.get("body").and_then(Value::as_str).map(str::to_string))
            else {
                return gh_error(422, "Invalid request.\n\n\"body\" wasn't supplied.");
            };
            st.next_id += 1;
            let id = st.next_id;
            st.gh_comments
                .entry((repo.clone(), number))
                .or_default()
                .push(text.clone());
            let mut r = resp(
                201,
                json!({
                    "id": id,
                    "node_id": format!("IC_{id}"),
                    "url": format!("https://api.github.com/repos/{repo}/issues/comments/{id}"),
                    "html_url": format!("https://github.com/{repo}/issues/{number}#issuecomment-{id}"),
                    "issue_url": format!("https://api.github.com/repos/{repo}/issues/{number}"),
                    "body": text,
                    "user": {"login": "aap-bridge[bot]", "type": "Bot"},
                    "created_at": now_iso(),
                    "updated_at": now_iso(),
                    "author_association": "NONE",
                }),
            );
            r.headers.push((
                "location",
                format!("https://api.github.com/repos/{repo}/issues/comments/{id}"),
            ));
            r
        }
        ("GET", ["collaborators", login, "permission"]) => {
            let permission = st
                .gh_permissions
                .get(&(repo.clone(), login.to_string()))
                .cloned()
                .unwrap_or_else(|| "read".into());
            resp(
                200,
                json!({"permission": permission, "role_name": permission,
                    "user": {"login": login, "type": "User"}}),
            )
        }
        ("POST", ["statuses", sha]) => {
            if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return gh_error(422, &format!("No commit found for SHA: {sha}"));
            }
            let Some(Value::Object(input)) = json_body(body) else {
                return gh_error(400, "Problems parsing JSON");
            };
            let state = input.get("state").and_then(Value::as_str).unwrap_or("");
            if !matches!(state, "pending" | "success" | "failure" | "error") {
                return gh_error(422, "Validation Failed: state is not included in the list");
            }
            let description = input.get("description").and_then(Value::as_str);
            if description.is_some_and(|d| d.chars().count() > 140) {
                return gh_error(
                    422,
                    "Validation Failed: description is too long (maximum is 140 characters)",
                );
            }
            st.next_id += 1;
            let id = st.next_id;
            let status = json!({
                "id": id,
                "url": format!("https://api.github.com/repos/{repo}/statuses/{sha}"),
                "state": state,
                "description": description,
                "target_url": input.get("target_url").cloned().unwrap_or(Value::Null),
                "context": input.get("context").and_then(Value::as_str).unwrap_or("default"),
                "created_at": now_iso(),
                "updated_at": now_iso(),
                "creator": {"login": "aap-bridge[bot]", "type": "Bot"},
            });
            st.gh_statuses
                .entry((repo, sha.to_string()))
                .or_default()
                .push(status.clone());
            resp(201, status)
        }
        _ => gh_error(404, "Not Found"),
    }
}

// ---- PagerDuty REST API ----

fn pd_error(status: u16, message: &str, code: u32, errors: &[&str]) -> Resp {
    resp(
        status,
        json!({"error": {"message": message, "code": code, "errors": errors}}),
    )
}

fn pagerduty(st: &mut State, id: &str, h: &HeaderMap, body: &[u8]) -> Resp {
    if header(h, "authorization") != Some("Token token=pd-key") {
        return pd_error(401, "Unauthorized", 2006, &[]);
    }
    let Some(from) = header(h, "from").filter(|f| f.contains('@')) else {
        return pd_error(
            400,
            "Invalid Input Provided",
            2001,
            &["The From header is required and must be a valid email address"],
        );
    };
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return pd_error(404, "Not Found", 2100, &[]);
    }
    let content = json_body(body).and_then(|v| {
        v.pointer("/note/content")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let Some(content) = content.filter(|c| !c.is_empty()) else {
        return pd_error(
            400,
            "Invalid Input Provided",
            2001,
            &["Note content can't be blank."],
        );
    };
    st.next_id += 1;
    let note_id = format!("PN{:06}", st.next_id);
    st.pd_notes
        .entry(id.to_string())
        .or_default()
        .push(content.clone());
    resp(
        201,
        json!({"note": {
            "id": note_id,
            "user": {"id": "PUSER01", "type": "user_reference", "summary": from},
            "channel": {"summary": "The PagerDuty REST API"},
            "content": content,
            "created_at": now_iso(),
        }}),
    )
}
