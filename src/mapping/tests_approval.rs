//! `approval:` on a rule: checked at load, named at its line, carried on each planned launch.

use super::tests_eval::{event, load_str};
use super::tests_load::{errors, one_error};
use crate::domain::SourceKind;
use serde_json::json;

const RULE: &str = "rules:\n  - name: r\n    source: SOURCE\n    launch: 1\n";

fn with(source: &str, approval: &str) -> String {
    format!(
        "{}    approval: {approval}\n",
        RULE.replace("SOURCE", source)
    )
}

#[test]
fn checked_at_its_line() {
    one_error(
        &with("github", "{timeout_secs: 5}"),
        5,
        "between 60 and 2592000",
    );
    one_error(
        &with("github", "{timeout: 600}"),
        5,
        "unknown field `timeout`",
    );
    one_error(
        &with("pagerduty", "{timeout_secs: 600}"),
        5,
        "needs approvers",
    );
    one_error(
        &with("servicenow", "{approvers: [a]}"),
        5,
        "needs field, approve and deny",
    );
    one_error(
        &with("servicenow", "{field: u_ok, approve: x, deny: x}"),
        5,
        "must differ",
    );
    one_error(
        &with("github", "{field: u_ok, approve: yes, deny: no}"),
        5,
        "are for ServiceNow sources",
    );
    let snow = load_str(&with(
        "servicenow",
        "{field: u_ok, approve: approved, deny: rejected}",
    ));
    let fields = snow.approval_fields("servicenow");
    assert_eq!(fields.len(), 1);
    assert_eq!(
        (fields[0].name.as_str(), fields[0].approve.as_str()),
        ("u_ok", "approved")
    );
    assert!(snow.approval_fields("github").is_empty());
    one_error(&with("github", "{approvers: [\" \"]}"), 5, "empty entry");
    assert_eq!(errors(&with("github", "{timeout_secs: 31536000}")).len(), 1);
}

#[test]
fn carried_on_each_planned_launch() {
    let plan = |yaml: &str| {
        let e = event(
            "github",
            SourceKind::Github,
            "issues.labeled",
            None,
            json!({}),
            json!({}),
        );
        let mut d = load_str(yaml).evaluate(&e);
        assert_eq!(d.planned.len(), 1, "{d:?}");
        d.planned.remove(0)
    };
    let a = plan(&with("github", "{approvers: [alice, acme/sre]}"))
        .approval
        .expect("approval kept");
    assert_eq!(a.timeout_secs, 86_400, "a day by default");
    assert_eq!(a.approvers, ["alice", "acme/sre"]);
    assert!(!a.allow_self_approval);
    assert!(plan(&RULE.replace("SOURCE", "github")).approval.is_none());
}
