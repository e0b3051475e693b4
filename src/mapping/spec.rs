//! The mapping file as written: serde structs with source positions.
//!
//! Values are wrapped in `Spanned` so that checks made after parsing can still name a line.
//! Template references, "one or many" strings and launch values have hand-written visitors:
//! serde's untagged enums lose the position and say only "did not match any variant".

use super::render::has_markup;
use super::{OnIgnored, Reply, TemplateRef};
use crate::domain::TemplateKind;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSpec {
    pub rules: Vec<Spanned<RuleSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSpec {
    // Required, but checked by the loader so that a missing one points at the rule's first
    // line rather than its last.
    pub name: Option<Spanned<String>>,
    pub source: Option<Spanned<String>>,
    pub event_type: Option<Spanned<OneOrMany>>,
    pub category: Option<Spanned<OneOrMany>>,
    pub launch: Option<Spanned<TemplateSpec>>,
    /// The controller this rule launches on (`controllers:`); unset: the source's.
    pub controller: Option<Spanned<String>>,
    pub categories: Option<Spanned<BTreeMap<String, Spanned<TemplateSpec>>>>,
    pub when: Option<Spanned<OneOrMany>>,
    pub extra_vars: Option<Spanned<Tree>>,
    pub limit: Option<Spanned<Tree>>,
    pub inventory: Option<Spanned<Tree>>,
    pub credentials: Option<Spanned<Tree>>,
    pub job_tags: Option<Spanned<Tree>>,
    pub skip_tags: Option<Spanned<Tree>>,
    pub reply: Option<Spanned<Reply>>,
    pub report_outcome: Option<bool>,
    pub max_concurrent: Option<Spanned<u32>>,
    pub coalesce_secs: Option<u64>,
    pub on_ignored_fields: Option<Spanned<OnIgnored>>,
    /// Circuit breaker: pause the rule after this many jobs in a row fail.
    pub pause_after_failures: Option<Spanned<u32>>,
    /// Rendered values are checked (see `guard`); these relax the checks for this rule.
    pub limit_patterns: Option<bool>,
    pub allow_templates_in_values: Option<bool>,
    pub max_value_chars: Option<Spanned<usize>>,
    /// A person approves each launch on the ticket first (README "Approval").
    pub approval: Option<Spanned<crate::domain::approval::Policy>>,
}

/// 1-based line of a spanned value (0 when the parser could not tell).
pub(crate) fn line_of<T>(s: &Spanned<T>) -> usize {
    s.referenced.line() as usize
}

/// A string or a list of strings (globs, `when` expressions).
#[derive(Debug)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl OneOrMany {
    /// Each string with its line; a single string takes the line of the key.
    pub fn items(&self, line: usize) -> Vec<(String, usize)> {
        match self {
            OneOrMany::One(s) => vec![(s.clone(), line)],
            OneOrMany::Many(v) => v.iter().map(|s| (s.value.clone(), line_of(s))).collect(),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    items.push(s);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// A template reference: `15`, `{job_template: 15}`, `{workflow: "Name", organization: "Ops"}`.
#[derive(Debug)]
/// A template, and the controller it is on when the entry names one (`controller:` in a
/// `categories:` entry).
pub(crate) struct TemplateSpec(pub TemplateRef, pub Option<String>);

enum IdOrName {
    Id(i64),
    Name(String),
}

impl<'de> Deserialize<'de> for IdOrName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdOrName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a template id or name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdOrName, E> {
                Ok(IdOrName::Id(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdOrName, E> {
                i64::try_from(v)
                    .map(IdOrName::Id)
                    .map_err(|_| E::custom("template id out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdOrName, E> {
                Ok(IdOrName::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

const TEMPLATE_EXPECTED: &str = "a job template id, or a map with `job_template` or `workflow` \
     (an id, or a name with an optional `organization`)";

impl<'de> Deserialize<'de> for TemplateSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TemplateSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(TEMPLATE_EXPECTED)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TemplateSpec, E> {
                make_ref(TemplateKind::Job, IdOrName::Id(v), None)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TemplateSpec, E> {
                let id = i64::try_from(v).map_err(|_| E::custom("template id out of range"))?;
                self.visit_i64(id)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TemplateSpec, A::Error> {
                let mut target: Option<(TemplateKind, IdOrName)> = None;
                let mut organization = None;
                let mut controller = None;
                while let Some(key) = map.next_key::<String>()? {
                    let kind = match key.as_str() {
                        "job_template" => TemplateKind::Job,
                        "workflow" => TemplateKind::Workflow,
                        "organization" => {
                            organization = Some(map.next_value::<String>()?);
                            continue;
                        }
                        "controller" => {
                            controller = Some(map.next_value::<String>()?);
                            continue;
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["job_template", "workflow", "organization", "controller"],
                            ))
                        }
                    };
                    if target.is_some() {
                        return Err(de::Error::custom(
                            "give exactly one of `job_template` and `workflow`",
                        ));
                    }
                    target = Some((kind, map.next_value()?));
                }
                let (kind, what) = target.ok_or_else(|| {
                    de::Error::custom("a template needs `job_template` or `workflow`")
                })?;
                let TemplateSpec(r, _) = make_ref(kind, what, organization)?;
                Ok(TemplateSpec(r, controller))
            }
        }
        d.deserialize_any(V)
    }
}

fn make_ref<E: de::Error>(
    kind: TemplateKind,
    what: IdOrName,
    organization: Option<String>,
) -> Result<TemplateSpec, E> {
    match what {
        IdOrName::Id(id) if id <= 0 => {
            Err(E::custom(format!("template id must be positive, not {id}")))
        }
        IdOrName::Id(_) if organization.is_some() => Err(E::custom(
            "`organization` applies to a template given by name, not by id",
        )),
        IdOrName::Id(id) => Ok(TemplateSpec(TemplateRef::Id { kind, id }, None)),
        IdOrName::Name(name) if name.trim().is_empty() => Err(E::custom("template name is empty")),
        IdOrName::Name(name) => Ok(TemplateSpec(
            TemplateRef::Name {
                kind,
                name,
                organization,
            },
            None,
        )),
    }
}

/// Any YAML value, with the line of every nested value, for launch fields.
#[derive(Debug)]
pub(crate) enum Tree {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Spanned<Tree>>),
    Map(Vec<(String, Spanned<Tree>)>),
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Tree, E> {
                Ok(Tree::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tree, E> {
                Ok(Tree::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Tree, E> {
                Ok(Tree::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tree, E> {
                Ok(i64::try_from(v).map_or(Tree::Float(v as f64), Tree::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Tree, E> {
                Ok(Tree::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tree, E> {
                Ok(Tree::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Tree>>()? {
                    items.push(item);
                }
                Ok(Tree::List(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.push((key, map.next_value::<Spanned<Tree>>()?));
                }
                Ok(Tree::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// The controller's type for each launch field; strings may be templates.
pub(crate) fn check_shape(field: &str, tree: &Tree) -> Result<(), String> {
    let id_like = |t: &Tree| match t {
        Tree::Int(i) => *i > 0,
        Tree::Str(s) => has_markup(s) || s.trim().parse::<i64>().is_ok_and(|i| i > 0),
        _ => false,
    };
    match (field, tree) {
        ("extra_vars", Tree::Map(_)) => Ok(()),
        ("extra_vars", _) => Err("`extra_vars` must be a map of variable names to values".into()),
        ("limit", Tree::Str(s)) if s.trim().is_empty() => {
            Err("limit is empty; refusing to run against the whole inventory".into())
        }
        ("limit" | "job_tags" | "skip_tags", Tree::Str(_)) => Ok(()),
        ("limit" | "job_tags" | "skip_tags", _) => Err(format!("`{field}` must be a string")),
        ("inventory", t) if id_like(t) => Ok(()),
        ("inventory", _) => {
            Err("`inventory` must be an inventory id (or a template giving one)".into())
        }
        ("credentials", Tree::List(items)) if items.iter().all(|t| id_like(&t.value)) => Ok(()),
        ("credentials", _) => Err("`credentials` must be a list of credential ids".into()),
        _ => Ok(()),
    }
}
