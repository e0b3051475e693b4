//! The launch lifecycle's SQL, one file per concern. Every transition out of `launching` is an
//! UPDATE fenced on id, attempt and state (`fence`); nothing outside `launch` writes these rows.

pub mod approval;
pub mod fence;
pub mod held;
pub mod pauses;
pub mod policy;
pub mod rows;
