//! Jinja rendering of launch fields and `when` expressions, with minijinja.
//!
//! Templates are compiled once, at load, into the Mappings' environment. Undefined values
//! are errors (strict), so a typo in a field name fails the launch instead of sending "".

use super::EventView;
use crate::event::Payload;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{context, AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;

pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Output goes to Ansible, not to a browser; a key ending in `.html` must not escape.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env
}

/// What the templates see: `event`, plus `ticket`, `payload`, `category`, `event_type` and
/// `source` as shortcuts.
pub(crate) fn context(ev: &EventView) -> Value {
    let event = serde_json::json!({
        "id": ev.id.to_string(),
        "source": ev.source,
        "kind": ev.kind.as_str(),
        "delivery_id": ev.delivery_id,
        "event_type": ev.event_type,
        "category": ev.category,
        "ticket": ev.ticket,
        "received_at": ev.received_at.to_rfc3339(),
    });
    context! {
        event => Value::from_serialize(&event),
        ticket => Value::from_serialize(&ev.ticket),
        payload => JsonView::root(ev.payload.clone()),
        category => ev.category.clone(),
        event_type => ev.event_type.clone(),
        source => ev.source.clone(),
    }
}

/// A JSON document as templates see it, converted lazily: only the values a template reads
/// become minijinja values (a GitHub payload has hundreds of fields, a rule reads a few).
/// `path` is the JSON pointer of this node in `root`.
#[derive(Debug)]
struct JsonView {
    root: Payload,
    path: String,
}

impl JsonView {
    /// The payload, not parsed until a template reads it (it is always an object).
    fn root(root: Payload) -> Value {
        Value::from_object(JsonView {
            root,
            path: String::new(),
        })
    }

    fn at(root: Payload, path: String) -> Value {
        match root.value().pointer(&path) {
            Some(Json::Object(_) | Json::Array(_)) => Value::from_object(JsonView { root, path }),
            Some(scalar) => Value::from_serialize(scalar),
            None => Value::UNDEFINED,
        }
    }

    fn node(&self) -> &Json {
        self.root.value().pointer(&self.path).unwrap_or(&Json::Null)
    }

    fn child(&self, key: &str) -> Value {
        let key = key.replace('~', "~0").replace('/', "~1");
        Self::at(self.root.clone(), format!("{}/{key}", self.path))
    }
}

impl Object for JsonView {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        match self.node() {
            Json::Array(_) => ObjectRepr::Seq,
            _ => ObjectRepr::Map,
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.node() {
            Json::Object(m) => {
                let k = key.as_str()?;
                m.contains_key(k).then(|| self.child(k))
            }
            Json::Array(a) => {
                let i = key.as_usize()?;
                (i < a.len()).then(|| self.child(&i.to_string()))
            }
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.node() {
            Json::Object(m) => {
                Enumerator::Values(m.keys().map(|k| Value::from(k.as_str())).collect())
            }
            Json::Array(a) => Enumerator::Seq(a.len()),
            _ => Enumerator::Empty,
        }
    }
}

/// A launch field after load: literal values stay as they are, strings with Jinja
/// markup are compiled templates (registered in the environment under `name`).
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    Literal(Json),
    Template { name: String, source: String },
    List(Vec<Compiled>),
    Map(Vec<(String, Compiled)>),
}

