//! Background workers and mappings: how often they look for work and how hard they retry.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingSettings {
    /// A directory of `*.yaml` rule files, or one file.
    pub path: PathBuf,
    /// How often files are checked for changes (SIGHUP reloads at once).
    pub reload_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Idle workers look for new work this often; this replica's own deliveries wake them at once.
    pub poll_interval_ms: u64,
    /// Events claimed per dispatcher transaction.
    pub dispatch_batch: i64,
    /// Launch POSTs in flight at once per replica.
    pub launch_concurrency: usize,
    /// A launch left in `launching` this long (a crash between POST and commit) is reconciled.
    pub launch_lease_secs: u64,
    /// Reconciliation looks for jobs created this long before the launch attempt (clock skew).
    pub reconcile_skew_secs: u64,
    /// Relaunch attempts after which a launch becomes `unknown`.
    pub launch_max_attempts: i32,
    /// Delay before retrying a launch that could not reach the controller (doubles, capped).
    pub launch_retry_base_ms: u64,
    pub launch_retry_max_ms: u64,
    /// How often running jobs are polled (all of them, 200 per request).
    pub tracker_interval_ms: u64,
    /// Post-back attempts before a callback is dead-lettered.
    pub callback_max_attempts: i32,
    pub callback_retry_base_ms: u64,
    pub callback_retry_max_ms: u64,
    /// Lines of stdout included in a failure post-back.
    pub stdout_tail_lines: usize,
    /// A job turns `failed` before its output is saved: wait at most this long for the
    /// controller to finish processing it before quoting the tail (then quote what there is).
    #[serde(default = "default_stdout_wait")]
    pub stdout_wait_secs: u64,
}

fn default_stdout_wait() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Finished events (with their launches and callbacks) older than this are deleted; 0 keeps all.
    pub max_age_days: u32,
    /// How often one replica prunes.
    pub interval_secs: u64,
    /// Rows deleted per statement, so pruning never holds long locks.
    pub batch: i64,
}
