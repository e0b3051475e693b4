//! The outbox: what a ticket is told about its launch, written in the transaction that changes
//! the launch, and delivered at least once by the notifier.
//!
//! ```text
//! write (in the launch's transaction) ──▶ pending ──claim (lease, attempt n)──▶ POST to the ticket
//!                                            ▲              │ 2xx ─────────────▶ sent
//!                                            │              │ 4xx, unusable ───▶ dead (reason kept)
//!                                            └─ retry_at ◀──┘ 5xx, 429, timeout (backoff, Retry-After)
//!                                  an operator's retry brings a dead one back to pending
//! ```
//! One row per launch and phase (`launched`, `finished`, `held`, `dropped`), so a ticket hears
//! each thing once; a launch's post-backs go out in order.

mod notifier;
mod outbox;
pub mod sql;

pub use notifier::{step, NOTIFY_CONCURRENCY};
pub use outbox::{enqueue, field_names, write, PostbackNews, Target};
