#[path = "../support/mod.rs"]
mod support;

mod admin;
mod cli;
mod controller_auth;
mod controller_awx;
mod controller_calls;
mod controller_tokens;
mod crash;
mod ingest;
mod ingest_kinds;
mod launch_protocol;
mod metrics;
mod outage;
mod pipeline;
mod pipeline_awx;
mod pipeline_faults;
mod recovery;
mod replicas;
mod retention;
mod shutdown;
mod slow_clients;
mod storm;
