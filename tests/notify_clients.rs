//! Post-back clients: `prepare` for every kind and reply, and `Notifier::send` against
//! stateful fake ticket systems (ServiceNow, GitHub, PagerDuty) on 127.0.0.1.

#[path = "support/mod.rs"]
mod support;

use aap_bridge::config::{Settings, SourceKind};
use aap_bridge::mapping::Reply;
use aap_bridge::notify::{prepare, Message, Notifier, Phase, Prepared, SendError};
use serde_json::{json, Value};
use std::time::Duration;
use support::fake_tickets::{FakeTickets, GITHUB_MISSING_ISSUE};

const SYS_ID: &str = "9d385017c611228701d22104cc95c371";
const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

fn launched() -> Message {
    Message {
        phase: Phase::Launched,
        rule: "snow-remediation".into(),
        template: "job template 15".into(),
        job_id: 123,
        job_url: "https://aap.example.com/execution/jobs/playbook/123/output".into(),
        status: None,
        elapsed_secs: None,
        stdout_tail: None,
        dry_run: false,
        problem: None,
        ignored_fields: Vec::new(),
    }
}

fn finished(status: &str) -> Message {
    Message {
        phase: Phase::Finished,
        status: Some(status.into()),
        elapsed_secs: Some(12.34),
        stdout_tail: Some(
            "TASK [restart] ***\nfatal: [web1]: FAILED! => {\"msg\": \"boom\"}\n".into(),
        ),
        ..launched()
    }
}

fn snow_ticket() -> Value {
    json!({"table": "incident", "sys_id": SYS_ID, "number": "INC0010001"})
}

fn gh_ticket() -> Value {
    json!({"repo": "acme/web", "number": "42", "sha": SHA, "url": "https://github.com/acme/web/issues/42"})
}

fn pd_ticket() -> Value {
    json!({"incident_id": "PABC123", "number": "1234"})
}

// ---- prepare ----

#[test]
fn servicenow_work_notes_and_comments() {
    let p = prepare(
        SourceKind::Servicenow,
        Reply::WorkNotes,
        &snow_ticket(),
        &launched(),
        "x",
    )
    .unwrap();
    assert_eq!(p.method, "PATCH");
    assert_eq!(p.path, format!("/api/now/table/incident/{SYS_ID}"));
    assert_eq!(
        p.body,
        json!({"work_notes": "[aap-bridge] Launched job 123 (job template 15) for rule snow-remediation: https://aap.example.com/execution/jobs/playbook/123/output"})
    );

    let p = prepare(
        SourceKind::Servicenow,
        Reply::Comments,
        &snow_ticket(),
        &finished("failed"),
        "x",
    )
    .unwrap();
    let text = p.body["comments"].as_str().unwrap();
    assert!(
        text.starts_with(
            "[aap-bridge] Job 123 finished: failed after 12.3 s: https://aap.example.com/"
        ),
        "{text}"
    );
    assert!(
        text.contains("\n\nLast output:\nTASK [restart] ***\nfatal: [web1]"),
        "{text}"
    );
    assert!(!text.contains("```"), "plain text for ServiceNow: {text}");
    assert!(p.body.get("work_notes").is_none());
}

#[test]
fn successful_jobs_carry_no_output_and_long_output_is_cut() {
    let p = prepare(
        SourceKind::Servicenow,
        Reply::WorkNotes,
        &snow_ticket(),
        &finished("successful"),
        "x",
    )
    .unwrap();
    assert_eq!(
        p.body["work_notes"],
        "[aap-bridge] Job 123 finished: successful after 12.3 s: https://aap.example.com/execution/jobs/playbook/123/output"
    );
    let mut m = finished("error");
    m.stdout_tail = Some(format!("START{}END", "x".repeat(10_000)));
    m.elapsed_secs = None;
    let p = prepare(SourceKind::Pagerduty, Reply::Note, &pd_ticket(), &m, "x").unwrap();
    let text = p.body["note"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("[aap-bridge] Job 123 finished: error: https://"),
        "{text}"
    );
    assert!(text.ends_with("xxxEND") && !text.contains("START"));
    assert!(text.len() < 3200, "{}", text.len());
}

