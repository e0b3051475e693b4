//! Catch-up: deliveries from senders that never retry. A GitHub webhook delivery or a ServiceNow
//! business-rule call that fails while the bridge is away is not sent again by the sender, so a
//! pass per source looks for what is missing afterwards:
//! - GitHub: the hooks' delivery logs; a failed delivery the bridge does not have is
//!   redelivered at the bridge's request, once, and arrives signed through `/hooks`;
//! - ServiceNow: the Table API; records updated since the checkpoint are stored through the
//!   same normalizer and dedupe key as a business-rule delivery of that record version.
//!
//! One replica runs a source's pass at a time (an advisory lock held for the pass); two passes
//! could not store a record twice anyway, because the dedupe key is unique.

mod github;
mod github_api;
pub use crate::domain::snow_query as query;
mod servicenow;
mod summary;

pub use summary::{Redelivery, Summary};

use crate::config::{CatchUpPlan, Pace, Settings};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

enum Runner {
    Github(github::Github),
    Servicenow(servicenow::ServiceNow),
}

/// The catch-up of every source that has `catch_up:`. Cheap to share.
pub struct CatchUp {
    pool: PgPool,
    runners: BTreeMap<String, (Runner, u64)>,
    /// Every configured source, to tell an unknown one from one without catch-up.
    names: Vec<String>,
    /// This replica's dispatcher, woken when records were stored.
    wake: Option<Arc<Notify>>,
    /// Fault injection: passes skip the lock, as if two replicas ran at once.
    without_lock: Arc<AtomicBool>,
}

/// Why a pass did not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    #[error("source `{0}` has no catch_up: configured")]
    NotConfigured(String),
    #[error("a catch-up pass for `{0}` is still running (on this or another replica); try again")]
    Busy(String),
    #[error("database error, retry later")]
    Database(#[from] sqlx::Error),
}

impl CatchUp {
    pub fn new(
        settings: &Settings,
        pool: PgPool,
        wake: Option<Arc<Notify>>,
        without_lock: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        let sources = crate::sources::build(settings);
        let mut runners = BTreeMap::new();
        for (name, s) in &settings.sources {
            let Some(plan) = s.catch_up_plan() else {
                continue;
            };
            let plan = plan.map_err(|e| format!("sources.{name}: {e}"))?;
            let every = match &plan {
                CatchUpPlan::Github(g) => g.pace.interval_secs,
                CatchUpPlan::Servicenow(s) => s.pace.interval_secs,
            };
            let runner = match plan {
                CatchUpPlan::Github(g) => Runner::Github(github::Github::new(g)?),
                CatchUpPlan::Servicenow(p) => {
                    Runner::Servicenow(servicenow::ServiceNow::new(p, sources[name].clone())?)
                }
            };
            runners.insert(name.clone(), (runner, every));
        }
        Ok(CatchUp {
            pool,
            runners,
            names: settings.sources.keys().cloned().collect(),
            wake,
            without_lock,
        })
    }

    /// Each source with catch-up, and how often its pass runs.
    pub fn schedule(&self) -> Vec<(String, Duration)> {
        self.runners
            .iter()
            .map(|(name, (_, every))| (name.clone(), Duration::from_secs(*every)))
            .collect()
    }

    /// One pass for `source`, from `since` instead of the checkpoint when given. `wait`: wait
    /// for a pass already running (an operator's call); otherwise skip (the background pass).
    pub async fn run(
        &self,
        source: &str,
        since: Option<DateTime<Utc>>,
        wait: bool,
    ) -> Result<Summary, RunError> {
        let (runner, _) = self.runners.get(source).ok_or_else(|| {
            let name = source.escape_debug().to_string();
            match self.names.iter().any(|n| n == source) {
                true => RunError::NotConfigured(name),
                false => RunError::UnknownSource(name),
            }
        })?;
        // The lock lives as long as this transaction, on a connection of its own.
        let lock = match self.without_lock.load(Ordering::Relaxed) {
            true => None,
            false => {
                let mut tx = self.pool.begin().await?;
                if !crate::store::catch_up::lock(&mut tx, source, wait).await? {
                    return Err(RunError::Busy(source.to_string()));
                }
                Some(tx)
            }
        };
        let kind = match runner {
            Runner::Github(_) => "github",
            Runner::Servicenow(_) => "servicenow",
        };
        let mut summary = Summary::new(source, kind);
        let result = match runner {
            Runner::Github(g) => g.pass(&self.pool, source, since, &mut summary).await,
            Runner::Servicenow(s) => s.pass(&self.pool, source, since, &mut summary).await,
        };
        if let Err(e) = result {
            summary.complete = false;
            summary.error = Some(e);
        }
        // Ends the transaction, which frees the lock.
        if let Some(tx) = lock {
            let _ = tx.commit().await;
        }
        if summary.stored > 0 {
            if let Some(wake) = &self.wake {
                wake.notify_one();
            }
        }
        metrics::counter!("aap_bridge_catch_up_passes_total",
            "source" => source.to_string(), "result" => summary.outcome())
        .increment(1);
        let text = summary.lines().join("; ");
        match (&summary.error, summary.did_something()) {
            (Some(_), _) => tracing::warn!(source, "{text}"),
            (None, true) => tracing::info!(source, "{text}"),
            (None, false) => tracing::debug!(source, "{text}"),
        }
        Ok(summary)
    }
}

/// The API client of one source's pass: TLS, time limits, no redirects (a redirect would carry
/// the credentials elsewhere).
fn http_client(pace: &Pace) -> Result<reqwest::Client, String> {
    let timeout = Duration::from_secs(pace.timeout_secs);
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("aap-bridge");
    if let Some(pem) = &pace.ca {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("catch_up ca_file: {e}"))?;
        if certs.is_empty() {
            return Err("catch_up ca_file holds no PEM certificate".into());
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build().map_err(|e| format!("catch_up HTTP client: {e}"))
}

/// An HTTP error, with its causes and without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
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

/// A database error inside a pass: logged, and named in the summary without its details.
fn db(e: sqlx::Error) -> String {
    tracing::warn!(error = %e, "catch-up query failed");
    "database error; the next pass tries again".into()
}

pub use crate::domain::time::parse_since;
