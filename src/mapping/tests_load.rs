//! Load errors: each names the right file and line.

use super::tests_eval::sources;
use super::*;
use std::path::Path;

/// Loads `yaml` as `rules.yaml` in a fresh directory; returns (line, message) of each error.
pub(super) fn errors(yaml: &str) -> Vec<(usize, String)> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, yaml).unwrap();
    let errs = Mappings::load(&file, &sources()).expect_err("load should fail");
    errs.into_iter()
        .map(|e| {
            assert_eq!(e.file, file);
            (e.line, e.message)
        })
        .collect()
}

/// The single error of `yaml`, which must be on `line` and contain `text`.
#[track_caller]
pub(super) fn one_error(yaml: &str, line: usize, text: &str) {
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, line, "{errs:?}");
    assert!(
        errs[0].1.contains(text),
        "{:?} does not contain {text:?}",
        errs[0].1
    );
}

const HEAD: &str = "# comment\nrules:\n  - name: ok\n    source: servicenow\n    launch: 1\n";

#[test]
fn yaml_syntax() {
    one_error(
        &format!("{HEAD}  - name: x\n    source: [servicenow\n"),
        7,
        "",
    );
    one_error("rules:\n  - name: a\n     source: x\n", 3, "");
    one_error("rules:\n  - name: a\n    source: x\n  launch: 1\n", 4, "");
}

#[test]
fn unknown_key() {
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    extra_var: {{}}\n"),
        9,
        "unknown field `extra_var`",
    );
    one_error("rulez: []\n", 1, "unknown field `rulez`");
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: {{job_templat: 1}}\n"),
        8,
        "unknown field `job_templat`",
    );
}

#[test]
fn missing_required_field() {
    one_error(
        &format!("{HEAD}  - name: x\n    launch: 1\n"),
        6,
        "missing field `source`",
    );
    one_error(
        &format!("{HEAD}  - source: github\n    launch: 1\n"),
        6,
        "missing field `name`",
    );
}

#[test]
fn wrong_types() {
    one_error(
        &format!(
            "{HEAD}  - name: x\n    source: github\n    launch: 1\n    max_concurrent: many\n"
        ),
        9,
        "",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    extra_vars: [a]\n"),
        9,
        "`extra_vars` must be a map",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    inventory: prod\n"),
        9,
        "inventory id",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    credentials: 5\n"),
        9,
        "list of credential ids",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    limit: \" \"\n"),
        9,
        "refusing to run against the whole inventory",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    max_concurrent: 0\n"),
        9,
        "at least 1",
    );
}

#[test]
fn template_references() {
    let yaml =
        |launch: &str| format!("{HEAD}  - name: x\n    source: github\n    launch: {launch}\n");
    one_error(
        &yaml("{job_template: 1, workflow: 2}"),
        8,
        "exactly one of `job_template` and `workflow`",
    );
    one_error(
        &yaml("{organization: Ops}"),
        8,
        "needs `job_template` or `workflow`",
    );
    one_error(
        &yaml("{job_template: 3, organization: Ops}"),
        8,
        "applies to a template given by name",
    );
    one_error(&yaml("-4"), 8, "must be positive");
    one_error(&yaml("Disk cleanup"), 8, "job template id");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("refs.yaml");
    let text = "rules:\n  - name: a\n    source: github\n    launch: {job_template: Disk cleanup, organization: Ops}\n  - name: b\n    source: github\n    launch: {workflow: 12}\n  - name: c\n    source: github\n    launch:\n      workflow: Deploy\n";
    std::fs::write(&file, text).unwrap();
    let m = Mappings::load(&file, &sources()).unwrap();
    let ev = EventView {
        id: uuid::Uuid::nil(),
        source: "github".into(),
        kind: SourceKind::Github,
        delivery_id: "1".into(),
        event_type: "push".into(),
        category: None,
        ticket: serde_json::json!({}),
        payload: crate::event::Payload::from_text("{}".into()),
        received_at: chrono::Utc::now(),
    };
    let refs: Vec<TemplateRef> = m
        .evaluate(&ev)
        .planned
        .into_iter()
        .map(|p| p.template)
        .collect();
    assert_eq!(
        refs,
        [
            TemplateRef::Name {
                kind: TemplateKind::Job,
                name: "Disk cleanup".into(),
                organization: Some("Ops".into())
            },
            TemplateRef::Id {
                kind: TemplateKind::Workflow,
                id: 12
            },
            TemplateRef::Name {
                kind: TemplateKind::Workflow,
                name: "Deploy".into(),
                organization: None
            },
        ]
    );
}

#[test]
fn unknown_source() {
    one_error(
        &format!("{HEAD}  - name: x\n\n    source: jira\n    launch: 1\n"),
        8,
        "unknown source `jira`; configured: github, pagerduty, servicenow",
    );
}

#[test]
fn reply_must_suit_the_kind() {
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    launch: 1\n    reply: work_notes\n"),
        9,
        "reply `work_notes` is not valid for a github source; use one of none, comment, status",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: pagerduty\n    launch: 1\n    reply: comment\n"),
        9,
        "use one of none, note",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: pagerduty\n    launch: 1\n    reply: shout\n"),
        9,
        "unknown variant `shout`",
    );
}

#[test]
fn on_ignored_fields_is_warn_or_fail() {
    one_error(
        &format!(
            "{HEAD}  - name: x\n    source: github\n    launch: 1\n    on_ignored_fields: ignore\n"
        ),
        9,
        "unknown variant `ignore`, expected one of warn, fail",
    );
    one_error(&format!("{HEAD}    on_ignored_fields: [fail]\n"), 6, "");
}