#[test]
fn launched_post_backs_name_the_ignored_fields() {
    let m = Message {
        ignored_fields: vec!["extra_vars".into()],
        ..launched()
    };
    let note = "Note: the controller ignored extra_vars (the template does not prompt for it on launch); the job runs without it.";
    let snow = prepare(
        SourceKind::Servicenow,
        Reply::WorkNotes,
        &snow_ticket(),
        &m,
        "x",
    )
    .unwrap();
    let gh = prepare(SourceKind::Github, Reply::Comment, &gh_ticket(), &m, "x").unwrap();
    let pd = prepare(SourceKind::Pagerduty, Reply::Note, &pd_ticket(), &m, "x").unwrap();
    for text in [
        &snow.body["work_notes"],
        &gh.body["body"],
        &pd.body["note"]["content"],
    ] {
        let text = text.as_str().unwrap();
        assert!(text.starts_with("[aap-bridge] Launched job 123"), "{text}");
        assert!(text.contains(note), "{text}");
    }
    let status = prepare(SourceKind::Github, Reply::Status, &gh_ticket(), &m, "x").unwrap();
    assert_eq!(status.body["state"], "pending");
    let desc = status.body["description"].as_str().unwrap();
    assert!(desc.contains("ignored extra_vars"), "{desc}");
    assert!(desc.chars().count() <= 140);
    // Nothing ignored: no note.
    let plain = prepare(
        SourceKind::Pagerduty,
        Reply::Note,
        &pd_ticket(),
        &launched(),
        "x",
    )
    .unwrap();
    assert!(!plain.body["note"]["content"]
        .as_str()
        .unwrap()
        .contains("ignored"));
}

#[test]
fn dry_run_text() {
    let m = Message {
        dry_run: true,
        problem: None,
        job_id: 0,
        job_url: String::new(),
        ..launched()
    };
    let p = prepare(
        SourceKind::Github,
        Reply::Comment,
        &gh_ticket(),
        &m,
        "aap-bridge",
    )
    .unwrap();
    assert_eq!(
        p.body["body"],
        "[aap-bridge] Dry run: would launch job template 15 for rule snow-remediation"
    );
    let s = prepare(
        SourceKind::Github,
        Reply::Status,
        &gh_ticket(),
        &m,
        "aap-bridge",
    )
    .unwrap();
    assert_eq!(s.body["state"], "success");
    assert!(s.body.get("target_url").is_none(), "{}", s.body);
}

#[test]
fn github_comment_fences_the_output() {
    let p = prepare(
        SourceKind::Github,
        Reply::Comment,
        &gh_ticket(),
        &finished("failed"),
        "x",
    )
    .unwrap();
    assert_eq!(
        (p.method.as_str(), p.path.as_str()),
        ("POST", "/repos/acme/web/issues/42/comments")
    );
    let body = p.body["body"].as_str().unwrap();
    assert!(body.starts_with("[aap-bridge] Job 123 finished: failed after 12.3 s: https://"));
    assert!(body.contains("Last output:\n```\nTASK [restart]"), "{body}");
    assert!(body.ends_with("\"boom\"}\n```"), "{body}");
    // A pull request number, given as a JSON number, uses the same issue endpoint.
    let pr = json!({"repo": "acme/web.site", "number": 7});
    let p = prepare(SourceKind::Github, Reply::Comment, &pr, &launched(), "x").unwrap();
    assert_eq!(p.path, "/repos/acme/web.site/issues/7/comments");
}

#[test]
fn github_status_states() {
    let cases = [
        (launched(), "pending"),
        (finished("successful"), "success"),
        (finished("failed"), "failure"),
        (finished("error"), "error"),
        (finished("canceled"), "error"),
    ];
    for (m, state) in cases {
        let p = prepare(
            SourceKind::Github,
            Reply::Status,
            &gh_ticket(),
            &m,
            "aap-bridge/deploy",
        )
        .unwrap();
        assert_eq!(p.path, format!("/repos/acme/web/statuses/{SHA}"));
        assert_eq!(p.body["state"], state);
        assert_eq!(p.body["context"], "aap-bridge/deploy");
        assert_eq!(p.body["target_url"], m.job_url.as_str());
        let d = p.body["description"].as_str().unwrap();
        assert!(d.starts_with("[aap-bridge] Job 123"), "{d}");
        assert!(d.chars().count() <= 140, "{d}");
    }
    let mut long = launched();
    long.template = "t".repeat(300);
    let p = prepare(
        SourceKind::Github,
        Reply::Status,
        &gh_ticket(),
        &long,
        "aap-bridge",
    )
    .unwrap();
    assert_eq!(p.body["description"].as_str().unwrap().chars().count(), 140);
}

