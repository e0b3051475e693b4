//! What rules may name, from the settings: the sources (their kind and the controller their
//! rules launch on by default) and the controllers.

use crate::config::{Settings, SourceKind, DEFAULT_CONTROLLER};
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Default)]
pub struct Known {
    pub sources: HashMap<String, KnownSource>,
    pub controllers: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct KnownSource {
    pub kind: SourceKind,
    /// `sources.NAME.controller`, else `default`.
    pub controller: String,
}

impl Known {
    pub fn from_settings(settings: &Settings) -> Self {
        Known {
            sources: settings
                .sources
                .iter()
                .map(|(name, s)| {
                    let source = KnownSource {
                        kind: s.kind,
                        controller: settings.source_controller(name).to_string(),
                    };
                    (name.clone(), source)
                })
                .collect(),
            controllers: settings
                .controllers()
                .into_keys()
                .map(str::to_string)
                .collect(),
        }
    }

    /// Sources of these kinds launching on `default`, and the controllers named.
    pub fn of(kinds: &[(&str, SourceKind)], controllers: &[&str]) -> Self {
        Known {
            sources: kinds
                .iter()
                .map(|(name, kind)| {
                    let source = KnownSource {
                        kind: *kind,
                        controller: DEFAULT_CONTROLLER.to_string(),
                    };
                    (name.to_string(), source)
                })
                .collect(),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        }
    }

    pub fn kind(&self, source: &str) -> Option<SourceKind> {
        self.sources.get(source).map(|s| s.kind)
    }

    /// No source is configured.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}
