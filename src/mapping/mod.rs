//! Mapping rules: which controller template an event launches, with which variables.
//!
//! Rules are YAML files (see `mappings/` for examples). They are checked completely at load,
//! templates included, so a bad file is refused with `file:line` errors instead of failing
//! when the first matching event arrives.

mod decision;
mod files;
mod glob;
mod guard;
mod known;
mod load;
mod reload;
mod render;
mod rule;
mod spec;
mod watch;

#[cfg(test)]
mod tests_approval;
#[cfg(test)]
mod tests_eval;
#[cfg(test)]
mod tests_files;
#[cfg(test)]
mod tests_guard;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_reload;

pub use decision::Decision;
pub use guard::DEFAULT_MAX_VALUE_CHARS;
pub use known::{Known, KnownSource};
pub use reload::SharedMappings;
pub use reload::{reload, ReloadStatus};
pub use rule::RuleInfo;
use std::collections::BTreeMap;
pub use watch::watch;

use crate::config::SourceKind;
pub use crate::domain::Reply;
use crate::domain::TemplateKind;
use crate::event::Event;
use chrono::{DateTime, Utc};
use rule::Rule;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::fmt;
use std::path::PathBuf;

/// The event as rules see it (see README, "The normalized event").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventView {
    pub id: uuid::Uuid,
    pub source: String,
    pub kind: SourceKind,
    pub delivery_id: String,
    pub event_type: String,
    pub category: Option<String>,
    pub ticket: Json,
    /// Parsed only if a template reads it (`render::context` converts only what it reads).
    pub payload: crate::event::Payload,
    pub received_at: DateTime<Utc>,
}

impl EventView {
    pub fn from_event(id: uuid::Uuid, event: &Event, received_at: DateTime<Utc>) -> Self {
        EventView {
            id,
            source: event.source.clone(),
            kind: event.kind,
            delivery_id: event.delivery_id.clone(),
            event_type: event.event_type.clone(),
            category: event.category.clone(),
            ticket: serde_json::to_value(&event.ticket).unwrap_or_default(),
            payload: event.payload.clone(),
            received_at,
        }
    }
}

/// Which template to launch: by id, or by name (resolved against the controller at launch).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum TemplateRef {
    Id {
        kind: TemplateKind,
        id: i64,
    },
    Name {
        kind: TemplateKind,
        name: String,
        organization: Option<String>,
    },
}

impl TemplateRef {
    pub fn kind(&self) -> TemplateKind {
        match self {
            TemplateRef::Id { kind, .. } | TemplateRef::Name { kind, .. } => *kind,
        }
    }

    /// As a launch row stores it: (template id, name, organization).
    pub fn columns(&self) -> (Option<i64>, Option<&str>, Option<&str>) {
        match self {
            TemplateRef::Id { id, .. } => (Some(*id), None, None),
            TemplateRef::Name {
                name, organization, ..
            } => (None, Some(name.as_str()), organization.as_deref()),
        }
    }
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateRef::Id { kind, id } => write!(f, "{} template {id}", kind.as_str()),
            TemplateRef::Name {
                kind,
                name,
                organization: Some(org),
            } => write!(f, "{} template `{name}` ({org})", kind.as_str()),
            TemplateRef::Name { kind, name, .. } => {
                write!(f, "{} template `{name}`", kind.as_str())
            }
        }
    }
}

/// What to do when the controller answers a launch with `ignored_fields`: the template does not
/// prompt for them, so the job runs without them (extra_vars include the bridge's markers).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnIgnored {
    /// Keep the job; the "launched" post-back names the ignored fields.
    #[default]
    Warn,
    /// Cancel the job and settle the launch `rejected`; the ticket is told why.
    Fail,
}

impl OnIgnored {
    pub fn as_str(self) -> &'static str {
        match self {
            OnIgnored::Warn => "warn",
            OnIgnored::Fail => "fail",
        }
    }

    pub fn parse(s: &str) -> Option<OnIgnored> {
        match s {
            "warn" => Some(OnIgnored::Warn),
            "fail" => Some(OnIgnored::Fail),
            _ => None,
        }
    }
}

/// A launch a rule asks for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Planned {
    pub rule: String,
    pub template: TemplateRef,
    /// The controller it launches on (`controllers:`). Decisions stored before there were
    /// several read as `default`.
    #[serde(default = "default_controller")]
    pub controller: String,
    /// The launch body: only the fields the rule sets, among `extra_vars`, `limit`,
    /// `inventory`, `credentials`, `job_tags` and `skip_tags`.
    pub request: Json,
    pub reply: Reply,
    pub report_outcome: bool,
    pub max_concurrent: Option<u32>,
    pub coalesce_secs: Option<u64>,
    #[serde(default)]
    pub on_ignored_fields: OnIgnored,
    /// Set when a person must approve it on the ticket first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<crate::domain::approval::Policy>,
}

