//! The shipped example files, and hot reload.

use super::tests_eval::{event, load_str, snow, snow_payload, sources, SEED};
use super::*;
use serde_json::json;
use std::path::Path;

fn shipped() -> Mappings {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    Mappings::load(&dir, &sources()).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn shipped_examples_load_and_match() {
    let m = shipped();
    assert!(m.rule_names().contains(&"snow-remediation".to_string()));
    for file in ["servicenow.yaml", "github.yaml", "pagerduty.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("mappings")
            .join(file);
        let one = Mappings::load(&path, &sources()).unwrap();
        assert!(!one.is_empty(), "{file}");
    }

    // The seed rule, as shipped.
    let d = m.evaluate(&snow("disk_full", snow_payload()));
    assert_eq!(d.planned.len(), 1, "{d:?}");
    assert_eq!(
        d.planned[0].request,
        json!({"extra_vars": {"incident_number": "INC0010001", "target_host": "web01.example.com", "priority": "2"}})
    );

    let ticket =
        json!({"repo": "acme/web", "number": "42", "url": "https://github.com/acme/web/issues/42"});
    let payload = json!({"action": "labeled", "label": {"name": "disk_full"}, "sender": {"login": "octocat"}});
    let d = m.evaluate(&event(
        "github",
        SourceKind::Github,
        "issues.labeled",
        Some("disk_full"),
        ticket,
        payload,
    ));
    let p = &d.planned[0];
    let by_name = |kind, name: &str| TemplateRef::Name {
        kind,
        name: name.into(),
        organization: Some("Ops".into()),
    };
    assert_eq!(p.template, by_name(TemplateKind::Job, "Disk cleanup"));
    assert_eq!(p.reply, Reply::Comment);
    assert_eq!(p.request["extra_vars"]["requested_by"], "octocat");

    let ticket = json!({"repo": "acme/web", "sha": "abc123"});
    let d = m.evaluate(&event(
        "github",
        SourceKind::Github,
        "push",
        Some("main"),
        ticket,
        json!({}),
    ));
    let p = &d.planned[0];
    assert_eq!(p.template, by_name(TemplateKind::Workflow, "Deploy web"));
    assert_eq!(
        (p.reply, p.request["extra_vars"]["sha"].as_str()),
        (Reply::Status, Some("abc123"))
    );

    let ticket = json!({"number": "1234", "incident_id": "PABC123"});
    let payload = json!({"event": {"event_type": "incident.triggered", "data": {"service": {"summary": "web-tier"}}}});
    let d = m.evaluate(&event(
        "pagerduty",
        SourceKind::Pagerduty,
        "incident.triggered",
        Some("web-tier"),
        ticket,
        payload,
    ));
    let p = &d.planned[0];
    assert_eq!(
        p.template,
        TemplateRef::Id {
            kind: TemplateKind::Job,
            id: 22
        }
    );
    assert_eq!(
        (p.reply, p.max_concurrent, p.coalesce_secs),
        (Reply::Note, Some(2), Some(600))
    );
    assert_eq!(p.request["extra_vars"]["urgency"], "high");
}

#[test]
fn shared_mappings_swap_snapshots() {
    let shared = SharedMappings::new(Mappings::empty());
    let before = shared.current();
    assert!(before.is_empty());
    shared.clone().replace(load_str(SEED));
    assert_eq!(shared.current().len(), 1);
    // A snapshot taken earlier is unchanged.
    assert!(before.is_empty());
}

#[tokio::test]
async fn watch_reloads_on_change_and_keeps_rules_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    std::fs::write(&file, SEED).unwrap();
    let shared = SharedMappings::new(Mappings::load(dir.path(), &sources()).unwrap());
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(watch(
        shared.clone(),
        dir.path().to_path_buf(),
        sources(),
        std::time::Duration::from_millis(20),
        cancel.clone(),
    ));
    let wait_for = |n: usize| {
        let shared = shared.clone();
        async move {
            for _ in 0..250 {
                if shared.current().len() == n {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            false
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    std::fs::write(
        dir.path().join("b.yaml"),
        "rules:\n  - {name: two, source: github, launch: 5}\n",
    )
    .unwrap();
    assert!(wait_for(2).await, "new file picked up");

    std::fs::write(
        dir.path().join("b.yaml"),
        "rules:\n  - {name: two, source: nowhere, launch: 5}\n",
    )
    .unwrap();
    let mut refused = None;
    for _ in 0..250 {
        refused = shared.last_reload().filter(|s| !s.ok);
        if refused.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let refused = refused.expect("the broken file is tried");
    assert!(refused.errors[0].contains("unknown source"), "{refused:?}");
    assert_eq!(refused.rules, 2);
    assert_eq!(
        shared.current().len(),
        2,
        "a broken file keeps the old rules"
    );

    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    assert!(wait_for(1).await, "removed file dropped");
    cancel.cancel();
    task.await.unwrap();
}
