//! The console's first page: what came in and went out lately, what waits, what failed.

use super::{Admin, Result};
use crate::controller::{Flavour, Health};
use crate::mapping::ReloadStatus;
use crate::store::admin::{CallbackView, EventSummary};
use crate::store::overview::{self as store, Counted, LaunchBrief, StateCount};
use serde::Serialize;

/// How many of the latest failures and dead letters the overview lists.
const LATEST: i64 = 10;

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// This build of aap-bridge.
    pub version: &'static str,
    pub events: Vec<StateCount>,
    pub launches: Vec<StateCount>,
    pub callbacks: Vec<StateCount>,
    pub queues: Vec<Queue>,
    pub controller: ControllerView,
    /// Age of the stored controller token (managed token modes), in seconds.
    pub token_age_secs: Option<f64>,
    pub rules: usize,
    /// Rules paused now (their launches are held).
    pub paused: Vec<super::RuleState>,
    pub last_reload: Option<ReloadStatus>,
    pub failed_events: Vec<EventSummary>,
    pub failed_launches: Vec<LaunchBrief>,
    pub dead_letters: Vec<CallbackView>,
    /// Per source, what `/hooks` answered in the last 24 hours.
    pub deliveries: Vec<crate::deliveries::sql::SourceCounts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub name: String,
    pub depth: i64,
}

/// The controller as this replica knows it, without calling it.
#[derive(Debug, Clone, Serialize)]
pub struct ControllerView {
    /// False in dry-run (no controller configured).
    pub configured: bool,
    pub url: Option<String>,
    /// Known once discovery has run (the first launch or probe).
    pub flavour: Option<Flavour>,
    pub api_root: Option<String>,
    pub version: Option<String>,
    pub health: Option<Health>,
}

impl Admin {
    pub fn controller_view(&self) -> ControllerView {
        let api = self.controller.as_ref().and_then(|c| c.discovered());
        ControllerView {
            configured: self.controller.is_some(),
            url: self.controller.as_ref().map(|c| c.base_url().to_string()),
            flavour: api.map(|a| a.flavour),
            api_root: api.map(|a| a.root.clone()),
            version: api.and_then(|a| a.version.clone()),
            health: self.health.as_ref().map(|h| h.get()),
        }
    }

    pub async fn overview(&self) -> Result<Overview> {
        let pool = &self.pool;
        let queues = store::queue_depths(pool)
            .await?
            .into_iter()
            .map(|(name, depth)| Queue { name, depth })
            .collect();
        let mappings = self.mappings.current();
        Ok(Overview {
            version: env!("CARGO_PKG_VERSION"),
            events: store::state_counts(pool, Counted::Events).await?,
            launches: store::state_counts(pool, Counted::Launches).await?,
            callbacks: store::state_counts(pool, Counted::Callbacks).await?,
            queues,
            controller: self.controller_view(),
            token_age_secs: store::token_age_secs(pool).await?,
            rules: mappings.len(),
            paused: self
                .rule_states()
                .await?
                .into_iter()
                .filter(|r| r.paused)
                .collect(),
            last_reload: self.mappings.last_reload(),
            failed_events: store::failed_events(pool, LATEST).await?,
            failed_launches: store::failed_launches(pool, LATEST).await?,
            dead_letters: store::dead_callbacks(pool, LATEST).await?,
            deliveries: crate::deliveries::sql::counts(pool).await?,
        })
    }
}
