//! One reload: load the files, refuse a result that looks like a save in progress, record the
//! outcome. A refused or broken reload keeps the rules in force, so events are never settled
//! `unmapped` for good because an editor had truncated a file.

use super::Mappings;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The rules in force, shared by every reader; `reload` swaps them.
#[derive(Debug, Clone)]
pub struct SharedMappings {
    inner: Arc<RwLock<Arc<Mappings>>>,
    last_reload: Arc<RwLock<Option<ReloadStatus>>>,
}

impl SharedMappings {
    pub fn new(m: Mappings) -> Self {
        SharedMappings {
            inner: Arc::new(RwLock::new(Arc::new(m))),
            last_reload: Arc::new(RwLock::new(None)),
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

    /// The outcome of the last reload since start; None before the first one.
    pub fn last_reload(&self) -> Option<ReloadStatus> {
        self.last_reload
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn record(&self, status: ReloadStatus) {
        *self.last_reload.write().unwrap_or_else(|e| e.into_inner()) = Some(status);
    }
}

/// The outcome of the last reload, for operators (`SharedMappings::last_reload`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadStatus {
    pub at: DateTime<Utc>,
    /// "files changed" or "SIGHUP".
    pub trigger: String,
    /// The new rules are in force.
    pub ok: bool,
    /// Why the old rules were kept: `file:line` errors, or the safety check that refused.
    pub errors: Vec<String>,
    /// Rules in force after this reload.
    pub rules: usize,
}

/// Why `new` must not replace `old`, if it must not.
pub(crate) fn refusal(old: &Mappings, new: &Mappings) -> Option<String> {
    // A save truncates the file before writing it. A placeholder file that was blank before
    // stays acceptable.
    let newly_blank: Vec<String> = new
        .blank_files
        .iter()
        .filter(|f| !old.blank_files.contains(f))
        .map(|f| f.display().to_string())
        .collect();
    if !newly_blank.is_empty() {
        return Some(format!(
            "{} has no rules key (empty or half-written?); write `rules: []` to remove its rules",
            newly_blank.join(", ")
        ));
    }
    if new.is_empty() && !old.is_empty() && new.declared == 0 {
        return Some(format!(
            "no mapping file is left; keeping the {} rule(s) in force (write `rules: []` to run without rules)",
            old.len()
        ));
    }
    None
}

/// Loads the rules under `path` and puts them in force unless they are broken or refused.
/// Blocking (reads files): the watcher runs it on the blocking pool.
pub fn reload(
    shared: &SharedMappings,
    path: &Path,
    sources: &super::Known,
    trigger: &str,
) -> ReloadStatus {
    let (ok, errors) = match Mappings::load(path, sources) {
        Ok(new) => match refusal(&shared.current(), &new) {
            None => {
                tracing::info!(rules = new.len(), path = %path.display(), trigger, "mapping rules reloaded");
                shared.replace(new);
                (true, Vec::new())
            }
            Some(why) => {
                tracing::warn!(
                    trigger,
                    "mapping reload refused, keeping the previous rules: {why}"
                );
                (false, vec![why])
            }
        },
        Err(errors) => {
            for e in &errors {
                tracing::error!(trigger, "mapping reload: {e}");
            }
            tracing::error!(
                errors = errors.len(),
                "mapping reload failed; keeping the previous rules"
            );
            (false, errors.iter().map(ToString::to_string).collect())
        }
    };
    let status = ReloadStatus {
        at: Utc::now(),
        trigger: trigger.to_string(),
        ok,
        errors,
        rules: shared.current().len(),
    };
    shared.record(status.clone());
    status
}
