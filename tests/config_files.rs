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
