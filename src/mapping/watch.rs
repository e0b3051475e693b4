//! Hot reload: readers take an `Arc` snapshot; a reload that fails keeps the old rules.

use super::load::mapping_files;
use super::Mappings;
use crate::config::SourceKind;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct SharedMappings {
    inner: Arc<RwLock<Arc<Mappings>>>,
}

impl SharedMappings {
    pub fn new(m: Mappings) -> Self {
        SharedMappings {
            inner: Arc::new(RwLock::new(Arc::new(m))),
        }
    }

    /// The rules in force now; holding the snapshot does not block a reload.
    pub fn current(&self) -> Arc<Mappings> {
        // A poisoned lock still holds a whole Arc: the swap below cannot panic half-way.
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, m: Mappings) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(m);
    }
}

/// Name, modification time and size of each file `load` would read.
type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

fn fingerprint(path: &Path) -> Fingerprint {
    let files = mapping_files(path).unwrap_or_default();
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (f, modified, len)
        })
        .collect()
}

/// Reloads on SIGHUP (unix) and when a mapping file under `path` changes (polled every
/// `every`), until `cancel`. Errors are logged with their `file:line`; the old rules stay.
pub async fn watch(
    shared: SharedMappings,
    path: PathBuf,
    sources: HashMap<String, SourceKind>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut last = fingerprint(&path);
    let mut hup = hangups();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    loop {
        let why = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let now = fingerprint(&path);
                if now == last {
                    continue;
                }
                "files changed"
            }
            _ = next_hangup(&mut hup) => "SIGHUP",
        };
        last = fingerprint(&path);
        let (p, s) = (path.clone(), sources.clone());
        match tokio::task::spawn_blocking(move || Mappings::load(&p, &s)).await {
            Ok(Ok(m)) => {
                tracing::info!(rules = m.len(), path = %path.display(), trigger = why, "mapping rules reloaded");
                shared.replace(m);
            }
            Ok(Err(errors)) => {
                for e in &errors {
                    tracing::error!(trigger = why, "mapping reload: {e}");
                }
                tracing::error!(
                    errors = errors.len(),
                    "mapping reload failed; keeping the previous rules"
                );
            }
            Err(e) => tracing::error!("mapping reload panicked: {e}; keeping the previous rules"),
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup())
        .map_err(|e| {
            tracing::warn!("cannot listen for SIGHUP: {e}; reloading on file changes only")
        })
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

#[cfg(unix)]
async fn next_hangup(hup: &mut Hangups) {
    if let Some(s) = hup {
        if s.recv().await.is_some() {
            return;
        }
        *hup = None;
    }
    std::future::pending().await
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangups) {
    std::future::pending().await
}
