#[path = "../support/mod.rs"]
mod support;

mod ingest;
mod ingest_kinds;
mod outage;
