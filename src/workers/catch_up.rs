//! One loop per source with `catch_up:`: a pass at start-up, then every `interval_secs`. The
//! pass takes its source's lock without waiting, so with several replicas one of them runs it.

use super::{spawn_loop, Task};
use crate::catch_up::{CatchUp, RunError};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub fn start(catch_up: Arc<CatchUp>, cancel: CancellationToken) -> Vec<Task> {
    catch_up
        .schedule()
        .into_iter()
        .map(|(source, every)| {
            let c = catch_up.clone();
            spawn_loop(
                "catch-up",
                cancel.clone(),
                Arc::new(Notify::new()),
                every,
                move || {
                    let (c, source) = (c.clone(), source.clone());
                    async move {
                        // A failed pass is in its summary (logged, counted); the next one comes at
                        // the usual interval rather than after the loop's growing back-off.
                        match c.run(&source, None, false).await {
                            Ok(_) | Err(RunError::Busy(_)) => {}
                            Err(e) => {
                                tracing::warn!(source, error = %e, "catch-up pass did not run")
                            }
                        }
                        Ok(false)
                    }
                },
            )
        })
        .collect()
}
