//! A stateful fake Ansible controller (AWX 24.6 or the AAP 2.5 gateway) over real HTTP.
//!
//! It answers like the captures in `/work/shared/reference/awx-24.6/`: same field names, status
//! codes and `X-API-*` headers, the same single 401 for every authentication failure, CSRF on
//! session logins, and jobs whose status moves with time. Tests drive it through the methods
//! below and read back what the client under test sent.

mod auth;
mod faults;
mod http;
mod jobs;
mod model;
mod render;
mod server;
mod tokens;

pub use faults::LaunchFault;
use model::{Kind, State, Template, User};
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Awx,
    Aap,
}

impl Flavour {
    fn api_root(self) -> &'static str {
        match self {
            Flavour::Awx => "/api/v2/",
            Flavour::Aap => "/api/controller/v2/",
        }
    }

    fn product_name(self) -> &'static str {
        match self {
            Flavour::Awx => "AWX",
            Flavour::Aap => "Red Hat Ansible Automation Platform",
        }
    }

    fn product_version(self) -> &'static str {
        match self {
            Flavour::Awx => "24.6.2",
            Flavour::Aap => "2.5.20260101",
        }
    }

    fn session_cookie(self) -> &'static str {
        match self {
            Flavour::Awx => "awx_sessionid",
            Flavour::Aap => "gateway_sessionid",
        }
    }

    fn login_path(self) -> &'static str {
        match self {
            Flavour::Awx => "/api/login/",
            Flavour::Aap => "/api/gateway/v1/login/",
        }
    }

    fn oauth_token_path(self) -> &'static str {
        match self {
            Flavour::Awx => "/api/o/token/",
            Flavour::Aap => "/o/token/",
        }
    }

    fn oauth_revoke_path(self) -> &'static str {
        match self {
            Flavour::Awx => "/api/o/revoke_token/",
            Flavour::Aap => "/o/revoke_token/",
        }
    }

    /// Session cookie lifetime: AWX 1800 s; the gateway's default is 900 s (reference README).
    fn session_max_age(self) -> i64 {
        match self {
            Flavour::Awx => 1800,
            Flavour::Aap => 900,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TemplateSpec {
    pub id: Option<i64>,
    pub name: String,
    pub organization: String,
    pub ask_variables_on_launch: bool,
    pub ask_limit_on_launch: bool,
    pub ask_inventory_on_launch: bool,
    pub ask_credential_on_launch: bool,
    pub ask_tags_on_launch: bool,
    /// Required survey variables; a non-empty list means the survey is enabled.
    pub variables_needed: Vec<String>,
    pub missing_inventory: bool,
    /// Final status of this template's jobs: "successful" | "failed" | "error" | "canceled".
    pub outcome: String,
}

impl Default for TemplateSpec {
    fn default() -> Self {
        TemplateSpec {
            id: None,
            name: "tpl".into(),
            organization: "Default".into(),
            ask_variables_on_launch: true,
            ask_limit_on_launch: false,
            ask_inventory_on_launch: false,
            ask_credential_on_launch: false,
            ask_tags_on_launch: false,
            variables_needed: Vec::new(),
            missing_inventory: false,
            outcome: "successful".into(),
        }
    }
}

/// Handle on a running fake. Clones share the state; the server stops with `shutdown()` or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct FakeController {
    state: Arc<Mutex<State>>,
    port: u16,
    tls: bool,
    flavour: Flavour,
    stop: CancellationToken,
    _guard: Arc<StopOnDrop>,
}

struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl FakeController {
    pub async fn start(flavour: Flavour) -> FakeController {
        Self::start_with(flavour, None).await
    }

    /// Over HTTPS with this server identity (see `support::tls`). Like Django behind TLS, it
    /// then checks `Referer` on unsafe session requests.
    pub async fn start_tls(flavour: Flavour, tls: Arc<rustls::ServerConfig>) -> FakeController {
        Self::start_with(flavour, Some(tls)).await
    }

    async fn start_with(
        flavour: Flavour,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> FakeController {
        let mut st = State::new(flavour);
        st.tls = tls.is_some();
        let tls_on = st.tls;
        let state = Arc::new(Mutex::new(st));
        let stop = CancellationToken::new();
        let port = server::serve(state.clone(), stop.clone(), tls).await;
        FakeController {
            state,
            port,
            tls: tls_on,
            flavour,
            stop: stop.clone(),
            _guard: Arc::new(StopOnDrop(stop)),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn api_root(&self) -> &'static str {
        self.flavour.api_root()
    }

    fn st(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take every later request down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_user(&self, username: &str, password: &str, can_launch: bool) -> i64 {
        let mut st = self.st();
        let id = st.users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
        st.users.push(User {
            id,
            username: username.into(),
            password: password.into(),
            can_launch,
            superuser: false,
            teams: Vec::new(),
        });
        id
    }

    /// A person with a controller account: a superuser or not, in these teams.
    pub fn add_person(
        &self,
        username: &str,
        password: &str,
        superuser: bool,
        teams: &[&str],
    ) -> i64 {
        let id = self.add_user(username, password, false);
        let mut st = self.st();
        let u = st
            .users
            .iter_mut()
            .find(|u| u.id == id)
            .expect("just added");
        u.superuser = superuser;
        u.teams = teams.iter().map(|t| t.to_string()).collect();
        id
    }

    pub fn add_job_template(&self, t: TemplateSpec) -> i64 {
        self.add_template(Kind::Job, t)
    }

    pub fn add_workflow_template(&self, t: TemplateSpec) -> i64 {
        self.add_template(Kind::Workflow, t)
    }

    fn add_template(&self, kind: Kind, spec: TemplateSpec) -> i64 {
        let mut st = self.st();
        // Job and workflow templates share one id space, as unified job templates do in AWX.
        let id = spec.id.unwrap_or(st.next_template);
        st.next_template = st.next_template.max(id + 1);
        let org_id = st.org_id(&spec.organization);
        let created = chrono::Utc::now();
        st.templates.insert(
            id,
            Template {
                id,
                kind,
                spec,
                org_id,
                created,
            },
        );
        id
    }

    /// Pins a job's status from now on (the time-based lifecycle no longer applies).
    pub fn set_job_status(&self, id: i64, status: &str) {
        let mut st = self.st();
        let now = chrono::Utc::now();
        let outcome = st.outcome_of(id);
        if let Some(job) = st.jobs.get_mut(&id) {
            job.force(status, &outcome, now);
        }
    }

    /// Deletes a template (and so its job list answers 404 from now on).
    pub fn delete_template(&self, id: i64) {
        self.st().templates.remove(&id);
    }

    /// Deletes a job, as an operator or AWX's cleanup job would: it vanishes from every list.
    pub fn delete_job(&self, id: i64) {
        self.st().jobs.remove(&id);
    }

    pub fn job(&self, id: i64) -> Option<Value> {
        let st = self.st();
        let job = st.jobs.get(&id)?;
        Some(render::job_json(&st, job, chrono::Utc::now()))
    }

    /// The `aap_bridge_launch_id` of every job that exists (None: a job without the marker).
    pub fn job_markers(&self) -> Vec<Option<String>> {
        let st = self.st();
        st.jobs
            .values()
            .map(|j| {
                let key = "\"aap_bridge_launch_id\": \"";
                let start = j.extra_vars.find(key)? + key.len();
                let len = j.extra_vars[start..].find('"')?;
                Some(j.extra_vars[start..start + len].to_string())
            })
            .collect()
    }

    pub fn jobs_launched(&self) -> usize {
        self.st().jobs_launched
    }

    /// Every body POSTed (and authenticated) to a launch endpoint, accepted or refused, in
    /// order, each with `"template_id"` added.
    pub fn launches(&self) -> Vec<Value> {
        self.st().launches.clone()
    }

    /// Live tokens as (id, username, description): personal ones created through the tokens
    /// endpoints, and OAuth2 access tokens from grants (empty description), as AWX lists them.
    pub fn tokens(&self) -> Vec<(i64, String, String)> {
        let st = self.st();
        st.tokens
            .values()
            .map(|t| (t.id, st.username(t.user_id), t.description.clone()))
            .collect()
    }

    /// The secret value of a live token (what a client sends as Bearer).
    pub fn token_value(&self, id: i64) -> Option<String> {
        self.st().tokens.get(&id).map(|t| t.key.clone())
    }

    pub fn tokens_created(&self) -> usize {
        self.st().tokens_created
    }

    pub fn revoke_token(&self, id: i64) {
        self.st().tokens.remove(&id);
    }

    pub fn revoke_all_tokens(&self) {
        self.st().tokens.clear();
    }

    pub fn expire_sessions(&self) {
        self.st().sessions.clear();
    }

    /// Revokes every OAuth2 access token a grant created (their refresh tokens stay valid).
    pub fn expire_oauth_access_tokens(&self) {
        self.st().tokens.retain(|_, t| t.application.is_none());
    }

    /// Live OAuth2 access tokens from grants, as (id, client id).
    pub fn oauth_tokens(&self) -> Vec<(i64, String)> {
        self.st()
            .tokens
            .values()
            .filter_map(|t| Some((t.id, t.application.clone()?)))
            .collect()
    }

    /// How long after a job ends `event_processing_finished` stays false and its stdout is cut
    /// short (default 1 s, as measured on AWX 24.6.1); None: processing never finishes.
    pub fn set_event_processing_delay(&self, d: Option<Duration>) {
        self.st().event_delay = d;
    }

    /// Requests whose method matches (case-insensitive; "" or "*" = any) and whose path (no
    /// query) starts with `path_prefix`. Counts everything received, faults included.
    pub fn requests(&self, method: &str, path_prefix: &str) -> usize {
        let any = method.is_empty() || method == "*";
        self.st()
            .requests
            .iter()
            .filter(|(m, p)| (any || m.eq_ignore_ascii_case(method)) && p.starts_with(path_prefix))
            .count()
    }

    pub fn reset_requests(&self) {
        self.st().requests.clear();
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        self.st().fail_next = (n, status);
    }

    pub fn set_down(&self, down: bool) {
        self.st().down = down;
    }

    /// The controller is down behind a gateway that still answers: every request gets the
    /// 503 AAP's Envoy-based gateway sends when it cannot connect upstream (nothing is acted on).
    pub fn set_gateway_down(&self, down: bool) {
        self.st().gateway_down = down;
    }

    /// What `settings/jobs/` answers for ALLOW_JINJA_IN_EXTRA_VARS (default `template`).
    pub fn set_allow_jinja(&self, value: &str) {
        self.st().allow_jinja = Ok(value.into());
    }

    /// `settings/jobs/` answers 403 (the user may not read settings) or 404.
    pub fn set_settings_jobs_status(&self, status: u16) {
        self.st().allow_jinja = Err(status);
    }

    /// Applies to jobs launched afterwards: pending for d/2, running until d, then the outcome.
    pub fn set_job_duration(&self, d: Duration) {
        self.st().job_duration = d;
    }

    /// Applies `fault` to the next `n` launch POSTs.
    pub fn set_launch_fault(&self, fault: LaunchFault, n: usize) {
        self.st().faults.launch = (n > 0).then_some((fault, n));
    }

    /// Delays every template list answer (lookups by name) by `d`.
    pub fn set_lookup_delay(&self, d: Duration) {
        self.st().faults.lookup_delay = d;
    }

    /// Every list answer gets an absolute `next` link on `origin` (e.g. another host).
    pub fn set_next_origin(&self, origin: Option<&str>) {
        self.st().next_origin = origin.map(str::to_string);
    }

    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}
