#[path = "../support/mod.rs"]
mod support;

mod admin;
mod cli;
mod controller_auth;
mod controller_awx;
mod controller_calls;
mod controller_tokens;
mod ingest;
mod ingest_kinds;
mod metrics;
mod outage;
mod pipeline;
mod pipeline_awx;
mod pipeline_faults;
mod retention;
mod storm;