#[test]
fn pagerduty_note() {
    let p = prepare(
        SourceKind::Pagerduty,
        Reply::Note,
        &pd_ticket(),
        &launched(),
        "x",
    )
    .unwrap();
    assert_eq!(
        (p.method.as_str(), p.path.as_str()),
        ("POST", "/incidents/PABC123/notes")
    );
    assert!(p.body["note"]["content"]
        .as_str()
        .unwrap()
        .starts_with("[aap-bridge] Launched job 123"));
}

#[test]
fn replies_a_kind_cannot_carry_out_are_refused() {
    let m = launched();
    for (kind, reply, ticket) in [
        (SourceKind::Servicenow, Reply::None, snow_ticket()),
        (SourceKind::Servicenow, Reply::Comment, snow_ticket()),
        (SourceKind::Github, Reply::WorkNotes, gh_ticket()),
        (SourceKind::Github, Reply::Note, gh_ticket()),
        (SourceKind::Pagerduty, Reply::Status, pd_ticket()),
        (SourceKind::Pagerduty, Reply::None, pd_ticket()),
    ] {
        let err = prepare(kind, reply, &ticket, &m, "aap-bridge").unwrap_err();
        assert!(!err.is_empty());
    }
}

#[test]
fn invalid_or_missing_ticket_fields_are_refused() {
    let m = launched();
    let bad = [
        (
            SourceKind::Servicenow,
            Reply::WorkNotes,
            json!({"table": "incident", "sys_id": "../../x"}),
        ),
        (
            SourceKind::Servicenow,
            Reply::WorkNotes,
            json!({"table": "incident", "sys_id": SYS_ID.to_uppercase()}),
        ),
        (
            SourceKind::Servicenow,
            Reply::WorkNotes,
            json!({"table": "../sys_user", "sys_id": SYS_ID}),
        ),
        (
            SourceKind::Servicenow,
            Reply::WorkNotes,
            json!({"table": "incident?x=1", "sys_id": SYS_ID}),
        ),
        (
            SourceKind::Servicenow,
            Reply::Comments,
            json!({"table": "incident"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "a/b/../c", "number": "1"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "../b", "number": "1"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "a/..", "number": "1"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "acme", "number": "1"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "acme/web", "number": "1/../../x"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "acme/web", "number": "-1"}),
        ),
        (
            SourceKind::Github,
            Reply::Comment,
            json!({"repo": "acme/web"}),
        ),
        (
            SourceKind::Github,
            Reply::Status,
            json!({"repo": "acme/web", "sha": "abc123"}),
        ),
        (
            SourceKind::Github,
            Reply::Status,
            json!({"repo": "acme/web", "sha": format!("{}/..", &SHA[..37])}),
        ),
        (
            SourceKind::Github,
            Reply::Status,
            json!({"repo": "acme/web", "number": "42"}),
        ),
        (
            SourceKind::Pagerduty,
            Reply::Note,
            json!({"incident_id": "../X"}),
        ),
        (
            SourceKind::Pagerduty,
            Reply::Note,
            json!({"incident_id": "pabc123"}),
        ),
        (SourceKind::Pagerduty, Reply::Note, json!({"number": "12"})),
    ];
    for (kind, reply, ticket) in bad {
        let r = prepare(kind, reply, &ticket, &m, "aap-bridge");
        assert!(r.is_err(), "{ticket} gave {r:?}");
    }
}

// ---- settings ----