fn default_controller() -> String {
    crate::config::DEFAULT_CONTROLLER.to_string()
}

/// A launch a rule asked for but whose rendered values were refused (see `guard`): recorded as
/// a `rejected` launch, and the ticket is told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Refused {
    pub launch: Planned,
    pub reason: String,
}

/// A problem in a mapping file. Line 0 means the whole file (it could not be read).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file.display(), self.message),
            n => write!(f, "{}:{n}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for MappingError {}

/// The loaded rules and their compiled templates.
pub struct Mappings {
    rules: Vec<Rule>,
    env: minijinja::Environment<'static>,
    /// Files that had no YAML content at load (see `reload::refusal`).
    blank_files: Vec<PathBuf>,
    /// Files with a `rules:` key, even `rules: []`.
    declared: usize,
    /// A digest of the files' names and text: every replica loading the same files has the
    /// same version, and each decided event records the version that decided it.
    version: String,
    /// Per source, its rules' ServiceNow approval fields: read for every event of the source,
    /// so found once at load.
    approval_fields: BTreeMap<String, Vec<crate::domain::approval::Field>>,
}

impl fmt::Debug for Mappings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mappings")
            .field("rules", &self.rule_names())
            .finish()
    }
}

impl Mappings {
    pub fn empty() -> Self {
        Mappings {
            rules: Vec::new(),
            env: render::environment(),
            blank_files: Vec::new(),
            declared: 0,
            version: "none".into(),
            approval_fields: BTreeMap::new(),
        }
    }

    /// `rules` with the per-source facts read from them.
    fn index(rules: &[Rule]) -> BTreeMap<String, Vec<crate::domain::approval::Field>> {
        let mut fields: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for r in rules {
            if let Some(f) = r.approval.as_ref().and_then(|a| a.field()) {
                let of_source = fields.entry(r.source.clone()).or_default();
                if !of_source.contains(&f) {
                    of_source.push(f);
                }
            }
        }
        fields
    }

    /// Which rules decided an event (see the field).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules in file order, with where each is defined.
    pub fn rules(&self) -> Vec<RuleInfo> {
        self.rules.iter().map(Rule::info).collect()
    }

    /// The ServiceNow approval fields of `source`'s rules (`approval.field`).
    pub fn approval_fields(&self, source: &str) -> &[crate::domain::approval::Field] {
        self.approval_fields.get(source).map_or(&[], Vec::as_slice)
    }

    pub fn rule_names(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.name.clone()).collect()
    }

    /// The rule's circuit-breaker threshold (None: no such rule, or it never pauses itself).
    pub fn pause_after_failures(&self, rule: &str) -> Option<u32> {
        let found = self.rules.iter().find(|r| r.name == rule);
        found.and_then(|r| r.pause_after_failures)
    }

    /// Every rule that matches, in file order. A rule whose templates fail to render
    /// goes to `failed`; the others still launch.
    pub fn evaluate(&self, ev: &EventView) -> Decision {
        let mut decision = Decision {
            subject: format!(
                "source `{}`, event type `{}`, {}",
                ev.source,
                ev.event_type,
                ev.category
                    .as_deref()
                    .map_or("no category".to_string(), |c| format!("category `{c}`"))
            ),
            ..Decision::default()
        };
        let mut ctx = None;
        for rule in self.rules.iter().filter(|r| r.source == ev.source) {
            let (template, controller) = match rule.select(ev) {
                Ok(t) => t,
                Err(why) => {
                    decision.skipped.push((rule.name.clone(), why));
                    continue;
                }
            };
            let ctx = ctx.get_or_insert_with(|| render::context(ev));
            if let Err(why) = rule.check_when(&self.env, ctx) {
                decision.skipped.push((rule.name.clone(), why));
                continue;
            }
            let request = match rule.request(&self.env, ctx) {
                Ok(request) => request,
                Err(e) => {
                    decision.failed.push((rule.name.clone(), e));
                    continue;
                }
            };
            let verdict = rule.guard.check(&request);
            let launch = Planned {
                rule: rule.name.clone(),
                template: template.clone(),
                controller: controller.to_string(),
                request,
                reply: rule.reply,
                report_outcome: rule.report_outcome,
                max_concurrent: rule.max_concurrent,
                coalesce_secs: rule.coalesce_secs,
                on_ignored_fields: rule.on_ignored_fields,
                approval: rule.approval.clone(),
            };
            match verdict {
                Ok(()) => decision.planned.push(launch),
                Err(reason) => decision.refused.push(Refused { launch, reason }),
            }
        }
        decision
    }
}
