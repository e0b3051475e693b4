//! The fake's state: users, templates, jobs, credentials of every kind, faults, accounting.

use super::{Flavour, TemplateSpec};
use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub struct User {
    pub id: i64,
    pub username: String,
    pub password: String,
    pub can_launch: bool,
    pub superuser: bool,
    /// Team names (`users/{id}/teams/`).
    pub teams: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Job,
    Workflow,
}

pub struct Template {
    pub id: i64,
    pub kind: Kind,
    pub spec: TemplateSpec,
    pub org_id: i64,
    pub created: DateTime<Utc>,
}

/// Where a job is in its life at some instant.
#[derive(Clone, Debug)]
pub struct Phase {
    pub status: String,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
}

impl Phase {
    pub fn pending() -> Phase {
        Phase {
            status: "pending".into(),
            started: None,
            finished: None,
        }
    }

    pub fn failed(&self) -> bool {
        matches!(self.status.as_str(), "failed" | "error" | "canceled")
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self.status.as_str(),
            "successful" | "failed" | "error" | "canceled"
        )
    }

    pub fn elapsed(&self) -> f64 {
        match (self.started, self.finished) {
            (Some(s), Some(f)) => (f - s).num_milliseconds() as f64 / 1000.0,
            _ => 0.0,
        }
    }
}

pub struct Job {
    pub id: i64,
    pub kind: Kind,
    pub template_id: i64,
    pub created: DateTime<Utc>,
    /// Captured at launch so changing the default later does not rewrite history.
    pub duration: Duration,
    pub extra_vars: String,
    pub limit: String,
    pub inventory: Option<i64>,
    pub job_tags: String,
    pub launched_by: i64,
    /// Set by `set_job_status` or cancel: the time-based lifecycle stops applying.
    pub forced: Option<Phase>,
}

impl Job {
    pub fn phase(&self, outcome: &str, now: DateTime<Utc>) -> Phase {
        if let Some(p) = &self.forced {
            return p.clone();
        }
        let d = chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::zero());
        let half = d / 2;
        let elapsed = now - self.created;
        if d.is_zero() {
            return Phase {
                status: outcome.into(),
                started: Some(self.created),
                finished: Some(self.created),
            };
        }
        if elapsed < half {
            Phase::pending()
        } else if elapsed < d {
            Phase {
                status: "running".into(),
                started: Some(self.created + half),
                finished: None,
            }
        } else {
            Phase {
                status: outcome.into(),
                started: Some(self.created + half),
                finished: Some(self.created + d),
            }
        }
    }

    pub fn force(&mut self, status: &str, outcome: &str, now: DateTime<Utc>) {
        let before = self.phase(outcome, now);
        let phase = match status {
            "new" | "pending" | "waiting" => Phase {
                status: status.into(),
                started: None,
                finished: None,
            },
            "running" => Phase {
                status: status.into(),
                started: before.started.or(Some(now)),
                finished: None,
            },
            // A job canceled before it started never gets a start time.
            "canceled" => Phase {
                status: status.into(),
                started: before.started,
                finished: before.finished.filter(|_| before.is_final()).or(Some(now)),
            },
            _ => Phase {
                status: status.into(),
                started: before.started.or(Some(now)),
                finished: Some(now),
            },
        };
        self.forced = Some(phase);
    }
}