#[test]
fn pause_after_failures_is_at_least_one() {
    one_error(
        &format!("{HEAD}    pause_after_failures: 0\n"),
        6,
        "at least 1",
    );
    one_error(&format!("{HEAD}    pause_after_failures: -2\n"), 6, "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, format!("{HEAD}    pause_after_failures: 3\n")).unwrap();
    let m = Mappings::load(&file, &sources()).unwrap();
    assert_eq!(m.pause_after_failures("ok"), Some(3));
    assert_eq!(m.pause_after_failures("other"), None);
}

#[test]
fn launch_or_categories() {
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    event_type: push\n"),
        6,
        "needs `launch` (a template) or `categories`",
    );
    one_error(
        &format!(
            "{HEAD}  - name: x\n    source: github\n    launch: 1\n    categories: {{a: 2}}\n"
        ),
        8,
        "either `launch`",
    );
    one_error(
        &format!(
            "{HEAD}  - name: x\n    source: github\n    category: a\n    categories:\n      a: 2\n"
        ),
        8,
        "`category` goes with `launch`",
    );
    one_error(
        &format!("{HEAD}  - name: x\n    source: github\n    categories: {{}}\n"),
        8,
        "`categories` is empty",
    );
    one_error(&format!("{HEAD}  - name: x\n    source: github\n    categories:\n      a: 2\n      b: {{workflow: 0}}\n"), 10, "must be positive");
}

#[test]
fn bad_jinja() {
    let rule = "  - name: x\n    source: github\n    launch: 1\n";
    one_error(&format!("{HEAD}{rule}    extra_vars:\n      a: ok\n      b:\n        c: \"{{{{ ticket.number \"\n"), 12, "extra_vars.b.c: syntax error");
    one_error(
        &format!("{HEAD}{rule}    limit: \"{{% if %}}\"\n"),
        9,
        "limit: syntax error",
    );
    one_error(
        &format!("{HEAD}{rule}    when: \"payload.x ==\"\n"),
        9,
        "when `payload.x ==`: syntax error",
    );
    one_error(
        &format!("{HEAD}{rule}    when:\n      - category == 'a'\n      - \"1 +\"\n"),
        11,
        "when `1 +`",
    );
    one_error(
        &format!("{HEAD}{rule}    credentials:\n      - 1\n      - \"{{{{ x }}\"\n"),
        11,
        "credentials[1]",
    );
}

#[test]
fn bad_glob() {
    let rule = "  - name: x\n    source: github\n    launch: 1\n";
    one_error(
        &format!("{HEAD}{rule}    event_type: \"issues.[lu]*\"\n"),
        9,
        "event_type: bad glob `issues.[lu]*`",
    );
    one_error(
        &format!("{HEAD}{rule}    category:\n      - a\n      - \"\"\n"),
        11,
        "category: empty pattern",
    );
    one_error(
        &format!("{HEAD}{rule}    category: []\n"),
        9,
        "`category` is an empty list",
    );
}

#[test]
fn every_problem_is_reported() {
    let yaml = format!(
        "{HEAD}  - name: ok\n    source: jira\n    launch: 1\n  - name: y\n    source: github\n    launch: 1\n    reply: note\n    event_type: \"[\"\n"
    );
    let errs = errors(&yaml);
    let lines: Vec<usize> = errs.iter().map(|e| e.0).collect();
    assert_eq!(lines, [6, 7, 12, 13], "{errs:?}");
    assert!(
        errs[0]
            .1
            .contains("duplicate rule name `ok` (first defined at "),
        "{errs:?}"
    );
    assert!(errs[0].1.ends_with("rules.yaml:3)"), "{errs:?}");
}

#[test]
fn duplicate_names_across_files_and_display() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), HEAD).unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "\n\nrules:\n  - name: ok\n    source: github\n    launch: 2\n",
    )
    .unwrap();
    let errs = Mappings::load(dir.path(), &sources()).unwrap_err();
    assert_eq!(errs.len(), 1);
    let b = dir.path().join("b.yml");
    assert_eq!((errs[0].file.as_path(), errs[0].line), (b.as_path(), 4));
    let first = dir.path().join("a.yaml");
    assert_eq!(
        errs[0].to_string(),
        format!(
            "{}:4: duplicate rule name `ok` (first defined at {}:3)",
            b.display(),
            first.display()
        )
    );
}

#[test]
fn directory_loading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "rules:\n  - {name: second, source: github, launch: 2}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.yml"),
        "rules:\n  - {name: first, source: github, launch: 1}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.yaml"), "# nothing yet\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not: [yaml").unwrap();
    let m = Mappings::load(dir.path(), &sources()).unwrap();
    assert_eq!(m.rule_names(), ["first", "second"]);

    let empty = tempfile::tempdir().unwrap();
    assert!(Mappings::load(empty.path(), &sources()).unwrap().is_empty());
    assert!(Mappings::empty().is_empty());
    assert_eq!(Mappings::empty().len(), 0);
}

#[test]
fn missing_path_is_an_error() {
    let errs = Mappings::load(Path::new("/nonexistent/mappings"), &sources()).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 0);
    assert!(
        errs[0]
            .to_string()
            .starts_with("/nonexistent/mappings: cannot read: "),
        "{}",
        errs[0]
    );
}

/// A rule, or a `categories:` entry, naming a controller that is not configured.
#[test]
fn unknown_controllers_are_named_at_their_line() {
    one_error(
        "rules:\n  - name: a\n    source: servicenow\n    launch: 15\n    controller: prod\n",
        5,
        "unknown controller `prod`; configured: default, lab",
    );
    one_error(
        "rules:\n  - name: a\n    source: servicenow\n    categories:\n      disk_full: 15\n      \
         web: {job_template: 22, controller: qa}\n",
        6,
        "unknown controller `qa`",
    );
}
