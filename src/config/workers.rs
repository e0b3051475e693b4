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
    /// Store every rule's skip reason in each event's decision, not only the matched rules'
    /// verdicts (debugging; an unmapped event's reason names the skipped rules anyway).
    pub record_skipped: bool,
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
    /// Lease of a launch attempt, renewed every third of it while the attempt works; a row
    /// whose lease ran out is reconciled (never POSTed again without proof).
    pub launch_lease_secs: u64,
    /// After an unclear launch answer (timeout, 502-504, unreadable 2xx), "not launched" is
    /// concluded only after this long since the POST (and two empty reads apart). Unset:
    /// max(120, 4 × controller.timeout_secs).
    #[serde(default)]
    pub launch_settle_secs: Option<u64>,
    /// How often an unclear launch is read back from the controller (also the gap between the
    /// two empty reads that conclude "not launched").
    pub reconcile_interval_secs: u64,
    /// Reconciliation errors in a row (template deleted, 403/404) before a launch is `unknown`.
    pub reconcile_max_errors: i32,
    /// While the controller (or a ticket API) is unreachable, work for it waits and it is
    /// probed this often; the first answer releases everything that waited.
    pub probe_interval_ms: u64,
    /// Reconciliation looks for jobs created this long before the launch attempt (clock skew).
    pub reconcile_skew_secs: u64,
    /// Relaunch attempts after which a launch becomes `unknown`.
    pub launch_max_attempts: i32,
    /// Delay before retrying a launch that could not reach the controller (doubles, capped).
    pub launch_retry_base_ms: u64,
    pub launch_retry_max_ms: u64,
    /// How often running jobs are polled (all of them, 200 per request).
    pub tracker_interval_ms: u64,
    /// A post-back claimed by a replica that died is retried after this long (longer than a
    /// ticket API call; a shorter lease could post a note twice).
    pub callback_lease_secs: u64,
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

impl WorkerSettings {
    /// The settle window in force for a controller whose requests time out after `timeout_secs`.
    pub fn settle_secs(&self, timeout_secs: u64) -> u64 {
        self.launch_settle_secs
            .unwrap_or_else(|| (4 * timeout_secs).max(120))
    }

    pub fn validate(&self, controller_timeout_secs: Option<u64>) -> Result<(), String> {
        if self.launch_lease_secs == 0 {
            return Err("workers.launch_lease_secs must be at least 1".into());
        }
        if self.launch_concurrency == 0 || self.reconcile_interval_secs == 0 {
            return Err(
                "workers.launch_concurrency and workers.reconcile_interval_secs must be at least 1"
                    .into(),
            );
        }
        if let (Some(settle), Some(timeout)) = (self.launch_settle_secs, controller_timeout_secs) {
            if settle <= timeout {
                return Err(format!(
                    "workers.launch_settle_secs ({settle}) must be longer than controller.timeout_secs ({timeout}): \
                     a launch the controller acts on late would otherwise be launched twice"
                ));
            }
        }
        Ok(())
    }
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
    /// Dedupe keys are kept this long (and never while their event exists), so a pruned
    /// delivery replayed later is still a duplicate; 0 keeps them forever.
    #[serde(default = "default_dedupe_days")]
    pub dedupe_days: u32,
    /// The deliveries log keeps at most this many rows (each replica trims after each write);
    /// 0 turns the log off.
    #[serde(default = "default_deliveries_rows")]
    pub deliveries_max_rows: i64,
    /// … and none older than this; 0 keeps them until the row cap removes them.
    #[serde(default = "default_deliveries_days")]
    pub deliveries_max_age_days: u32,
}

fn default_dedupe_days() -> u32 {
    90
}

fn default_deliveries_rows() -> i64 {
    100_000
}

fn default_deliveries_days() -> u32 {
    7
}

impl RetentionSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.deliveries_max_rows < 0 {
            return Err("retention.deliveries_max_rows must be 0 (off) or more".into());
        }
        if self.dedupe_days != 0 && self.dedupe_days < self.max_age_days {
            return Err(format!(
                "retention.dedupe_days ({}) must be at least retention.max_age_days ({}) or 0: \
                 a delivery must stay a duplicate for as long as its event is kept",
                self.dedupe_days, self.max_age_days
            ));
        }
        Ok(())
    }
}