fn yaml(url: &str) -> String {
    format!(
        r#"
sources:
  gh:
    kind: github
    secrets: [notify-clients-hmac-key]
    reply:
      api_url: "{url}"
      allow_insecure_http: true
      token: gh-token
      status_context: aap-bridge/ci
      timeout_secs: 5
  pd:
    kind: pagerduty
    secrets: [notify-clients-hmac-key]
    reply:
      api_url: "{url}/"
      allow_insecure_http: true
      token: pd-key
      from: ops-bot@example.com
  snow:
    kind: servicenow
    secrets: [notify-clients-hmac-key]
    reply:
      api_url: "{url}"
      allow_insecure_http: true
      username: snow-bot
      password: snow-pass
  snow-oauth:
    kind: servicenow
    secrets: [notify-clients-hmac-key]
    reply:
      api_url: "{url}"
      allow_insecure_http: true
      token: snow-token
  silent:
    kind: github
    secrets: [notify-clients-hmac-key]
"#
    )
}

fn notifier_for(yaml: &str) -> Notifier {
    let s = Settings::from_parts(Some(yaml), None, false).expect("settings");
    Notifier::new(&s.sources).expect("notifier")
}

#[test]
fn reply_settings_are_validated() {
    let bad = [
        ("kind: github\n    secrets: [notify-clients-hmac-key]\n    reply: {}", "token"),
        ("kind: pagerduty\n    secrets: [notify-clients-hmac-key]\n    reply: {token: k}", "from"),
        ("kind: servicenow\n    secrets: [notify-clients-hmac-key]\n    reply: {token: k}", "api_url"),
        ("kind: servicenow\n    secrets: [notify-clients-hmac-key]\n    reply: {api_url: \"https://x.example\"}", "username"),
        ("kind: github\n    secrets: [notify-clients-hmac-key]\n    reply: {token: t, api_url: \"file:///etc/passwd\"}", "http"),
        ("kind: github\n    secrets: [notify-clients-hmac-key]\n    reply: {token: t, tokne: u}", "tokne"),
        ("kind: github\n    secrets: [notify-clients-hmac-key]\n    reply: {token: t, from: a@b.c}", "pagerduty"),
    ];
    for (source, needle) in bad {
        let y = format!("sources:\n  s:\n    {source}\n");
        let err = Settings::from_parts(Some(&y), None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{y}: {err}");
    }
    let ok = Settings::from_parts(Some(&yaml("https://api.example.com")), None, false).unwrap();
    let printed = format!("{:?}", ok.sources);
    for secret in ["gh-token", "pd-key", "snow-pass", "snow-token"] {
        assert!(!printed.contains(secret), "{secret} printed");
    }
}

#[test]
fn secrets_and_ca_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gh-token"), "from-file\n").unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
    let y = "sources:\n  gh:\n    kind: github\n    secrets: [notify-clients-hmac-key]\n    reply:\n      token_file: gh-token\n";
    let s = Settings::from_parts(Some(y), Some(dir.path().to_path_buf()), false).unwrap();
    let n = Notifier::new(&s.sources).unwrap();
    assert!(n.can_reply("gh"));
    assert_eq!(n.status_context("gh"), "aap-bridge");
    let y = format!("{y}      ca_file: ca.pem\n");
    let s = Settings::from_parts(Some(&y), Some(dir.path().to_path_buf()), false).unwrap();
    let err = Notifier::new(&s.sources).unwrap_err();
    assert!(
        err.contains("sources.gh.reply") && err.contains("ca_file"),
        "{err}"
    );
}

// ---- sending ----

