//! Supervision of the background tasks and the HTTP server. A task that ends before shutdown
//! was asked for stops the process with an error, so systemd or Kubernetes restarts it, instead
//! of leaving a replica that looks ready while every hook answers 503.

use std::collections::BTreeSet;
use tokio::task::{AbortHandle, JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;

/// A task's name and how it ended: `Err` carries a panic message or the error it returned.
pub(super) type Ended = (String, Result<(), String>);

/// What a supervised task returns, read as success or a reason.
pub(super) trait Outcome: Send + 'static {
    fn reason(self) -> Result<(), String>;
}

impl Outcome for () {
    fn reason(self) -> Result<(), String> {
        Ok(())
    }
}

impl Outcome for std::io::Result<()> {
    fn reason(self) -> Result<(), String> {
        self.map_err(|e| format!("failed: {e}"))
    }
}

#[derive(Default)]
pub(super) struct Tasks {
    set: JoinSet<Ended>,
    aborts: Vec<(String, AbortHandle)>,
}

impl Tasks {
    pub fn add<T: Outcome>(&mut self, name: impl Into<String>, handle: JoinHandle<T>) {
        let name = name.into();
        self.aborts.push((name.clone(), handle.abort_handle()));
        self.set.spawn(async move {
            let how = match handle.await {
                Ok(out) => out.reason(),
                Err(e) => Err(describe(e)),
            };
            (name, how)
        });
    }

    /// The next task to end; None when none is left.
    pub async fn next_end(&mut self) -> Option<Ended> {
        let joined = self.set.join_next().await?;
        Some(joined.unwrap_or_else(|e| ("supervisor".into(), Err(describe(e)))))
    }

    /// Waits, all in parallel, for every task until `deadline`; aborts the ones still running.
    /// Returns the reasons of the tasks that failed (panicked or returned an error).
    pub async fn stop_all(mut self, deadline: Instant) -> Vec<String> {
        let mut failures = Vec::new();
        let mut ended = BTreeSet::new();
        let all = async {
            while let Some((name, how)) = self.next_end().await {
                match how {
                    Ok(()) => tracing::debug!(task = %name, "stopped"),
                    Err(why) => {
                        tracing::error!(task = %name, reason = %why, "task failed while stopping");
                        failures.push(format!("{name}: {why}"));
                    }
                }
                ended.insert(name);
            }
        };
        if tokio::time::timeout_at(deadline, all).await.is_err() {
            let late: Vec<&str> = self
                .aborts
                .iter()
                .filter(|(name, _)| !ended.contains(name))
                .map(|(name, _)| name.as_str())
                .collect();
            tracing::warn!(tasks = ?late, "did not stop within server.shutdown_grace_secs");
            for (_, abort) in &self.aborts {
                abort.abort();
            }
        }
        failures
    }
}

/// A `JoinError` as a reason: the panic message when there is one.
fn describe(e: JoinError) -> String {
    if e.is_cancelled() {
        return "was cancelled".into();
    }
    let payload = e.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    format!("panicked: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn boom() {
        panic!("boom")
    }

    #[tokio::test]
    async fn reports_panics_errors_and_late_tasks() {
        let mut tasks = Tasks::default();
        tasks.add("quits", tokio::spawn(async {}));
        tasks.add("panics", tokio::spawn(async { boom() }));
        tasks.add(
            "fails",
            tokio::spawn(async { Err::<(), _>(std::io::Error::other("accept")) }),
        );
        tasks.add("hangs", tokio::spawn(std::future::pending::<()>()));
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut failures = tasks.stop_all(deadline).await;
        failures.sort();
        assert_eq!(
            failures,
            ["fails: failed: accept", "panics: panicked: boom"],
            "the hanging task is aborted at the deadline, not reported as failed"
        );
    }
}
