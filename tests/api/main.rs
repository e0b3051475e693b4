#[path = "../support/mod.rs"]
mod support;

mod admin;
mod cli;
mod controller_auth;
mod controller_awx;
mod controller_calls;
mod controller_tls;
mod controller_token_at_rest;
mod controller_tokens;
mod crash;
mod hostile;
mod ingest;
mod ingest_fuzz;
mod ingest_kinds;
mod ingest_replay;
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
mod storm;
