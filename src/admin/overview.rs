//! The console's first page: what came in and went out lately, what waits, what failed.

use super::{Admin, Result};
use crate::controller::{Flavour, Health};
use crate::mapping::ReloadStatus;
use crate::store::admin::{CallbackView, EventSummary};
use crate::store::overview::{self as store, Counted, LaunchBrief, StateCount};
use chrono::{DateTime, Utc};
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
    /// The live controllers, `default` first. Empty in dry-run.
    pub controllers: Vec<ControllerView>,
    /// Controllers marked `dry_run: true`: their launches are recorded, not sent.
    pub dry_run_controllers: Vec<String>,
    /// Launches planned or launching for a controller that is not live here, by its name.
    pub unserved: Vec<Queue>,
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

/// One live controller as this replica knows it, without calling it.
#[derive(Debug, Clone, Serialize)]
pub struct ControllerView {
    pub name: String,
    pub url: String,
    /// Known once discovery has run (the first launch or probe).
    pub flavour: Option<Flavour>,
    pub api_root: Option<String>,
    pub version: Option<String>,
    pub health: Health,
    /// When its health last changed.
    pub health_since: DateTime<Utc>,
    /// Age of its stored token (managed token modes), in seconds.
    pub token_age_secs: Option<f64>,
    /// Its launches planned or launching.
    pub waiting: i64,
}

impl Admin {
    /// The live controllers, the dry-run ones, and launches no live controller here serves.
    async fn controllers(&self) -> Result<(Vec<ControllerView>, Vec<String>, Vec<Queue>)> {
        let Some(fleet) = &self.fleet else {
            return Ok(Default::default());
        };
        let keys: Vec<&str> = fleet
            .lanes()
            .iter()
            .filter_map(|l| l.controller.token_row())
            .collect();
        let ages = store::token_ages(&self.pool, &keys).await?;
        let mut waiting = store::waiting_by_controller(&self.pool).await?;
        let views = fleet
            .lanes()
            .iter()
            .map(|l| {
                let api = l.controller.discovered();
                let (health, health_since) = l.health.get_since();
                let key = l.controller.token_row();
                ControllerView {
                    name: l.name.clone(),
                    url: l.controller.base_url().to_string(),
                    flavour: api.map(|a| a.flavour),
                    api_root: api.map(|a| a.root.clone()),
                    version: api.and_then(|a| a.version.clone()),
                    health,
                    health_since,
                    token_age_secs: ages.iter().find(|a| Some(a.0.as_str()) == key).map(|a| a.1),
                    waiting: waiting.iter().find(|w| w.0 == l.name).map_or(0, |w| w.1),
                }
            })
            .collect();
        waiting.retain(|(name, _)| !fleet.lanes().iter().any(|l| &l.name == name));
        let unserved = waiting
            .into_iter()
            .map(|(name, depth)| Queue { name, depth })
            .collect();
        Ok((views, fleet.dry().iter().cloned().collect(), unserved))
    }

    pub async fn overview(&self) -> Result<Overview> {
        let pool = &self.pool;
        let queues = store::queue_depths(pool)
            .await?
            .into_iter()
            .map(|(name, depth)| Queue { name, depth })
            .collect();
        let mappings = self.mappings.current();
        let (controllers, dry_run_controllers, unserved) = self.controllers().await?;
        Ok(Overview {
            version: env!("CARGO_PKG_VERSION"),
            events: store::state_counts(pool, Counted::Events).await?,
            launches: store::state_counts(pool, Counted::Launches).await?,
            callbacks: store::state_counts(pool, Counted::Callbacks).await?,
            queues,
            controllers,
            dry_run_controllers,
            unserved,
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
