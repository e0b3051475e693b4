//! Safe reload: a save in progress or a change that leaves no rules keeps the old rules.

use super::tests_eval::{sources, SEED};
use super::watch::{fingerprint, Settle};
use super::*;
use std::path::Path;

const TWO: &str = "rules:\n  - {name: two, source: github, launch: 5}\n";

/// A directory holding `a.yaml` with the seed rule, and the rules loaded from it.
fn seeded() -> (tempfile::TempDir, SharedMappings) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), SEED).unwrap();
    let shared = SharedMappings::new(Mappings::load(dir.path(), &sources()).unwrap());
    (dir, shared)
}

fn write_and_reload(shared: &SharedMappings, dir: &Path, file: &str, text: &str) -> ReloadStatus {
    std::fs::write(dir.join(file), text).unwrap();
    reload(shared, dir, &sources(), "test")
}

#[test]
fn an_empty_file_keeps_the_old_rules() {
    let (dir, shared) = seeded();
    assert_eq!(shared.last_reload(), None);
    for text in ["", "  \n\n", "# being edited\n"] {
        let status = write_and_reload(&shared, dir.path(), "a.yaml", text);
        assert!(!status.ok, "{text:?}");
        assert_eq!(status.rules, 1);
        assert!(status.errors[0].contains("a.yaml"), "{:?}", status.errors);
        assert!(
            status.errors[0].contains("rules: []"),
            "{:?}",
            status.errors
        );
        assert_eq!(shared.current().rule_names(), ["snow-remediation"]);
        assert_eq!(shared.last_reload(), Some(status));
    }
}

#[test]
fn an_explicit_empty_list_removes_the_rules() {
    let (dir, shared) = seeded();
    let status = write_and_reload(&shared, dir.path(), "a.yaml", "rules: []\n");
    assert!(status.ok, "{status:?}");
    assert_eq!((status.rules, shared.current().len()), (0, 0));
}

#[test]
fn half_written_yaml_keeps_the_old_rules() {
    let (dir, shared) = seeded();
    let cut = &SEED[..SEED.find("disk_full").unwrap()];
    for text in [
        "rules:\n",
        "rules:\n  - name: snow-remediation\n    source: servicenow\n",
        "rules:\n  - {name: two, source: git",
        cut,
    ] {
        let status = write_and_reload(&shared, dir.path(), "a.yaml", text);
        assert!(
            !status.ok && !status.errors.is_empty(),
            "{text:?}: {status:?}"
        );
        assert_eq!(
            shared.current().rule_names(),
            ["snow-remediation"],
            "{text:?}"
        );
    }
    // The finished file is taken.
    let status = write_and_reload(&shared, dir.path(), "a.yaml", TWO);
    assert!(status.ok, "{status:?}");
    assert_eq!(shared.current().rule_names(), ["two"]);
}

#[test]
fn removing_every_file_keeps_the_old_rules_but_one_file_may_go() {
    let (dir, shared) = seeded();
    assert!(write_and_reload(&shared, dir.path(), "b.yaml", TWO).ok);
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    assert!(reload(&shared, dir.path(), &sources(), "test").ok);
    assert_eq!(shared.current().len(), 1);

    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let status = reload(&shared, dir.path(), &sources(), "test");
    assert!(!status.ok);
    assert!(status.errors[0].contains("no mapping file"), "{status:?}");
    assert_eq!(shared.current().len(), 1);
}

#[test]
fn a_file_that_was_blank_before_does_not_block_reloads() {
    let (dir, _) = seeded();
    std::fs::write(dir.path().join("later.yaml"), "# rules to come\n").unwrap();
    let shared = SharedMappings::new(Mappings::load(dir.path(), &sources()).unwrap());
    let status = write_and_reload(&shared, dir.path(), "b.yaml", TWO);
    assert!(status.ok, "{status:?}");
    assert_eq!(shared.current().len(), 2);
}

#[test]
fn debounce_reloads_only_a_change_seen_twice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, SEED).unwrap();
    let mut settle = Settle::new(fingerprint(dir.path()));
    assert!(!settle.check(fingerprint(dir.path())), "nothing changed");

    // Caught half-way, then changed again before the next check: not yet.
    std::fs::write(&file, &SEED[..20]).unwrap();
    assert!(!settle.check(fingerprint(dir.path())));
    assert!(settle.pending());
    std::fs::write(
        &file,
        format!("{SEED}  - {{name: two, source: github, launch: 5}}\n"),
    )
    .unwrap();
    assert!(
        !settle.check(fingerprint(dir.path())),
        "changed between checks"
    );
    // The same on two checks in a row: reload, once.
    assert!(settle.check(fingerprint(dir.path())));
    assert!(!settle.pending());
    assert!(!settle.check(fingerprint(dir.path())), "already reloaded");

    // A change that is undone before it is confirmed is no change.
    std::fs::write(dir.path().join("b.yaml"), TWO).unwrap();
    assert!(!settle.check(fingerprint(dir.path())));
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    assert!(!settle.check(fingerprint(dir.path())));
    assert!(!settle.pending());
}
