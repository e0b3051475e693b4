//! `catch_up:` blocks: defaults, what comes from `reply:`, and refusals that name the key.

use super::{CatchUpPlan, CatchUpSettings, ReplySettings, SnAuth, SourceKind, Versions};
use secrecy::ExposeSecret;

fn plan(kind: SourceKind, yaml: &str, reply: Option<&str>) -> Result<CatchUpPlan, String> {
    let c: CatchUpSettings = serde_saphyr::from_str(yaml).unwrap();
    let r: Option<ReplySettings> = reply.map(|r| serde_saphyr::from_str(r).unwrap());
    c.plan(kind, r.as_ref())
}

#[test]
fn github_defaults_and_reply_credentials() {
    let p = plan(
        SourceKind::Github,
        "hooks: [{repo: acme/ops, id: 12}, {org: acme, id: 34}]\n",
        Some("token: t\n"),
    )
    .unwrap();
    let CatchUpPlan::Github(g) = p else { panic!() };
    assert_eq!(g.api_url, "https://api.github.com");
    assert_eq!(g.token.expose_secret(), "t");
    assert_eq!(g.pace.interval_secs, 300);
    assert_eq!(g.pace.max_per_run, 100);
    assert_eq!(g.hooks[0].path(), "/repos/acme/ops/hooks/12");
    assert_eq!(g.hooks[1].path(), "/orgs/acme/hooks/34");
}

#[test]
fn bad_blocks_name_the_key() {
    for (kind, yaml, reply, needle) in [
        (
            SourceKind::Github,
            "hooks: [{repo: acme/ops, id: 1}]\n",
            None,
            "token",
        ),
        (SourceKind::Github, "token: t\n", None, "hooks"),
        (
            SourceKind::Github,
            "token: t\nhooks: [{repo: acme, id: 1}]\n",
            None,
            "owner/name",
        ),
        (
            SourceKind::Github,
            "token: t\nhooks: [{repo: a/b, org: c, id: 1}]\n",
            None,
            "exactly one",
        ),
        (
            SourceKind::Github,
            "token: t\nhooks: [{org: c, id: 1}]\napi_url: http://x\n",
            None,
            "http://",
        ),
        (
            SourceKind::Github,
            "token: t\nhooks: [{org: c, id: 1}]\ntable: incident\n",
            None,
            "servicenow only",
        ),
        (
            SourceKind::Github,
            "token: t\nhooks: [{org: c, id: 1}]\ninterval_secs: 0\n",
            None,
            "at least 1",
        ),
        (
            SourceKind::Pagerduty,
            "token: t\n",
            None,
            "PagerDuty retries",
        ),
        (
            SourceKind::Servicenow,
            "table: incident\ntoken: t\n",
            None,
            "instance_url",
        ),
        (
            SourceKind::Servicenow,
            "instance_url: https://x\ntoken: t\n",
            None,
            "table",
        ),
        (
            SourceKind::Servicenow,
            "instance_url: https://x\ntable: incident\n",
            None,
            "username",
        ),
        (
            SourceKind::Servicenow,
            "instance_url: https://x\ntable: incident\ntoken: t\nquery: \"a=1^^b=2\"\n",
            None,
            "empty",
        ),
        (
            SourceKind::Servicenow,
            "instance_url: https://x\ntable: incident\ntoken: t\nhooks: [{org: c, id: 1}]\n",
            None,
            "github only",
        ),
    ] {
        let e = plan(kind, yaml, reply).unwrap_err();
        assert!(e.contains(needle), "{yaml}: {e}");
    }
}

#[test]
fn servicenow_takes_url_and_user_from_reply() {
    let reply = "api_url: https://acme.service-now.com\nusername: svc\npassword: p\n";
    let p = plan(SourceKind::Servicenow, "table: incident\n", Some(reply)).unwrap();
    let CatchUpPlan::Servicenow(s) = p else {
        panic!()
    };
    assert_eq!(s.instance_url, "https://acme.service-now.com");
    assert!(matches!(s.auth, SnAuth::Basic { ref username, .. } if username == "svc"));
    assert_eq!(s.skip_updated_by, ["svc"]);
    assert_eq!((s.lookback_secs, s.pace.max_per_run), (3600, 1000));
    assert_eq!(s.versions, Versions::CategoryChange);
}

const DEV: &str = "dev_mode: true\nserver: {listen: \"127.0.0.1:0\"}\n";

#[test]
fn a_signed_delivery_header_as_dedupe_key_rules_catch_up_out() {
    let yaml = format!(
        "{DEV}sources:\n  snow:\n    kind: servicenow\n    secrets: [k]\n    \
         timestamp_header: X-Ts\n    delivery_header: X-D\n    \
         signature_scheme: \"{{timestamp}}.{{delivery}}.{{body}}\"\n    \
         catch_up: {{instance_url: \"https://x.example\", token: t, table: incident}}\n"
    );
    let e = crate::config::Settings::from_parts(Some(&yaml), None, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sources.snow: catch_up needs the record's identity"),
        "{e}"
    );
    let ok = yaml.replace("signature_scheme: \"{timestamp}.{delivery}.{body}\"", "");
    assert!(crate::config::Settings::from_parts(Some(&ok), None, false).is_ok());
}

#[test]
fn environment_variables_expand_inside_catch_up() {
    let yaml = format!(
        "{DEV}sources:\n  gh:\n    kind: github\n    secrets: [k]\n    \
         catch_up: {{token: \"${{GH_HOOKS_TOKEN}}\", hooks: [{{org: \"${{GH_ORG:-acme}}\", id: 7}}]}}\n"
    );
    let lookup = |n: &str| (n == "GH_HOOKS_TOKEN").then(|| "from-env".to_string());
    let s = crate::config::Settings::from_parts_with(Some(&yaml), None, false, &lookup).unwrap();
    let Some(Ok(CatchUpPlan::Github(g))) = s.sources["gh"].catch_up_plan() else {
        panic!()
    };
    assert_eq!(g.token.expose_secret(), "from-env");
    assert_eq!(g.hooks[0].path(), "/orgs/acme/hooks/7");
    let unset = crate::config::Settings::from_parts_with(Some(&yaml), None, false, &|_| None)
        .unwrap_err()
        .to_string();
    assert!(unset.contains("GH_HOOKS_TOKEN"), "{unset}");
}
