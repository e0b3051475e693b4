//! The admin service: what the JSON API (`http::admin`), the console (`http::console`) and the
//! `simulate` / `events` / `replay` commands do. Queries live in `store::admin`; each front end
//! only turns its input into these calls and the answers into its own format.

mod approvals;
mod attention;
mod audit;
mod breaker;
mod callbacks;
mod catch_up;
mod deliveries;
mod events;
mod overview;
pub mod query;
mod rules;
pub mod simulate;

pub use audit::AuditPage;
pub use breaker::{Held, Resumed, RuleState};
pub use deliveries::DeliveryPage;
pub use events::EventPage;
pub use overview::{ControllerView, Overview, Queue};
pub use rules::{RuleRow, RulesPage};
pub use simulate::{header_map, simulate, Simulation, SIMULATED};

use crate::controller::Fleet;
use crate::mapping::SharedMappings;
use crate::notify::Notifier;
use crate::sources::Sources;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;

/// What an admin call can fail with; each front end picks its own status or exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is unusable (bad id, unknown parameter, malformed delivery).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The thing exists but is in the wrong state for the call.
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the {0} byte limit")]
    TooLarge(usize),
    /// The cause is logged where it happens; clients see fixed text.
    #[error("database error, retry later")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        tracing::warn!(error = %e, "admin query failed");
        Error::Database(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// One handle for every admin call. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pool: PgPool,
    sources: Arc<Sources>,
    mappings: SharedMappings,
    /// The live controllers and their health; None where no launcher runs (the CLI).
    fleet: Option<Fleet>,
    /// Writes the tickets' notes when held launches are dropped.
    notifier: Arc<Notifier>,
    /// This replica's launcher and notifier, woken after a resume (None in the CLI: the
    /// service's workers find the rows on their next poll).
    wake: Option<Wakes>,
    /// None where catch-up passes cannot run (the read-only commands).
    catch_up: Option<Arc<crate::catch_up::CatchUp>>,
}

/// The worker wake-ups an admin call may need.
#[derive(Clone)]
pub struct Wakes {
    pub launch: Arc<Notify>,
    pub notify: Arc<Notify>,
}

impl Admin {
    pub fn new(
        pool: PgPool,
        sources: Arc<Sources>,
        mappings: SharedMappings,
        fleet: Option<Fleet>,
    ) -> Self {
        Admin {
            pool,
            sources,
            mappings,
            fleet,
            notifier: Arc::new(Notifier::default()),
            wake: None,
            catch_up: None,
        }
    }

    /// With the catch-up passes of the sources that have `catch_up:`.
    pub fn with_catch_up(mut self, catch_up: Arc<crate::catch_up::CatchUp>) -> Self {
        self.catch_up = Some(catch_up);
        self
    }

    /// Ticket notes go through `notifier`; `wake` (in the service) wakes its workers.
    pub fn with_notifier(mut self, notifier: Arc<Notifier>, wake: Option<Wakes>) -> Self {
        self.notifier = notifier;
        self.wake = wake;
        self
    }

    /// For the commands that only read and repair rows (`events`, `replay`).
    pub fn database_only(pool: PgPool) -> Self {
        Self::with_mappings(pool, crate::mapping::Mappings::empty())
    }

    /// For the `rules` commands: the database and the rules as the configuration loads them.
    pub fn with_mappings(pool: PgPool, mappings: crate::mapping::Mappings) -> Self {
        Self::new(
            pool,
            Arc::new(Sources::default()),
            SharedMappings::new(mappings),
            None,
        )
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// What the current rules would do with a delivery; nothing is stored.
    pub fn simulate(
        &self,
        source: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<Simulation> {
        simulate(
            &self.sources,
            &self.mappings.current(),
            source,
            headers,
            body,
        )
    }

    /// The sorted names of the configured sources.
    pub fn source_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sources.keys().cloned().collect();
        names.sort_unstable();
        names
    }
}

/// A path or form value that must be a UUID.
pub fn uuid_param(name: &str, value: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::parse_str(value.trim())
        .map_err(|_| Error::Invalid(format!("`{name}` must be a UUID, got `{value}`")))
}
