//! aap-bridge: signed webhooks in, Ansible controller jobs out, results posted back.

pub mod admin;
pub mod approval;
pub mod catch_up;
pub mod cli;
pub mod config;
pub mod controller;
pub mod decide;
pub mod deliveries;
pub mod domain;
pub mod error;
pub mod event;
pub mod http;
pub mod ingest;
pub mod launch;
pub mod mapping;
pub mod metrics;
pub mod notify;
pub mod operators;
pub mod postback;
pub mod retry;
pub mod runtime;
pub mod sign;
pub mod signature;
pub mod sources;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod token_crypt;
pub mod workers;

pub use startup::Application;
