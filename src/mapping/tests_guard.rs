//! Hostile event text: limits that are patterns, Jinja markup in extra_vars, huge values.

use super::tests_eval::{load_str, snow};
use super::*;
use serde_json::json;
use std::path::Path;

fn shipped_snow() -> Mappings {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/servicenow.yaml");
    Mappings::load(&file, &super::tests_eval::sources()).expect("shipped servicenow.yaml loads")
}

fn network_p1(cmdb_ci: &str, short_description: &str) -> EventView {
    snow(
        "network-core",
        json!({"number": "INC0010002", "priority": "1", "cmdb_ci": cmdb_ci,
               "short_description": short_description}),
    )
}

#[test]
fn the_shipped_servicenow_rule_refuses_limit_all() {
    let d = shipped_snow().evaluate(&network_p1("all", "core switch down"));
    assert!(d.planned.is_empty(), "{d:?}");
    assert_eq!(d.refused.len(), 1);
    assert_eq!(d.refused[0].launch.rule, "snow-network-p1");
    assert_eq!(
        d.refused[0].reason,
        "limit `all` refused: `all` is every host in the inventory; only host names (letters, \
         digits, `.`, `-`, `_`) separated by `,` are accepted unless the rule sets \
         `limit_patterns: true`"
    );
    assert_eq!(
        d.problems().unwrap(),
        format!("rule snow-network-p1: refused: {}", d.refused[0].reason)
    );
    // A host name launches.
    let d = shipped_snow().evaluate(&network_p1("core-sw1.example.com", "core switch down"));
    assert_eq!(d.planned.len(), 1, "{d:?}");
    assert_eq!(d.planned[0].request["limit"], "core-sw1.example.com");
}

#[test]
fn the_shipped_servicenow_rule_refuses_ticket_text_with_jinja() {
    let d = shipped_snow().evaluate(&network_p1("core-sw1", "{{ lookup('pipe', 'id') }}"));
    assert!(d.planned.is_empty(), "{d:?}");
    assert_eq!(
        d.refused[0].reason,
        "extra_vars.short_description: the rendered value contains `{{` (Jinja markup from the \
         event), which the controller could evaluate; set `allow_templates_in_values: true` on \
         the rule to send it"
    );
}

const RULE: &str = r#"
rules:
  - name: r
    source: servicenow
    launch: 15
    limit: "{{ payload.host }}"
    extra_vars:
      text: "{{ payload.text }}"
"#;

#[test]
fn rules_opt_in_to_patterns_markup_and_longer_values() {
    let ev = snow(
        "x",
        json!({"host": "web*:!db", "text": "{% raw %}{{x}}{% endraw %}"}),
    );
    let strict = load_str(RULE).evaluate(&ev);
    assert!(strict.refused[0]
        .reason
        .starts_with("limit `web*:!db` refused: `*` is a wildcard"));

    let open = format!("{RULE}    limit_patterns: true\n    allow_templates_in_values: true\n");
    let d = load_str(&open).evaluate(&ev);
    assert_eq!(d.planned.len(), 1, "{d:?}");
    assert_eq!(d.planned[0].request["limit"], "web*:!db");

    let long = snow("x", json!({"host": "web1", "text": "a".repeat(5000)}));
    let d = load_str(RULE).evaluate(&long);
    assert_eq!(
        d.refused[0].reason,
        "extra_vars.text: the rendered value is 5000 characters, over the rule's \
         max_value_chars of 4096"
    );
    let d = load_str(&format!("{RULE}    max_value_chars: 10000\n")).evaluate(&long);
    assert_eq!(d.planned.len(), 1);
}

fn load_errors(yaml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, yaml).unwrap();
    Mappings::load(&file, &super::tests_eval::sources())
        .unwrap_err()
        .iter()
        .map(|e| {
            e.to_string()
                .rsplit_once("rules.yaml:")
                .unwrap()
                .1
                .to_string()
        })
        .collect()
}

#[test]
fn a_literal_pattern_limit_is_refused_at_load() {
    let yaml = "rules:\n  - name: r\n    source: servicenow\n    launch: 15\n    limit: \"all\"\n";
    assert_eq!(
        load_errors(yaml),
        [
            "5: limit `all` refused: `all` is every host in the inventory; only host names \
          (letters, digits, `.`, `-`, `_`) separated by `,` are accepted unless the rule sets \
          `limit_patterns: true`"
        ]
    );
    load_str(&format!("{yaml}    limit_patterns: true\n"));
    let zero =
        "rules:\n  - name: r\n    source: servicenow\n    launch: 15\n    max_value_chars: 0\n";
    assert_eq!(load_errors(zero), ["5: max_value_chars must be at least 1"]);
}