#[tokio::test]
async fn each_kind_is_delivered() {
    let fake = FakeTickets::start().await;
    let n = notifier_for(&yaml(&fake.url()));
    assert!(n.can_reply("gh") && n.can_reply("snow") && !n.can_reply("silent"));
    assert_eq!(n.status_context("gh"), "aap-bridge/ci");

    let note = prepare(
        SourceKind::Servicenow,
        Reply::WorkNotes,
        &snow_ticket(),
        &launched(),
        "",
    )
    .unwrap();
    assert_eq!(n.send("snow", &note).await.unwrap(), 200);
    let comment = prepare(
        SourceKind::Servicenow,
        Reply::Comments,
        &snow_ticket(),
        &finished("failed"),
        "",
    )
    .unwrap();
    assert_eq!(n.send("snow-oauth", &comment).await.unwrap(), 200);
    let notes = fake.servicenow_notes(SYS_ID);
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].0, "work_notes");
    assert!(notes[0].1.starts_with("[aap-bridge] Launched job 123"));
    assert_eq!(notes[1].0, "comments");

    let c = prepare(
        SourceKind::Github,
        Reply::Comment,
        &gh_ticket(),
        &launched(),
        "",
    )
    .unwrap();
    assert_eq!(n.send("gh", &c).await.unwrap(), 201);
    assert_eq!(
        fake.github_comments("acme/web", 42),
        vec![c.body["body"].as_str().unwrap().to_string()]
    );

    let ctx = n.status_context("gh");
    for m in [launched(), finished("failed")] {
        let s = prepare(SourceKind::Github, Reply::Status, &gh_ticket(), &m, &ctx).unwrap();
        assert_eq!(n.send("gh", &s).await.unwrap(), 201);
    }
    let statuses = fake.github_statuses("acme/web", SHA);
    let states: Vec<_> = statuses
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["pending", "failure"]);
    assert_eq!(statuses[1]["context"], "aap-bridge/ci");
    assert_eq!(statuses[1]["target_url"], launched().job_url.as_str());

    let p = prepare(
        SourceKind::Pagerduty,
        Reply::Note,
        &pd_ticket(),
        &finished("successful"),
        "",
    )
    .unwrap();
    assert_eq!(n.send("pd", &p).await.unwrap(), 201);
    assert_eq!(
        fake.pagerduty_notes("PABC123"),
        vec!["[aap-bridge] Job 123 finished: successful after 12.3 s: https://aap.example.com/execution/jobs/playbook/123/output".to_string()]
    );
    assert_eq!(fake.requests(), 6);
}

