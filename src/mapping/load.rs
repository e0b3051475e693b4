//! Reading mapping files and checking them, every problem reported as `file:line: message`.

pub(crate) use super::files::mapping_files;
use super::files::yaml_message;
use super::glob::Glob;
use super::guard::{self, Guard};
use super::render::{self, has_markup, Compiled};
use super::rule::{Rule, Target, When};
use super::spec::{check_shape, line_of, FileSpec, OneOrMany, RuleSpec, Tree};
use super::{Known, MappingError, Mappings, Reply};
use crate::config::SourceKind;
use serde_json::Value as Json;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

impl Mappings {
    /// Loads one file, or every `*.yaml` / `*.yml` in a directory (sorted by name).
    /// All problems are returned, not only the first.
    pub fn load(path: &Path, known: &Known) -> Result<Mappings, Vec<MappingError>> {
        let files = mapping_files(path).map_err(|e| vec![e])?;
        let mut loader = Loader {
            known,
            env: render::environment(),
            rules: Vec::new(),
            names: HashMap::new(),
            errors: Vec::new(),
            templates: 0,
            blank_files: Vec::new(),
            declared: 0,
            hash: Sha256::new(),
        };
        for file in &files {
            loader.file(file);
        }
        if loader.errors.is_empty() {
            Ok(Mappings {
                approval_fields: Mappings::index(&loader.rules),
                rules: loader.rules,
                env: loader.env,
                blank_files: loader.blank_files,
                declared: loader.declared,
                version: hex::encode(&loader.hash.finalize()[..6]),
            })
        } else {
            Err(loader.errors)
        }
    }
}

struct Loader<'a> {
    known: &'a Known,
    env: minijinja::Environment<'static>,
    rules: Vec<Rule>,
    /// Rule name -> where it was first defined.
    names: HashMap<String, (PathBuf, usize)>,
    errors: Vec<MappingError>,
    /// Templates compiled so far; numbers their names so that no two can clash.
    templates: usize,
    /// Files with no YAML content (reload treats a newly blank one as a save in progress).
    blank_files: Vec<PathBuf>,
    /// Files with a `rules:` key, even an empty list.
    declared: usize,
    /// Over each file's name and text: the rules version (`Mappings::version`).
    hash: Sha256,
}

