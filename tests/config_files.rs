//! The shipped example configuration is valid and documents real keys.

use aap_bridge::config::Settings;

#[test]
fn example_config_loads() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "pagerduty-secret",
        "snow-legacy-token",
        "controller-password",
        "github-token",
        "pagerduty-api-key",
        "snow-password",
        "snow-oauth-token",
        "admin-token",
    ] {
        std::fs::write(dir.path().join(f), format!("test-value-{f}-6b1d0e93\n")).unwrap();
    }
    let text = std::fs::read_to_string("deploy/config.example.yaml")
        .unwrap()
        .replace("/run/secrets/", &format!("{}/", dir.path().display()))
        .replace("${GITHUB_WEBHOOK_SECRET}", "config-test-github-3f9a2c71")
        .replace("${SERVICENOW_SECRET}", "config-test-snow-8e4b6d10");
    let s = Settings::from_parts(Some(&text), None, false).expect("example config is valid");
    assert_eq!(s.sources.len(), 4);
    assert!(
        s.sources.values().all(|src| src.reply.is_some()),
        "every example source replies"
    );
    let notifier = aap_bridge::notify::Notifier::new(&s.sources).expect("reply clients build");
    assert_eq!(notifier.status_context("github"), "aap-bridge");
    assert!(
        s.sources.values().all(|src| src.reply.is_some()),
        "every example source replies"
    );
    aap_bridge::notify::Notifier::new(&s.sources).expect("reply settings build clients");
    assert!(s.admin.token.is_some(), "the example enables the admin API");
    let c = s.controller.expect("controller section");
    assert_eq!(c.auth.mode(), "password");
}

/// `./aap-bridge.yaml`, which `serve` reads by default: loopback dev mode, the three sources of
/// the shipped mappings, an admin token, dry-run; and each example in `examples/`, signed as
/// `aap-bridge send` signs it, is accepted and plans exactly one launch.
#[test]
fn shipped_dev_config_and_examples_plan_a_dry_run_launch_each() {
    use aap_bridge::sign::{headers, Envelope};
    use secrecy::ExposeSecret;
    let text = std::fs::read_to_string("aap-bridge.yaml").unwrap();
    let s = Settings::from_parts(Some(&text), None, false).expect("aap-bridge.yaml is valid");
    assert!(s.dev_mode);
    assert_eq!(s.server.listen, "127.0.0.1:8080");
    assert!(s.controller.is_none(), "dry-run");
    let token = s.admin.token.as_ref().expect("admin token");
    assert!(token.expose_secret().starts_with("dev-only-"));
    for src in s.sources.values() {
        assert!(src
            .secrets
            .iter()
            .all(|k| k.expose_secret().starts_with("dev-only-")));
    }
    let kinds = aap_bridge::startup::source_kinds(&s);
    let mappings = aap_bridge::mapping::Mappings::load(&s.mappings.path, &kinds)
        .unwrap_or_else(|e| panic!("{}", e[0]));
    let sources = aap_bridge::sources::build(&s);
    for (source, file, rule) in [
        (
            "github",
            "examples/github-issue.json",
            "github-disk-cleanup",
        ),
        (
            "pagerduty",
            "examples/pagerduty-incident.json",
            "pagerduty-web-tier",
        ),
        (
            "servicenow",
            "examples/servicenow-incident.json",
            "snow-remediation",
        ),
    ] {
        let body = std::fs::read(file).unwrap();
        let h = headers(&s.sources[source], &body, &Envelope::now("issues")).unwrap();
        let map =
            aap_bridge::admin::header_map(h.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        sources[source]
            .accept(&map, &body)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let sim = aap_bridge::admin::simulate(&sources, &mappings, source, &map, &body).unwrap();
        let sim = serde_json::to_value(&sim).unwrap();
        assert_eq!(sim["state"], "dispatched", "{file}: {sim}");
        let launches = sim["launches"].as_array().unwrap();
        assert_eq!(launches.len(), 1, "{file}: {sim}");
        assert_eq!(launches[0]["rule"], rule, "{file}");
    }
}

/// `controllers.default` is `controller:` under another spelling; naming both, naming a
/// controller nobody configured, or leaving a source without one when none is `default`, is
/// refused with the key.
#[test]
fn controllers_are_named_and_checked() {
    let controller = "{url: \"http://127.0.0.1:9\", allow_insecure_http: true, \
                      auth: {mode: token, token: t0k3n-for-tests-7f2a}}";
    let base = |extra: &str| {
        format!(
            "dev_mode: true\nserver: {{listen: \"127.0.0.1:0\"}}\n\
             sources: {{gh: {{kind: github, secrets: [k], controller: default}}}}\n{extra}"
        )
    };
    let load = |extra: &str| Settings::from_parts(Some(&base(extra)), None, false);
    let s = load(&format!("controllers: {{default: {controller}}}\n")).expect("one named default");
    assert_eq!(
        s.default_controller().map(|c| c.url.as_str()),
        Some("http://127.0.0.1:9")
    );
    assert_eq!(s.source_controller("gh"), "default");
    let both = load(&format!(
        "controller: {controller}\ncontrollers: {{default: {controller}}}\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        both.contains("both `controller:` and `controllers.default`"),
        "{both}"
    );
    let none = load("").unwrap_err().to_string();
    assert!(
        none.contains("sources.gh.controller: no controller is named `default`"),
        "{none}"
    );
    let two = load(&format!(
        "controller: {controller}\ncontrollers: {{lab: {controller}}}\n"
    ))
    .expect("default and lab");
    assert_eq!(
        two.controllers().into_keys().collect::<Vec<_>>(),
        ["default", "lab"]
    );
    let no_default = load(&format!("controllers: {{lab: {controller}}}\n"))
        .unwrap_err()
        .to_string();
    assert!(
        no_default.contains("no controller is named `default`"),
        "{no_default}"
    );
}

/// The two-controller example in deploy/ loads, with each source's default controller.
#[test]
fn two_controller_example_loads() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "controller-password",
        "lab-controller-password",
        "servicenow-secret",
        "github-secret",
    ] {
        std::fs::write(dir.path().join(f), format!("test-value-{f}-6b1d0e93\n")).unwrap();
    }
    let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
    std::fs::write(dir.path().join("controller-token-key"), key).unwrap();
    let text = std::fs::read_to_string("deploy/two-controllers.example.yaml")
        .unwrap()
        .replace("/run/secrets/", &format!("{}/", dir.path().display()));
    let s = Settings::from_parts(Some(&text), None, false).expect("two-controller example");
    assert_eq!(
        s.controllers().into_keys().collect::<Vec<_>>(),
        ["default", "lab"]
    );
    assert_eq!(s.source_controller("servicenow"), "default");
    assert_eq!(s.source_controller("github"), "lab");
}