#[tokio::test]
async fn overload_is_retried_with_the_servers_wait() {
    let fake = FakeTickets::start().await;
    let n = notifier_for(&yaml(&fake.url()));
    let p = prepare(
        SourceKind::Pagerduty,
        Reply::Note,
        &pd_ticket(),
        &launched(),
        "",
    )
    .unwrap();

    fake.fail_next(1, 503, Some(7));
    match n.send("pd", &p).await {
        Err(SendError::Retry { after, reason }) => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert!(reason.starts_with("HTTP 503"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    fake.fail_next(1, 429, None);
    assert!(matches!(
        n.send("pd", &p).await,
        Err(SendError::Retry { after: None, .. })
    ));
    fake.fail_next(1, 500, None);
    assert!(matches!(
        n.send(
            "snow",
            &prepare(
                SourceKind::Servicenow,
                Reply::WorkNotes,
                &snow_ticket(),
                &launched(),
                ""
            )
            .unwrap()
        )
        .await,
        Err(SendError::Retry { .. })
    ));
    assert!(fake.pagerduty_notes("PABC123").is_empty());
    // The fault is over: the same request now goes through.
    assert_eq!(n.send("pd", &p).await.unwrap(), 201);
    assert_eq!(fake.pagerduty_notes("PABC123").len(), 1);
}

#[tokio::test]
async fn github_rate_limit_is_retried_after_the_reset() {
    let fake = FakeTickets::start().await;
    let n = notifier_for(&yaml(&fake.url()));
    let c = prepare(
        SourceKind::Github,
        Reply::Comment,
        &gh_ticket(),
        &launched(),
        "",
    )
    .unwrap();
    fake.set_github_rate_limited(1, 120);
    match n.send("gh", &c).await {
        Err(SendError::Retry {
            after: Some(after),
            reason,
        }) => {
            assert!((118..=120).contains(&after.as_secs()), "{after:?}");
            assert!(
                reason.contains("403") && reason.contains("rate limit"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(fake.github_comments("acme/web", 42).is_empty());
    assert_eq!(n.send("gh", &c).await.unwrap(), 201);
}

#[tokio::test]
async fn refusals_are_permanent() {
    let fake = FakeTickets::start().await;
    let n = notifier_for(&yaml(&fake.url()));

    let missing = json!({"repo": "acme/web", "number": GITHUB_MISSING_ISSUE});
    let c = prepare(
        SourceKind::Github,
        Reply::Comment,
        &missing,
        &launched(),
        "",
    )
    .unwrap();
    assert_eq!(
        n.send("gh", &c).await.unwrap_err(),
        SendError::Permanent {
            reason: "HTTP 404: Not Found".into()
        }
    );

    let gone = json!({"table": "incident", "sys_id": "0".repeat(32)});
    let p = prepare(
        SourceKind::Servicenow,
        Reply::WorkNotes,
        &gone,
        &launched(),
        "",
    )
    .unwrap();
    let err = n.send("snow", &p).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { reason } if reason.starts_with("HTTP 404: No Record found")),
        "{err:?}"
    );

    let bogus = Prepared {
        method: "POST".into(),
        path: format!("/repos/acme/web/statuses/{SHA}"),
        body: json!({"state": "bogus", "context": "aap-bridge"}),
    };
    let err = n.send("gh", &bogus).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Permanent { reason } if reason.starts_with("HTTP 422: Validation Failed")),
        "{err:?}"
    );
    fake.fail_next(1, 422, None);
    assert!(matches!(
        n.send("gh", &c).await,
        Err(SendError::Permanent { .. })
    ));

    // A path that did not come from `prepare` is not sent at all.
    let before = fake.requests();
    for path in ["/repos/acme/web/../../admin", "//evil.example/x", "/a?b=1"] {
        let p = Prepared {
            path: path.into(),
            ..c.clone()
        };
        assert!(
            matches!(n.send("gh", &p).await, Err(SendError::Permanent { .. })),
            "{path}"
        );
    }
    assert!(matches!(
        n.send("silent", &c).await,
        Err(SendError::Permanent { .. })
    ));
    assert_eq!(fake.requests(), before);
}

#[tokio::test]
async fn wrong_credentials_are_permanent_and_never_echoed() {
    let fake = FakeTickets::start().await;
    let wrong = yaml(&fake.url())
        .replace("gh-token", "gh-wrong-secret")
        .replace("pd-key", "pd-wrong-secret")
        .replace("snow-pass", "snow-wrong-secret")
        .replace("token: snow-token", "token: snow-wrong-secret2");
    let n = notifier_for(&wrong);
    let sends = [
        (
            "gh",
            prepare(
                SourceKind::Github,
                Reply::Comment,
                &gh_ticket(),
                &launched(),
                "",
            )
            .unwrap(),
        ),
        (
            "pd",
            prepare(
                SourceKind::Pagerduty,
                Reply::Note,
                &pd_ticket(),
                &launched(),
                "",
            )
            .unwrap(),
        ),
        (
            "snow",
            prepare(
                SourceKind::Servicenow,
                Reply::WorkNotes,
                &snow_ticket(),
                &launched(),
                "",
            )
            .unwrap(),
        ),
        (
            "snow-oauth",
            prepare(
                SourceKind::Servicenow,
                Reply::WorkNotes,
                &snow_ticket(),
                &launched(),
                "",
            )
            .unwrap(),
        ),
    ];
    for (source, p) in sends {
        let err = n.send(source, &p).await.unwrap_err();
        let SendError::Permanent { reason } = &err else {
            panic!("{source}: {err:?}")
        };
        assert!(reason.starts_with("HTTP 401"), "{source}: {reason}");
        assert!(
            !format!("{err:?} {err}").contains("wrong-secret"),
            "{err:?}"
        );
    }
    assert!(fake.servicenow_notes(SYS_ID).is_empty());
    assert!(fake.github_comments("acme/web", 42).is_empty());
    assert!(fake.pagerduty_notes("PABC123").is_empty());
    assert_eq!(fake.requests(), 4);
}

#[tokio::test]
async fn no_answer_is_retried() {
    // Refused connection: nothing listens on the port any more.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let n = notifier_for(&yaml(&format!("http://127.0.0.1:{port}")));
    let p = prepare(
        SourceKind::Github,
        Reply::Comment,
        &gh_ticket(),
        &launched(),
        "",
    )
    .unwrap();
    let err = n.send("gh", &p).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Retry { after: None, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("gh-token"));

    // A server that accepts and never answers: the 1 s timeout fires.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let n = notifier_for(&yaml(&url).replace("timeout_secs: 5", "timeout_secs: 1"));
    let started = std::time::Instant::now();
    let err = n.send("gh", &p).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Retry { reason, .. } if reason.contains("timed out")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();
}