impl Loader<'_> {
    fn error(&mut self, file: &Path, line: usize, message: impl Into<String>) {
        self.errors.push(MappingError {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        });
    }

    fn file(&mut self, file: &Path) {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => return self.error(file, 0, format!("cannot read: {e}")),
        };
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        self.hash.update(name.unwrap_or_default().as_bytes());
        self.hash.update([0]);
        self.hash.update(text.as_bytes());
        self.hash.update([0]);
        // An empty file (or only comments) is a file with no rules yet, not an error.
        let spec = match serde_saphyr::from_str::<Option<FileSpec>>(&text) {
            Ok(Some(spec)) => spec,
            Ok(None) => return self.blank_files.push(file.to_path_buf()),
            Err(e) => {
                let line = e.location().map_or(0, |l| l.line() as usize);
                return self.error(file, line, yaml_message(&e));
            }
        };
        self.declared += 1;
        let first_error = self.errors.len();
        for rule in spec.rules {
            let line = line_of(&rule);
            if let Some(rule) = self.rule(file, line, rule.value) {
                self.rules.push(rule);
            }
        }
        // In reading order, not in the order the checks ran.
        self.errors[first_error..].sort_by_key(|e| e.line);
    }

    /// Checks and compiles one rule; on any problem records it and returns None.
    fn rule(&mut self, file: &Path, line: usize, spec: RuleSpec) -> Option<Rule> {
        let before = self.errors.len();
        let name = self.check_name(file, line, spec.name.as_ref());
        let (source, kind) = self.check_source(file, line, spec.source.as_ref());
        let event_type = self.globs(file, "event_type", spec.event_type.as_ref());
        let on = self.controller(file, spec.controller.as_ref(), &source);
        let target = self.target(file, line, &spec, &on);
        let when = self.when(file, &name, spec.when.as_ref());

        let reply = match (&spec.reply, kind) {
            (Some(r), Some(kind)) if !Reply::allowed_for(kind).contains(&r.value) => {
                let allowed: Vec<&str> = Reply::allowed_for(kind)
                    .iter()
                    .map(|r| r.as_str())
                    .collect();
                let msg = format!(
                    "reply `{}` is not valid for a {} source; use one of {}",
                    r.value.as_str(),
                    kind.as_str(),
                    allowed.join(", ")
                );
                self.error(file, line_of(r), msg);
                Reply::None
            }
            (Some(r), _) => r.value,
            (None, kind) => kind.map_or(Reply::None, Reply::default_for),
        };
        if let Some(m) = spec.max_concurrent.as_ref().filter(|m| m.value == 0) {
            self.error(file, line_of(m), "max_concurrent must be at least 1");
        }
        if let Some(m) = spec.pause_after_failures.as_ref().filter(|m| m.value == 0) {
            self.error(file, line_of(m), "pause_after_failures must be at least 1");
        }
        let guard = self.guard(file, &spec);
        if let (Some(a), Some(kind)) = (&spec.approval, kind) {
            if let Some(problem) = a.value.problem(kind) {
                self.error(file, line_of(a), problem);
            }
        }

        let fields = self.fields(file, &name, &spec);
        if self.errors.len() > before {
            return None;
        }
        Some(Rule {
            name,
            file: file.to_path_buf(),
            line,
            source,
            event_type,
            target: target?,
            when,
            fields,
            reply,
            report_outcome: spec.report_outcome.unwrap_or(true),
            max_concurrent: spec.max_concurrent.map(|m| m.value),
            coalesce_secs: spec.coalesce_secs,
            on_ignored_fields: spec.on_ignored_fields.map(|s| s.value).unwrap_or_default(),
            pause_after_failures: spec.pause_after_failures.map(|m| m.value),
            guard,
            approval: spec.approval.map(|a| a.value),
        })
    }

    /// The rule's value checks. A literal limit is checked now, so `check` reports it.
    fn guard(&mut self, file: &Path, spec: &RuleSpec) -> Guard {
        let g = Guard {
            limit_patterns: spec.limit_patterns.unwrap_or(false),
            allow_templates_in_values: spec.allow_templates_in_values.unwrap_or(false),
            max_value_chars: spec
                .max_value_chars
                .as_ref()
                .map_or(Guard::default().max_value_chars, |m| m.value),
        };
        if let Some(m) = spec.max_value_chars.as_ref().filter(|m| m.value == 0) {
            self.error(file, line_of(m), "max_value_chars must be at least 1");
        }
        if let Some(limit) = &spec.limit {
            match &limit.value {
                Tree::Str(s) if !has_markup(s) && !s.trim().is_empty() && !g.limit_patterns => {
                    if let Err(e) = guard::check_limit(s) {
                        self.error(file, line_of(limit), e);
                    }
                }
                _ => {}
            }
        }
        g
    }

    /// The rule's name; records it, or an error if it is missing, empty or taken.
    fn check_name(&mut self, file: &Path, line: usize, spec: Option<&Spanned<String>>) -> String {
        let Some(spec) = spec else {
            self.error(file, line, "missing field `name`");
            return String::new();
        };
        let name = spec.value.trim().to_string();
        if name.is_empty() {
            self.error(file, line_of(spec), "rule `name` is empty");
        } else if let Some((f, l)) = self.names.get(&name) {
            let msg = format!(
                "duplicate rule name `{name}` (first defined at {}:{l})",
                f.display()
            );
            self.error(file, line_of(spec), msg);
        } else {
            self.names
                .insert(name.clone(), (file.to_path_buf(), line_of(spec)));
        }
        name
    }

    /// The rule's source and its kind (None, with an error recorded, when not configured).
    fn check_source(
        &mut self,
        file: &Path,
        line: usize,
        spec: Option<&Spanned<String>>,
    ) -> (String, Option<SourceKind>) {
        let Some(spec) = spec else {
            self.error(file, line, "missing field `source`");
            return (String::new(), None);
        };
        let source = spec.value.clone();
        let kind = self.known.kind(&source);
        if kind.is_none() {
            let mut known: Vec<&str> = self.known.sources.keys().map(String::as_str).collect();
            known.sort_unstable();
            let msg = match known.is_empty() {
                true => format!("unknown source `{source}` (no sources are configured)"),
                false => format!(
                    "unknown source `{source}`; configured: {}",
                    known.join(", ")
                ),
            };
            self.error(file, line_of(spec), msg);
        }
        (source, kind)
    }

    fn globs(&mut self, file: &Path, key: &str, spec: Option<&Spanned<OneOrMany>>) -> Vec<Glob> {
        let Some(spec) = spec else { return Vec::new() };
        let items = spec.value.items(line_of(spec));
        if items.is_empty() {
            self.error(file, line_of(spec), format!("`{key}` is an empty list"));
        }
        let mut globs = Vec::new();
        for (pattern, line) in items {
            match Glob::new(&pattern) {
                Ok(g) => globs.push(g),
                Err(e) => self.error(file, line, format!("{key}: {e}")),
            }
        }
        globs
    }

    /// The controller a rule launches on: the one it names, else its source's.
    fn controller(&mut self, file: &Path, spec: Option<&Spanned<String>>, source: &str) -> String {
        match spec {
            Some(named) => self.check_controller(file, line_of(named), &named.value),
            None => self.known.sources.get(source).map_or_else(
                || crate::config::DEFAULT_CONTROLLER.to_string(),
                |s| s.controller.clone(),
            ),
        }
    }

    fn check_controller(&mut self, file: &Path, line: usize, name: &str) -> String {
        if !self.known.controllers.contains(name) {
            let known: Vec<&str> = self.known.controllers.iter().map(String::as_str).collect();
            let msg = match known.is_empty() {
                true => {
                    format!("unknown controller `{name}` (none is configured: the bridge runs dry)")
                }
                false => format!(
                    "unknown controller `{name}`; configured: {}",
                    known.join(", ")
                ),
            };
            self.error(file, line, msg);
        }
        name.to_string()
    }

    fn target(&mut self, file: &Path, line: usize, spec: &RuleSpec, on: &str) -> Option<Target> {
        match (&spec.launch, &spec.categories) {
            (Some(launch), None) => Some(Target::One {
                category: self.globs(file, "category", spec.category.as_ref()),
                template: launch.value.0.clone(),
                controller: match &launch.value.1 {
                    Some(c) => self.check_controller(file, line_of(launch), c),
                    None => on.to_string(),
                },
            }),
            (None, Some(_)) if spec.category.is_some() => {
                let msg =
                    "`category` goes with `launch`; with `categories` the keys are the categories";
                let at = spec.category.as_ref().map_or(line, line_of);
                self.error(file, at, msg);
                None
            }
            (None, Some(map)) if map.value.is_empty() => {
                self.error(file, line_of(map), "`categories` is empty");
                None
            }
            (None, Some(map)) => {
                let mut by = BTreeMap::new();
                for (k, v) in &map.value {
                    let controller = match &v.value.1 {
                        Some(c) => self.check_controller(file, line_of(v), c),
                        None => on.to_string(),
                    };
                    by.insert(k.clone(), (v.value.0.clone(), controller));
                }
                Some(Target::ByCategory(by))
            }
            (Some(launch), Some(_)) => {
                let msg =
                    "give either `launch` (with an optional `category`) or `categories`, not both";
                self.error(file, line_of(launch), msg);
                None
            }
            (None, None) => {
                let msg =
                    "a rule needs `launch` (a template) or `categories` (category -> template)";
                self.error(file, line, msg);
                None
            }
        }
    }

    /// Each `when` expression, checked, then compiled once into a template (`render::when`).
    fn when(&mut self, file: &Path, rule: &str, spec: Option<&Spanned<OneOrMany>>) -> Vec<When> {
        let Some(spec) = spec else { return Vec::new() };
        let mut exprs = Vec::new();
        for (expr, line) in spec.value.items(line_of(spec)) {
            if expr.trim().is_empty() {
                self.error(file, line, "when: empty expression");
                continue;
            }
            if let Err(e) = render::check_expression(&self.env, &expr) {
                self.error(file, line, format!("when `{expr}`: {e}"));
                continue;
            }
            self.templates += 1;
            let name = format!("{}:{rule}/when", self.templates);
            match self
                .env
                .add_template_owned(name.clone(), render::when_source(&expr))
            {
                Ok(()) => exprs.push(When { expr, name }),
                Err(e) => {
                    let msg = format!("when `{expr}`: {}", render::describe(&e, &expr));
                    self.error(file, line, msg);
                }
            }
        }
        exprs
    }

    /// The launch fields, type-checked and compiled, in request order.
    fn fields(
        &mut self,
        file: &Path,
        rule: &str,
        spec: &RuleSpec,
    ) -> Vec<(&'static str, Compiled)> {
        let all = [
            ("extra_vars", &spec.extra_vars),
            ("limit", &spec.limit),
            ("inventory", &spec.inventory),
            ("credentials", &spec.credentials),
            ("job_tags", &spec.job_tags),
            ("skip_tags", &spec.skip_tags),
        ];
        let mut out = Vec::new();
        for (field, tree) in all {
            let Some(tree) = tree else { continue };
            if let Err(msg) = check_shape(field, &tree.value) {
                self.error(file, line_of(tree), msg);
                continue;
            }
            if let Some(c) = self.compile(file, rule, field.to_string(), tree) {
                out.push((field, c));
            }
        }
        out
    }

    fn compile(
        &mut self,
        file: &Path,
        rule: &str,
        path: String,
        tree: &Spanned<Tree>,
    ) -> Option<Compiled> {
        let literal = |v: Json| Some(Compiled::Literal(v));
        match &tree.value {
            Tree::Null => literal(Json::Null),
            Tree::Bool(b) => literal(Json::Bool(*b)),
            Tree::Int(i) => literal(Json::from(*i)),
            Tree::Float(f) => {
                literal(serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number))
            }
            Tree::Str(s) if !has_markup(s) => literal(Json::String(s.clone())),
            Tree::Str(s) => {
                self.templates += 1;
                let name = format!("{}:{rule}/{path}", self.templates);
                match self.env.add_template_owned(name.clone(), s.clone()) {
                    Ok(()) => Some(Compiled::Template {
                        name,
                        source: s.clone(),
                    }),
                    Err(e) => {
                        let msg = format!("{path}: {}", render::describe(&e, s));
                        self.error(file, line_of(tree), msg);
                        None
                    }
                }
            }
            Tree::List(items) => {
                let compiled: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.compile(file, rule, format!("{path}[{i}]"), t))
                    .collect();
                compiled
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Compiled::List)
            }
            Tree::Map(entries) => {
                let compiled: Vec<_> = entries
                    .iter()
                    .map(|(k, t)| {
                        Some((
                            k.clone(),
                            self.compile(file, rule, format!("{path}.{k}"), t)?,
                        ))
                    })
                    .collect();
                compiled
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(Compiled::Map)
            }
        }
    }
}
