//! Hot reload: readers take an `Arc` snapshot; a reload that fails or is refused keeps the old
//! rules (see `reload`). File changes are acted on only once they have settled.

use super::load::mapping_files;
use super::reload::{reload, SharedMappings};
use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// How long a changed fingerprint must stay the same before a reload (capped by the interval).
const SETTLE: Duration = Duration::from_millis(500);

/// Name, modification time and size of each file `load` would read.
pub(crate) type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

pub(crate) fn fingerprint(path: &Path) -> Fingerprint {
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

/// Debounce: a change counts once two checks in a row see the same new fingerprint, so a file
/// still being written is not loaded half-way.
#[derive(Debug)]
pub(crate) struct Settle {
    /// The files as of the last reload.
    last: Fingerprint,
    /// A change seen on the previous check, waiting to be confirmed.
    seen: Option<Fingerprint>,
}

impl Settle {
    pub fn new(now: Fingerprint) -> Self {
        Settle {
            last: now,
            seen: None,
        }
    }

    /// True when `now` is a settled change: reload.
    pub fn check(&mut self, now: Fingerprint) -> bool {
        if now == self.last {
            self.seen = None;
            return false;
        }
        if self.seen.as_ref() == Some(&now) {
            self.seen = None;
            self.last = now;
            return true;
        }
        self.seen = Some(now);
        false
    }

    /// A change is waiting to be confirmed: check again soon.
    pub fn pending(&self) -> bool {
        self.seen.is_some()
    }

    /// A reload happened for another reason (SIGHUP).
    pub fn reset(&mut self, now: Fingerprint) {
        *self = Settle::new(now);
    }
}

/// Reloads on SIGHUP (unix) and when a mapping file under `path` changes (polled every
/// `every`, confirmed `SETTLE` later), until `cancel`. Broken or refused reloads keep the old
/// rules; each outcome is logged and kept in `shared.last_reload()`.
pub async fn watch(
    shared: SharedMappings,
    path: PathBuf,
    sources: super::Known,
    every: Duration,
    cancel: CancellationToken,
) {
    let every = every.max(Duration::from_millis(10));
    let settle = SETTLE.min(every);
    let mut files = Settle::new(fingerprint(&path));
    let mut hup = hangups();
    loop {
        let pause = if files.pending() { settle } else { every };
        let why = tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(pause) => {
                if !files.check(fingerprint(&path)) {
                    continue;
                }
                "files changed"
            }
            _ = next_hangup(&mut hup) => {
                files.reset(fingerprint(&path));
                "SIGHUP"
            }
        };
        let (shared, p, s) = (shared.clone(), path.clone(), sources.clone());
        let load = tokio::task::spawn_blocking(move || reload(&shared, &p, &s, why));
        if let Err(e) = load.await {
            tracing::error!("mapping reload panicked: {e}; keeping the previous rules");
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
