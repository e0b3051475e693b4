//! A rule after load, and how it matches and renders one event.

use super::glob::{self, Glob};
use super::guard::Guard;
use super::render::{self, Compiled};
use super::{EventView, OnIgnored, Reply, TemplateRef};
use minijinja::{Environment, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Which template a rule launches.
#[derive(Debug)]
pub(crate) enum Target {
    /// `launch`, for events whose category matches `category` (empty: any category).
    One {
        category: Vec<Glob>,
        template: TemplateRef,
        /// The controller it runs on, resolved at load.
        controller: String,
    },
    /// `categories`: the event's category picks the template (and its controller).
    ByCategory(BTreeMap<String, (TemplateRef, String)>),
}

/// A `when` expression and the template it was compiled into at load.
#[derive(Debug)]
pub(crate) struct When {
    pub expr: String,
    pub name: String,
}

/// A rule after load: globs parsed, templates compiled.
#[derive(Debug)]
pub(crate) struct Rule {
    pub name: String,
    /// Where it is defined, for the console.
    pub file: std::path::PathBuf,
    pub line: usize,
    pub source: String,
    /// Empty: any event type.
    pub event_type: Vec<Glob>,
    pub target: Target,
    pub when: Vec<When>,
    /// Launch fields in request order.
    pub fields: Vec<(&'static str, Compiled)>,
    pub reply: Reply,
    pub report_outcome: bool,
    pub max_concurrent: Option<u32>,
    pub coalesce_secs: Option<u64>,
    pub on_ignored_fields: OnIgnored,
    /// Jobs in a row that may fail before the rule pauses itself (None: never).
    pub pause_after_failures: Option<u32>,
    /// Checks on the rendered values (event text) before anything is launched.
    pub guard: Guard,
    /// Each launch waits for a person's `/approve` on the ticket.
    pub approval: Option<crate::domain::approval::Policy>,
}

/// A loaded rule as an operator reads it (the console's rules page).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RuleInfo {
    pub name: String,
    pub file: String,
    pub line: usize,
    pub source: String,
    /// Empty: any event type.
    pub event_type: Vec<String>,
    /// `category glob -> template`, one line each.
    pub targets: Vec<String>,
    pub when: Vec<String>,
    pub reply: Reply,
    /// The circuit breaker's threshold (None: the rule never pauses itself).
    pub pause_after_failures: Option<u32>,
}

impl Rule {
    pub fn info(&self) -> RuleInfo {
        let globs = |g: &[Glob]| g.iter().map(|g| g.as_str().to_string()).collect();
        let on = |c: &str| match c {
            crate::config::DEFAULT_CONTROLLER => String::new(),
            c => format!(" on `{c}`"),
        };
        let targets = match &self.target {
            Target::One {
                category,
                template,
                controller,
            } if category.is_empty() => {
                vec![format!("any category: {template}{}", on(controller))]
            }
            Target::One {
                category,
                template,
                controller,
            } => {
                vec![format!(
                    "category {}: {template}{}",
                    glob::list(category),
                    on(controller)
                )]
            }
            Target::ByCategory(map) => map
                .iter()
                .map(|(c, (t, on_c))| format!("category `{c}`: {t}{}", on(on_c)))
                .collect(),
        };
        RuleInfo {
            name: self.name.clone(),
            file: self.file.display().to_string(),
            line: self.line,
            source: self.source.clone(),
            event_type: globs(&self.event_type),
            targets,
            when: self.when.iter().map(|w| w.expr.clone()).collect(),
            reply: self.reply,
            pause_after_failures: self.pause_after_failures,
        }
    }

    /// The template for this event and the controller it is on, or why the rule does not apply.
    pub fn select(&self, ev: &EventView) -> Result<(&TemplateRef, &str), String> {
        if !self.event_type.is_empty() && !glob::any_match(&self.event_type, &ev.event_type) {
            return Err(format!(
                "event type `{}` does not match {}",
                ev.event_type,
                glob::list(&self.event_type)
            ));
        }
        match (&self.target, ev.category.as_deref()) {
            (
                Target::One {
                    category,
                    template,
                    controller,
                },
                _,
            ) if category.is_empty() => Ok((template, controller)),
            (_, None) => Err("the event has no category".into()),
            (
                Target::One {
                    category,
                    template,
                    controller,
                },
                Some(c),
            ) => {
                if glob::any_match(category, c) {
                    Ok((template, controller))
                } else {
                    Err(format!(
                        "category `{c}` does not match {}",
                        glob::list(category)
                    ))
                }
            }
            (Target::ByCategory(map), Some(c)) => {
                map.get(c).map(|(t, on)| (t, on.as_str())).ok_or_else(|| {
                    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                    format!("category `{c}` is not one of {}", keys.join(", "))
                })
            }
        }
    }

    pub fn check_when(&self, env: &Environment<'static>, ctx: &Value) -> Result<(), String> {
        for When { expr, name } in &self.when {
            match render::eval_when(env, name, expr, ctx) {
                Ok(true) => {}
                Ok(false) => return Err(format!("when `{expr}` is false")),
                Err(e) => return Err(format!("when `{expr}`: {e}")),
            }
        }
        Ok(())
    }

    /// The launch body, rendered, with each field checked for the type the controller wants.
    pub fn request(&self, env: &Environment<'static>, ctx: &Value) -> Result<Json, String> {
        let mut body = serde_json::Map::new();
        for (field, compiled) in &self.fields {
            let value = compiled.render(env, ctx, field)?;
            body.insert(field.to_string(), launch_value(field, value)?);
        }
        Ok(Json::Object(body))
    }
}

fn launch_value(field: &str, value: Json) -> Result<Json, String> {
    let as_id = |v: &Json| match v {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match field {
        "limit" => match value.as_str() {
            Some(s) if s.trim().is_empty() => {
                Err("limit rendered empty; refusing to run against the whole inventory".into())
            }
            _ => Ok(value),
        },
        "inventory" => as_id(&value)
            .map(Json::from)
            .ok_or_else(|| format!("inventory: `{value}` is not an inventory id")),
        "credentials" => value
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| {
                as_id(v)
                    .map(Json::from)
                    .ok_or_else(|| format!("credentials: `{v}` is not a credential id"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Json::Array),
        _ => Ok(value),
    }
}
