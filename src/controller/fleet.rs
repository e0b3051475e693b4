//! Every controller this replica launches on, by its configured name, with its health. The
//! console, the login page, `/readyz`, `/metrics` and the wait reasons read them here, so none
//! of them assumes there is only one.

use super::{Controller, ControllerHealth, Health};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// One controller this replica sends launches to: its own client and its own health.
pub struct Lane {
    pub name: String,
    pub controller: Arc<Controller>,
    pub health: Arc<ControllerHealth>,
}

/// The live controllers (`default` first, then by name) and the names marked `dry_run`.
#[derive(Clone, Default)]
pub struct Fleet {
    lanes: Arc<Vec<Lane>>,
    dry: Arc<BTreeSet<String>>,
}

/// Each live controller's health and since when, by name.
pub type HealthByName = HashMap<String, (Health, DateTime<Utc>)>;

impl Fleet {
    pub fn new(mut lanes: Vec<Lane>, dry: BTreeSet<String>) -> Self {
        lanes.sort_by(|a, b| {
            let first = |l: &Lane| l.name != crate::config::DEFAULT_CONTROLLER;
            (first(a), &a.name).cmp(&(first(b), &b.name))
        });
        Fleet {
            lanes: Arc::new(lanes),
            dry: Arc::new(dry),
        }
    }

    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// `default` when it is live, else the first by name: the one console logins check.
    pub fn first(&self) -> Option<&Lane> {
        self.lanes.first()
    }

    /// No live controller: the whole bridge runs dry.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// The controllers marked `dry_run: true`.
    pub fn dry(&self) -> &BTreeSet<String> {
        &self.dry
    }

    pub fn health_by_name(&self) -> HealthByName {
        self.lanes
            .iter()
            .map(|l| (l.name.clone(), l.health.get_since()))
            .collect()
    }
}
