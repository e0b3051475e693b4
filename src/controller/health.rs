//! What this replica knows about the controller right now. Launches wait while it is
//! unreachable (a cheap probe decides when it is back) and while its configuration is wrong;
//! neither is ever posted to tickets. `/readyz` and `/metrics` show it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One gauge per state, 1 for the current one, so an alert can match on the label.
fn publish(controller: &str, h: &Health) {
    for label in ["ok", "unreachable", "config_error"] {
        let v = if label == h.label() { 1.0 } else { 0.0 };
        let name = controller.to_string();
        metrics::gauge!("aap_bridge_controller_health", "controller" => name, "state" => label)
            .set(v);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    Ok,
    /// Not reached, 5xx, or no answer: launches wait and a probe runs.
    Unreachable {
        error: String,
    },
    /// A definite answer that needs an operator (no API at the URL, say).
    ConfigError {
        error: String,
    },
}

impl Health {
    pub fn label(&self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Unreachable { .. } => "unreachable",
            Health::ConfigError { .. } => "config_error",
        }
    }
}

pub struct ControllerHealth {
    /// The controller's configured name (the `controller` label of its gauge).
    name: String,
    state: Mutex<(Health, Option<Instant>)>,
    /// When the state last changed (for "unreachable since 03:12").
    since: Mutex<DateTime<Utc>>,
    probe_every: Duration,
}

impl ControllerHealth {
    pub fn new(probe_every: Duration) -> Self {
        Self::named(crate::config::DEFAULT_CONTROLLER, probe_every)
    }

    pub fn named(name: &str, probe_every: Duration) -> Self {
        publish(name, &Health::Ok);
        ControllerHealth {
            name: name.to_string(),
            state: Mutex::new((Health::Ok, None)),
            since: Mutex::new(Utc::now()),
            probe_every,
        }
    }

    pub fn get(&self) -> Health {
        self.lock().0.clone()
    }

    /// The state and when it began.
    pub fn get_since(&self) -> (Health, DateTime<Utc>) {
        let h = self.get();
        (h, *self.since.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set(&self, h: Health) {
        let mut st = self.lock();
        if st.0 != h {
            match &h {
                Health::Ok => tracing::info!(controller = %self.name, "controller reachable again"),
                Health::Unreachable { error } => tracing::warn!(
                    controller = %self.name,
                    %error,
                    "controller unreachable: launches wait for it"
                ),
                Health::ConfigError { error } => tracing::error!(
                    controller = %self.name,
                    %error,
                    "CONTROLLER CONFIGURATION ERROR: launches wait until it is fixed"
                ),
            }
            publish(&self.name, &h);
        }
        if st.0.label() != h.label() {
            *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Utc::now();
        }
        st.0 = h;
    }

    /// True when a probe is due (at once after a change; configuration errors less often).
    pub fn probe_due(&self) -> bool {
        let mut st = self.lock();
        let every = match st.0 {
            Health::Ok => return false,
            Health::Unreachable { .. } => self.probe_every,
            Health::ConfigError { .. } => self.probe_every * 10,
        };
        let due = st.1.is_none_or(|t| t.elapsed() >= every);
        if due {
            st.1 = Some(Instant::now());
        }
        due
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Health, Option<Instant>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
