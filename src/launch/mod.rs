//! The whole life of a launch, from its plan to its job's end (README "Launch protocol").
//!
//! ```text
//!            plan ─┬─▶ dry_run (no controller) · coalesced (into an earlier launch) · rejected (the bridge refused a value)
//!                  ▼
//!   ┌──────────▶ planned ──claim: rule paused────────────────────────────────────────────▶ held ──resume──▶ planned
//!   │              │      claim: controller down, backoff, cap full ─▶ stays planned (wait says why)   └──drop──▶ dropped
//!   │              │ claim (attempt n, lease; the one transaction decides pause, cap and health)
//!   │              ▼
//!   │          launching ──owner check (stamps sent_at; paused meanwhile ─▶ held) ──▶ POST
//!   │              │ 201 ───────────────────────────────────────────────────────────▶ launched ──job ends──▶ finished
//!   │              │ 4xx, or ignored_fields with on_ignored_fields: fail ─────────────▶ rejected (ticket told)
//!   ├─not sent─────┤ refused before it reached the controller (connect, TLS, 401, gateway "no upstream")
//!   │              │ no answer / other 502-504 / unreadable ─▶ stays launching: settle
//!   └─not launched─┤ settle window passed AND two reads apart find no job with the marker
//!                  └ template drops extra_vars / reads keep failing ─────────────────▶ unknown (ticket told)
//! ```
//!
//! Every arrow out of `launching` is an UPDATE fenced on id, attempt and state (`sql::fence`):
//! an attempt that lost its lease changes nothing. `wait` says, as data, why an open launch
//! waits. Files: `plan` (the one planner), `claim` (the launcher's round), `attempt` (the
//! fenced POST), `settle` (unclear answers), `ignored`, `breaker`, `track` (jobs to their end),
//! `wait`, and `sql`. Other modules call the functions re-exported here, never the tables.

mod attempt;
mod breaker;
mod claim;
mod ignored;
mod plan;
mod settle;
pub mod sql;
mod track;
pub mod wait;

pub use breaker::tell_dropped;
pub use claim::step;
pub use ignored::{on_ignored_fields, rejection_reason, Verdict};
pub use plan::{coalesce_key, plan, plan_refused, planned_row, with_marker};
pub use sql::fence::Fence;
pub use sql::rows::{LaunchRow, NewLaunch};
pub use track::step as track;
