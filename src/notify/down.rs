//! Ticket APIs this replica found down, and when each was last probed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct DownSources {
    probe_every: Duration,
    down: Mutex<HashMap<String, Option<Instant>>>,
}

impl DownSources {
    pub fn new(probe_every: Duration) -> Self {
        DownSources {
            probe_every,
            down: Mutex::default(),
        }
    }

    pub fn down(&self, source: &str) {
        self.lock().entry(source.to_string()).or_insert(None);
    }

    /// Marks it up; true if it was down (its waiting post-backs should go now).
    pub fn up(&self, source: &str) -> bool {
        self.lock().remove(source).is_some()
    }

    /// Down sources due for a probe; each is stamped as probed now.
    pub fn probes_due(&self) -> Vec<String> {
        let mut map = self.lock();
        let mut out = Vec::new();
        for (source, last) in map.iter_mut() {
            if last.is_none_or(|t| t.elapsed() >= self.probe_every) {
                *last = Some(Instant::now());
                out.push(source.clone());
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Instant>>> {
        self.down.lock().unwrap_or_else(|e| e.into_inner())
    }
}