pub struct Token {
    pub id: i64,
    pub user_id: i64,
    /// The OAuth2 application (client id) of a password grant's access token.
    pub application: Option<String>,
    pub description: String,
    pub key: String,
    pub scope: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

pub struct Session {
    pub user_id: i64,
    pub csrf: String,
    pub expires: DateTime<Utc>,
}

pub struct OAuthRefresh {
    pub user_id: i64,
    pub scope: String,
    pub client_id: String,
    pub access: String,
}

pub struct State {
    pub flavour: Flavour,
    pub users: Vec<User>,
    pub orgs: Vec<String>,
    pub templates: BTreeMap<i64, Template>,
    pub next_template: i64,
    pub jobs: BTreeMap<i64, Job>,
    pub next_job: i64,
    pub jobs_launched: usize,
    pub launches: Vec<Value>,
    pub tokens: BTreeMap<i64, Token>,
    pub next_token: i64,
    pub tokens_created: usize,
    pub apps: HashMap<String, String>,
    pub oauth_refresh: HashMap<String, OAuthRefresh>,
    /// Tower <= 3.2 `Authorization: Token` keys: key -> (user id, expiry).
    pub authtokens: HashMap<String, (i64, DateTime<Utc>)>,
    pub sessions: HashMap<String, Session>,
    pub requests: Vec<(String, String)>,
    pub fail_next: (usize, u16),
    pub down: bool,
    /// The gateway answers, the controller behind it does not (Envoy's 503).
    pub gateway_down: bool,
    pub job_duration: Duration,
    pub faults: super::faults::Faults,
    /// How long after a job ends its events are still being processed (None: forever).
    pub event_delay: Option<Duration>,
    /// Served over HTTPS: unsafe session requests need a same-origin `Referer`, as in Django.
    pub tls: bool,
    /// Makes `next` links absolute on this origin (tests of cross-origin pagination).
    pub next_origin: Option<String>,
    /// `settings/jobs/` ALLOW_JINJA_IN_EXTRA_VARS; Err(status) answers 403 or 404 instead.
    pub allow_jinja: Result<String, u16>,
}

impl State {
    pub fn new(flavour: Flavour) -> State {
        State {
            flavour,
            users: vec![User {
                id: 1,
                username: "svc".into(),
                password: "svc-pass".into(),
                can_launch: true,
                superuser: false,
                teams: Vec::new(),
            }],
            orgs: vec!["Default".into()],
            templates: BTreeMap::new(),
            next_template: 1,
            jobs: BTreeMap::new(),
            next_job: 1,
            jobs_launched: 0,
            launches: Vec::new(),
            tokens: BTreeMap::new(),
            next_token: 1,
            tokens_created: 0,
            apps: HashMap::from([("bridge-app".into(), "bridge-app-secret".into())]),
            oauth_refresh: HashMap::new(),
            authtokens: HashMap::new(),
            sessions: HashMap::new(),
            requests: Vec::new(),
            fail_next: (0, 503),
            down: false,
            gateway_down: false,
            job_duration: Duration::ZERO,
            faults: Default::default(),
            // AWX 24.6.1: about a second between `failed` and `event_processing_finished`.
            event_delay: Some(Duration::from_secs(1)),
            tls: false,
            next_origin: None,
            allow_jinja: Ok("template".into()),
        }
    }

    pub fn org_id(&mut self, name: &str) -> i64 {
        let idx = match self.orgs.iter().position(|o| o == name) {
            Some(i) => i,
            None => {
                self.orgs.push(name.into());
                self.orgs.len() - 1
            }
        };
        idx as i64 + 1
    }

    pub fn user(&self, id: i64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn username(&self, id: i64) -> String {
        self.user(id)
            .map(|u| u.username.clone())
            .unwrap_or_default()
    }

    pub fn check_password(&self, username: &str, password: &str) -> Option<i64> {
        self.users
            .iter()
            .find(|u| u.username == username && u.password == password)
            .map(|u| u.id)
    }

    pub fn outcome_of(&self, job_id: i64) -> String {
        self.jobs
            .get(&job_id)
            .and_then(|j| self.templates.get(&j.template_id))
            .map(|t| t.spec.outcome.clone())
            .unwrap_or_else(|| "successful".into())
    }

    pub fn phase_of(&self, job: &Job, now: DateTime<Utc>) -> Phase {
        job.phase(&self.outcome_of(job.id), now)
    }

    /// AWX's `event_processing_finished`: the job has ended and its output is all saved.
    pub fn events_processed(&self, p: &Phase, now: DateTime<Utc>) -> bool {
        let Some(delay) = self.event_delay else {
            return false;
        };
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        match (p.is_final(), p.finished) {
            (true, Some(f)) => f.checked_add_signed(delay).is_some_and(|end| now >= end),
            (true, None) => true,
            _ => false,
        }
    }
}

pub fn random_key(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