/// True when a string needs rendering; plain strings are kept as literals.
pub(crate) fn has_markup(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

impl Compiled {
    pub fn render(
        &self,
        env: &Environment<'static>,
        ctx: &Value,
        path: &str,
    ) -> Result<Json, String> {
        match self {
            Compiled::Literal(v) => Ok(v.clone()),
            Compiled::Template { name, source } => {
                let t = env
                    .get_template(name)
                    .map_err(|e| format!("{path}: {}", describe(&e, source)))?;
                t.render(ctx).map(Json::String).map_err(|e| {
                    let names = undefined(env, t.undeclared_variables(true), ctx);
                    format!("{path}: {}", runtime(&e, source, &names))
                })
            }
            Compiled::List(items) => items
                .iter()
                .enumerate()
                .map(|(i, c)| c.render(env, ctx, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            Compiled::Map(entries) => {
                let mut out = serde_json::Map::new();
                for (k, c) in entries {
                    out.insert(k.clone(), c.render(env, ctx, &format!("{path}.{k}"))?);
                }
                Ok(Json::Object(out))
            }
        }
    }
}

/// Checks the syntax of a `when` expression.
pub(crate) fn check_expression(env: &Environment<'static>, expr: &str) -> Result<(), String> {
    env.compile_expression(expr)
        .map(|_| ())
        .map_err(|e| describe(&e, expr))
}

/// A `when` expression as a template that renders `1` when it is true, so it is compiled once
/// at load. Undefined values are errors in strict mode, also when tested for truth, as they
/// would be in a launch field.
pub(crate) fn when_source(expr: &str) -> String {
    format!("{{% if ({expr}) %}}1{{% endif %}}")
}

/// Evaluates a `when` expression compiled at load (`when_source`, registered as `name`).
pub(crate) fn eval_when(
    env: &Environment<'static>,
    name: &str,
    expr: &str,
    ctx: &Value,
) -> Result<bool, String> {
    let t = env.get_template(name).map_err(|e| describe(&e, expr))?;
    match t.render(ctx) {
        Ok(out) => Ok(out == "1"),
        Err(e) => {
            let names = undefined(env, t.undeclared_variables(true), ctx);
            Err(runtime(&e, expr, &names))
        }
    }
}

/// Which of the variable paths a template reads (`payload.a.b`) are undefined in `ctx`.
/// minijinja's own error says only "undefined value", often without a position.
fn undefined(env: &Environment<'static>, paths: HashSet<String>, ctx: &Value) -> Vec<String> {
    let mut names: Vec<String> = paths
        .into_iter()
        .filter(|p| {
            env.compile_expression(p)
                .is_ok_and(|e| e.eval(ctx).map_or(true, |v| v.is_undefined()))
        })
        .collect();
    names.sort();
    names
}

/// One line about a render or evaluation error, naming the undefined variables if any.
fn runtime(e: &Error, source: &str, undefined: &[String]) -> String {
    if e.kind() != ErrorKind::UndefinedError {
        return describe(e, source);
    }
    let names: Vec<String> = match undefined {
        [] => e
            .range()
            .and_then(|r| source.get(r))
            .map(|s| s.trim().to_string())
            .into_iter()
            .collect(),
        names => names.to_vec(),
    };
    let hint = "(use `| default(…)` if it may be missing)";
    match names.as_slice() {
        [] => format!("undefined value in `{}` {hint}", source.trim()),
        [one] => format!("`{one}` is undefined {hint}"),
        many => format!("`{}` are undefined {hint}", many.join("`, `")),
    }
}

/// One line about a minijinja error.
pub(crate) fn describe(e: &Error, source: &str) -> String {
    let what = e
        .detail()
        .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()));
    match e.line() {
        Some(n) if source.contains('\n') => format!("{what} (template line {n})"),
        _ => what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lazy view reads like the converted document did, for what rules do with payloads.
    #[test]
    fn the_lazy_payload_view_reads_like_the_document() {
        let doc = serde_json::json!({
            "issue": {"number": 42, "labels": [{"name": "disk"}, {"name": "web"}]},
            "a/b": "slash", "flag": true, "none": null, "n": 1.5
        });
        let env = environment();
        let ctx = context! { payload => JsonView::root(Payload::from_text(doc.to_string())) };
        let render = |src: &str| env.render_str(src, &ctx).unwrap();
        assert_eq!(render("{{ payload.issue.number }}"), "42");
        assert_eq!(render("{{ payload.issue.labels[1].name }}"), "web");
        assert_eq!(render("{{ payload.issue.labels[-1].name }}"), "web");
        assert_eq!(
            render("{{ payload.issue.labels | map(attribute='name') | join(',') }}"),
            "disk,web"
        );
        assert_eq!(render("{{ payload.issue.labels | length }}"), "2");
        assert_eq!(
            render("{% for k in payload.issue %}{{ k }} {% endfor %}"),
            "labels number "
        );
        assert_eq!(render("{{ payload['a/b'] }}"), "slash");
        let yes = |cond: &str| render(&format!("{{% if {cond} %}}y{{% else %}}n{{% endif %}}"));
        assert_eq!(yes("payload.flag and payload.n > 1"), "y");
        assert_eq!(yes("payload.none is none"), "y");
        assert_eq!(yes("'number' in payload.issue"), "y");
        assert_eq!(yes("payload.missing is defined"), "n");
        assert_eq!(yes("payload.issue.labels"), "y");
        assert_eq!(render("{{ payload.missing | default('x') }}"), "x");
        assert!(
            env.render_str("{{ payload.missing }}", &ctx).is_err(),
            "strict"
        );
        // Whole maps and lists print as the fully converted document prints them.
        let old = context! { payload => Value::from_serialize(&doc) };
        for src in [
            "{{ payload.issue }}",
            "{{ payload.issue.labels }}",
            "{{ payload.n }}",
        ] {
            assert_eq!(render(src), env.render_str(src, &old).unwrap(), "{src}");
        }
    }
}
