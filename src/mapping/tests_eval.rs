//! Matching and rendering.

use super::*;
use crate::config::SourceKind;
use serde_json::json;

pub(super) fn sources() -> Known {
    Known::of(
        &[
            ("servicenow", SourceKind::Servicenow),
            ("github", SourceKind::Github),
            ("pagerduty", SourceKind::Pagerduty),
        ],
        &["default", "lab"],
    )
}

pub(super) fn load_str(yaml: &str) -> Mappings {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, yaml).unwrap();
    Mappings::load(&file, &sources()).unwrap_or_else(|errors| {
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

pub(super) fn event(
    source: &str,
    kind: SourceKind,
    event_type: &str,
    category: Option<&str>,
    ticket: Json,
    payload: Json,
) -> EventView {
    EventView {
        id: uuid::Uuid::nil(),
        source: source.into(),
        kind,
        delivery_id: "d-1".into(),
        event_type: event_type.into(),
        category: category.map(str::to_string),
        ticket,
        payload: crate::event::Payload::from_text(payload.to_string()),
        received_at: "2026-01-02T03:04:05Z".parse().unwrap(),
    }
}

pub(super) fn snow(category: &str, payload: Json) -> EventView {
    let ticket = json!({"table": "incident", "sys_id": "abc123", "number": "INC0010001"});
    event(
        "servicenow",
        SourceKind::Servicenow,
        "incident.insert",
        Some(category),
        ticket,
        payload,
    )
}

pub(super) fn snow_payload() -> Json {
    json!({"number": "INC0010001", "category": "disk_full", "cmdb_ci": "web01.example.com", "priority": "2"})
}

pub(super) const SEED: &str = r#"
rules:
  - name: snow-remediation
    source: servicenow
    event_type: "incident.*"
    categories:
      disk_full: 15
      service_down: 22
      cert_expiry: 31
    extra_vars:
      incident_number: "{{ ticket.number }}"
      target_host: "{{ payload.cmdb_ci }}"
      priority: "{{ payload.priority }}"
    reply: work_notes
"#;

#[test]
fn seed_map_renders_the_launch() {
    let m = load_str(SEED);
    assert_eq!(m.len(), 1);
    assert_eq!(m.rule_names(), vec!["snow-remediation"]);
    let d = m.evaluate(&snow("disk_full", snow_payload()));
    assert!(d.failed.is_empty() && d.skipped.is_empty(), "{d:?}");
    assert_eq!(d.planned.len(), 1);
    let p = &d.planned[0];
    assert_eq!(p.rule, "snow-remediation");
    assert_eq!(
        p.template,
        TemplateRef::Id {
            kind: TemplateKind::Job,
            id: 15
        }
    );
    assert_eq!(
        p.request,
        json!({"extra_vars": {"incident_number": "INC0010001", "target_host": "web01.example.com", "priority": "2"}})
    );
    assert_eq!(p.reply, Reply::WorkNotes);
    assert!(p.report_outcome);
    assert_eq!((p.max_concurrent, p.coalesce_secs), (None, None));
    assert_eq!(p.on_ignored_fields, OnIgnored::Warn, "warn by default");

    let d = m.evaluate(&snow("cert_expiry", snow_payload()));
    assert_eq!(
        d.planned[0].template,
        TemplateRef::Id {
            kind: TemplateKind::Job,
            id: 31
        }
    );
}

#[test]
fn unmapped_category_gives_a_reason_naming_it() {
    let m = load_str(SEED);
    let d = m.evaluate(&snow("network", snow_payload()));
    assert!(d.planned.is_empty() && d.failed.is_empty());
    assert!(d.is_unmapped());
    assert_eq!(d.skipped.len(), 1);
    assert!(
        d.skipped[0]
            .1
            .contains("`network` is not one of cert_expiry, disk_full, service_down"),
        "{d:?}"
    );
    let reason = d.reason();
    assert!(reason.contains("category `network`"), "{reason}");
    assert!(!reason.contains('\n'));

    // No rule for the source at all.
    let gh = event(
        "github",
        SourceKind::Github,
        "push",
        Some("main"),
        json!({}),
        json!({}),
    );
    let d = m.evaluate(&gh);
    assert!(d.is_unmapped() && d.skipped.is_empty());
    assert_eq!(
        d.reason(),
        "no rule for source `github`, event type `push`, category `main`"
    );

    // No category on the event.
    let mut ev = snow("x", snow_payload());
    ev.category = None;
    assert!(m.evaluate(&ev).reason().contains("no category"));
}

#[test]
fn event_type_glob_filters() {
    let m = load_str(SEED);
    let mut ev = snow("disk_full", snow_payload());
    ev.event_type = "change_request.insert".into();
    let d = m.evaluate(&ev);
    assert!(d.is_unmapped());
    assert!(
        d.skipped[0].1.contains("does not match `incident.*`"),
        "{d:?}"
    );
}

#[test]
fn when_expressions_filter() {
    let m = load_str(
        r#"
rules:
  - name: urgent
    source: servicenow
    when:
      - payload.priority in ['1', '2']
      - category != 'ignored'
    launch: 7
  - name: optional-field
    source: servicenow
    when: payload.assignment_group == 'ops'
    launch: 8
"#,
    );
    let d = m.evaluate(&snow("disk_full", snow_payload()));
    assert_eq!(d.planned.len(), 1);
    assert_eq!(d.planned[0].rule, "urgent");
    assert_eq!(d.planned[0].request, json!({}));
    // An expression that fails counts as no match, and says why.
    assert_eq!(d.skipped[0].0, "optional-field");
    assert!(
        d.skipped[0]
            .1
            .contains("`payload.assignment_group` is undefined"),
        "{d:?}"
    );

    let mut low = snow_payload();
    low["priority"] = json!("4");
    let d = m.evaluate(&snow("disk_full", low));
    assert!(d.planned.is_empty());
    assert!(
        d.skipped[0]
            .1
            .contains("when `payload.priority in ['1', '2']` is false"),
        "{d:?}"
    );
}

#[test]
fn strict_undefined_fails_naming_the_field() {
    let m = load_str(SEED);
    let mut payload = snow_payload();
    payload.as_object_mut().unwrap().remove("cmdb_ci");
    let d = m.evaluate(&snow("disk_full", payload));
    assert!(d.planned.is_empty());
    assert!(!d.is_unmapped());
    assert_eq!(d.failed.len(), 1);
    let (rule, err) = &d.failed[0];
    assert_eq!(rule, "snow-remediation");
    assert!(err.contains("extra_vars.target_host"), "{err}");
    assert!(err.contains("`payload.cmdb_ci` is undefined"), "{err}");
    assert!(d.reason().contains("failed"));
}

#[test]
fn empty_limit_is_refused() {
    let m = load_str(
        r#"
rules:
  - name: limited
    source: servicenow
    launch: 15
    limit: "{{ payload.host | default('') }}"
"#,
    );
    let d = m.evaluate(&snow("disk_full", snow_payload()));
    assert_eq!(d.failed.len(), 1);
    assert_eq!(
        d.failed[0].1,
        "limit rendered empty; refusing to run against the whole inventory"
    );

    let mut payload = snow_payload();
    payload["host"] = json!("web01");
    let d = m.evaluate(&snow("disk_full", payload));
    assert_eq!(d.planned[0].request, json!({"limit": "web01"}));
}

#[test]
fn all_launch_fields_render() {
    let m = load_str(
        r#"
rules:
  - name: full
    source: servicenow
    category: "disk_*"
    launch: {workflow: 12}
    extra_vars:
      nested:
        list: ["{{ ticket.number }}", 3, true, null]
        plain: no markup here
      event_id: "{{ event.id }}"
      kind: "{{ event.kind }}/{{ source }}/{{ event_type }}/{{ category }}"
      when: "{{ event.received_at }}"
      page.html: "<b>{{ payload.priority }}</b>"
    limit: "{{ payload.cmdb_ci }}"
    inventory: "{{ payload.inventory }}"
    credentials: [3, "{{ payload.cred }}"]
    job_tags: cleanup
    skip_tags: "slow,{{ payload.priority }}"
    reply: none
    report_outcome: false
    max_concurrent: 3
    coalesce_secs: 120
    on_ignored_fields: fail
"#,
    );
    let mut payload = snow_payload();
    payload["inventory"] = json!(42);
    payload["cred"] = json!("9");
    let d = m.evaluate(&snow("disk_full", payload));
    assert!(d.failed.is_empty(), "{d:?}");
    let p = &d.planned[0];
    assert_eq!(
        p.template,
        TemplateRef::Id {
            kind: TemplateKind::Workflow,
            id: 12
        }
    );
    assert_eq!(
        p.request,
        json!({
            "extra_vars": {
                "nested": {"list": ["INC0010001", 3, true, null], "plain": "no markup here"},
                "event_id": "00000000-0000-0000-0000-000000000000",
                "kind": "servicenow/servicenow/incident.insert/disk_full",
                "when": "2026-01-02T03:04:05+00:00",
                "page.html": "<b>2</b>",
            },
            "limit": "web01.example.com",
            "inventory": 42,
            "credentials": [3, 9],
            "job_tags": "cleanup",
            "skip_tags": "slow,2",
        })
    );
    assert_eq!((p.reply, p.report_outcome), (Reply::None, false));
    assert_eq!((p.max_concurrent, p.coalesce_secs), (Some(3), Some(120)));
    assert_eq!(p.on_ignored_fields, OnIgnored::Fail);

    // Not an id after rendering.
    let mut payload = snow_payload();
    payload["inventory"] = json!("prod");
    payload["cred"] = json!(1);
    let d = m.evaluate(&snow("disk_full", payload));
    assert!(
        d.failed[0]
            .1
            .contains("inventory: `\"prod\"` is not an inventory id"),
        "{d:?}"
    );

    let d = m.evaluate(&snow("network", snow_payload()));
    assert!(d.skipped[0]
        .1
        .contains("category `network` does not match `disk_*`"));
}

#[test]
fn every_matching_rule_plans_in_file_order() {
    let m = load_str(
        r#"
rules:
  - {name: b-first, source: servicenow, launch: 2}
  - {name: a-second, source: servicenow, category: [x, "disk*"], launch: 1}
  - {name: other, source: pagerduty, launch: 3}
"#,
    );
    let d = m.evaluate(&snow("disk_full", snow_payload()));
    let names: Vec<&str> = d.planned.iter().map(|p| p.rule.as_str()).collect();
    assert_eq!(names, ["b-first", "a-second"]);
    // Rules for other sources are not even mentioned.
    assert!(d.skipped.is_empty());
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(
        json["planned"][1]["template"],
        json!({"Id": {"kind": "job", "id": 1}})
    );
    assert_eq!(json["planned"][0]["reply"], json!("work_notes"));
    let back: Planned = serde_json::from_value(json["planned"][0].clone()).unwrap();
    assert_eq!(back, d.planned[0]);
}

/// The payload is parsed only for a rule whose templates read it (README "Benchmark").
#[test]
fn the_payload_is_parsed_only_when_a_template_reads_it() {
    let m = load_str(
        r#"
rules:
  - name: by-ticket
    source: servicenow
    category: disk_full
    launch: 15
    extra_vars: {number: "{{ ticket.number }}", kind: "{{ event.kind }}"}
  - name: by-payload
    source: servicenow
    category: cert_expiry
    launch: 31
    extra_vars: {host: "{{ payload.cmdb_ci }}"}
"#,
    );
    let ev = snow("disk_full", snow_payload());
    assert_eq!(m.evaluate(&ev).planned.len(), 1);
    assert!(!ev.payload.is_parsed(), "no template read the payload");
    let ev = snow("cert_expiry", snow_payload());
    let d = m.evaluate(&ev);
    assert_eq!(
        d.planned[0].request["extra_vars"]["host"],
        "web01.example.com"
    );
    assert!(ev.payload.is_parsed());
}

/// A `categories:` entry's controller wins over the rule's, which wins over the source's.
#[test]
fn each_launch_names_its_controller() {
    let m = load_str(
        r#"
rules:
  - name: routed
    source: servicenow
    controller: lab
    categories:
      disk_full: 15
      cert_expiry: {job_template: 31, controller: default}
  - name: plain
    source: servicenow
    launch: 40
"#,
    );
    let on = |category: &str| -> Vec<(String, String)> {
        let d = m.evaluate(&snow(category, snow_payload()));
        d.planned
            .into_iter()
            .map(|p| (p.rule, p.controller))
            .collect()
    };
    let pair = |r: &str, c: &str| (r.to_string(), c.to_string());
    assert_eq!(
        on("disk_full"),
        [pair("routed", "lab"), pair("plain", "default")]
    );
    assert_eq!(
        on("cert_expiry"),
        [pair("routed", "default"), pair("plain", "default")]
    );
}
