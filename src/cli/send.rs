//! `send`: signs a payload as the source's sender would, posts it to the running service, then
//! follows the event through the admin API until the rules have decided.

use crate::config::{Settings, SourceKind, SourceSettings};
use crate::sign::{self, Envelope};
use clap::Args;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `aap-bridge send --help`.
pub const SEND_HELP: &str = "Signs FILE the way SOURCE's sender signs a delivery, with the \
secret and headers configured for that source, and posts it to the running service \
(POST /hooks/SOURCE). It prints the HTTP answer, then follows the event through the admin API \
(GET /api/v1/events/{id}, with admin.token) until the rules have decided, and prints the \
decision: state, reason, the matched rules and each launch: the request a dry run would send, \
or the job and its link.\n\n\
GitHub: X-Hub-Signature-256, X-GitHub-Event (--event) and a fresh X-GitHub-Delivery. \
PagerDuty: X-PagerDuty-Signature v1 and a fresh X-Webhook-Id. ServiceNow: the source's \
signature_header over its signature_scheme, with its timestamp_header (now) and a fresh \
delivery_header when configured; or its bearer token.\n\n\
Every kind deduplicates on the signed body, so sending the same GitHub or PagerDuty file twice \
is answered `duplicate`; the decision shown is then the first event's.\n\n\
Exits 0 once the event is decided (even when no rule matches), non-zero when the delivery is \
refused or not decided within --wait-secs.\n\n\
Example:\n  aap-bridge send github examples/github-issue.json";

#[derive(Args, Debug)]
pub struct SendArgs {
    /// The source name from the config (POST /hooks/{SOURCE}); a kind (github, pagerduty,
    /// servicenow) works too when exactly one source has it.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The delivery body as the sender would POST it; `-` reads standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// GitHub's X-GitHub-Event. Default: guessed from the payload (`issues` for an issue,
    /// `issue_comment`, `pull_request`, `push`, …; `issues` when unsure).
    #[arg(long)]
    pub event: Option<String>,
    /// The service's base URL. Default: http://127.0.0.1:<port of server.listen>.
    #[arg(long)]
    pub url: Option<String>,
    /// The admin API's base URL. Default: server.admin_listen when set, else the service's.
    #[arg(long)]
    pub admin_url: Option<String>,
    /// How long to wait for the decision (0: do not follow the event).
    #[arg(long, default_value_t = 10)]
    pub wait_secs: u64,
}

pub async fn send(settings: &Settings, args: &SendArgs) -> anyhow::Result<()> {
    let (name, source) = find_source(settings, &args.source)?;
    let body = read_body(&args.file)?;
    let event = match (&args.event, source.kind) {
        (Some(e), _) => e.clone(),
        (None, SourceKind::Github) => {
            let payload = serde_json::from_slice(&body).unwrap_or(Value::Null);
            github_event(&payload).to_string()
        }
        (None, _) => String::new(),
    };
    let headers = sign::headers(source, &body, &Envelope::now(&event))
        .map_err(|e| anyhow::anyhow!("cannot sign for source `{name}`: {e}"))?;
    let base = match &args.url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => local_url(&settings.server.listen, "server.listen")?,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{base}/hooks/{name}");
    let mut req = client.post(&url).body(body);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    if source.kind == SourceKind::Github {
        println!("POST {url} (X-GitHub-Event: {event})");
    } else {
        println!("POST {url}");
    }
    let resp = req.send().await.map_err(|e| {
        anyhow::anyhow!("cannot reach {url}: {e} (is `aap-bridge serve` running there?)")
    })?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    println!("HTTP {status}: {}", text.trim());
    anyhow::ensure!(status.is_success(), "the bridge refused the delivery");
    let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let id = answer["event_id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the answer has no event_id"))?
        .to_string();
    if answer["status"] == "duplicate" {
        println!("this body was delivered before: following the first event, {id}");
    }
    if args.wait_secs == 0 {
        return Ok(());
    }
    let Some(token) = &settings.admin.token else {
        println!("admin.token is not configured, so the decision cannot be followed here; see `aap-bridge events --id {id}`");
        return Ok(());
    };
    let admin = match (&args.admin_url, &args.url, &settings.server.admin_listen) {
        (Some(u), _, _) => u.trim_end_matches('/').to_string(),
        (None, None, Some(listen)) => local_url(listen, "server.admin_listen")?,
        _ => base,
    };
    let wait = Duration::from_secs(args.wait_secs);
    let token = secrecy::ExposeSecret::expose_secret(token);
    let (detail, settled) = follow(&client, &admin, token, &id, wait).await?;
    print!("{}", describe(&detail));
    if !settled {
        println!(
            "(a launch is still on its way after {} s; `aap-bridge events --id {id}` shows it later)",
            args.wait_secs
        );
    }
    Ok(())
}

/// The source named `wanted`, or the only source of that kind.
fn find_source<'a>(
    settings: &'a Settings,
    wanted: &str,
) -> anyhow::Result<(&'a str, &'a SourceSettings)> {
    if let Some((name, s)) = settings.sources.get_key_value(wanted) {
        return Ok((name, s));
    }
    let names = || {
        let all: Vec<&str> = settings.sources.keys().map(String::as_str).collect();
        match all.is_empty() {
            true => "none are configured".to_string(),
            false => format!("configured: {}", all.join(", ")),
        }
    };
    let kind: SourceKind = wanted
        .parse()
        .map_err(|_| anyhow::anyhow!("no source `{wanted}` ({})", names()))?;
    let mut of_kind = settings.sources.iter().filter(|(_, s)| s.kind == kind);
    match (of_kind.next(), of_kind.next()) {
        (Some((name, s)), None) => Ok((name, s)),
        (None, _) => anyhow::bail!("no source `{wanted}` ({})", names()),
        _ => anyhow::bail!(
            "several sources are of kind `{wanted}`: name one ({})",
            names()
        ),
    }
}

fn read_body(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// `http://host:port` to reach a listen address from this machine.
fn local_url(listen: &str, key: &str) -> anyhow::Result<String> {
    let (host, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("{key} `{listen}` has no port; give --url"))?;
    anyhow::ensure!(
        port != "0",
        "{key} `{listen}` picks a free port at start; give --url"
    );
    let host = match host {
        "" | "0.0.0.0" => "127.0.0.1",
        "[::]" => "[::1]",
        h => h,
    };
    Ok(format!("http://{host}:{port}"))
}

/// The `X-GitHub-Event` a payload of this shape comes with.
pub fn github_event(p: &Value) -> &'static str {
    let has = |k: &str| p.get(k).is_some();
    match () {
        _ if has("zen") && has("hook_id") => "ping",
        _ if has("pull_request") && has("review") => "pull_request_review",
        _ if has("pull_request") && has("comment") => "pull_request_review_comment",
        _ if has("pull_request") => "pull_request",
        _ if has("issue") && has("comment") => "issue_comment",
        _ if has("check_run") => "check_run",
        _ if has("check_suite") => "check_suite",
        _ if has("workflow_run") => "workflow_run",
        _ if has("workflow_job") => "workflow_job",
        _ if has("ref") && (has("commits") || has("pusher") || has("head_commit")) => "push",
        _ if has("sha") && has("context") && has("state") => "status",
        _ if has("release") => "release",
        _ => "issues",
    }
}

/// Polls the event until it is decided and no launch is still planned or launching (then
/// `true`), or the wait is over: decided then gives `false`, still pending an error.
async fn follow(
    client: &reqwest::Client,
    admin: &str,
    token: &str,
    id: &str,
    wait: Duration,
) -> anyhow::Result<(Value, bool)> {
    let url = format!("{admin}/api/v1/events/{id}");
    let deadline = Instant::now() + wait;
    let mut last: Option<Value> = None;
    loop {
        match client.get(&url).bearer_auth(token).send().await {
            Ok(r) if r.status().is_success() => {
                let detail: Value = r.json().await?;
                let launching = detail["launches"].as_array().is_some_and(|ls| {
                    ls.iter()
                        .any(|l| l["state"] == "planned" || l["state"] == "launching")
                });
                if detail["state"] != "pending" && !launching {
                    return Ok((detail, true));
                }
                last = Some(detail);
            }
            Ok(r) if r.status().as_u16() == 404 => {
                anyhow::bail!("event {id} is not stored any more (retention pruned it?)")
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                anyhow::bail!("the admin API at {url} answered {status}: {}", text.trim());
            }
            // 5xx or no answer: the service may be busy; try again until the deadline.
            Ok(_) | Err(_) => {}
        }
        if Instant::now() >= deadline {
            return match last {
                Some(d) if d["state"] != "pending" => Ok((d, false)),
                _ => anyhow::bail!(
                    "event {id} was not decided within {} s (see `aap-bridge events --id {id}`)",
                    wait.as_secs()
                ),
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The decision in a few lines: state and reason, matched rules, and each launch.
pub fn describe(d: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let decision = &d["decision"];
    let list = |key: &str, rule: &dyn Fn(&Value) -> &Value| -> Vec<String> {
        let items = decision[key].as_array().map(Vec::as_slice).unwrap_or(&[]);
        items.iter().map(|i| s(rule(i))).collect()
    };
    let mut matched = list("planned", &|p| &p["rule"]);
    matched.extend(list("refused", &|r| &r["launch"]["rule"]));
    matched.extend(list("failed", &|f| &f[0]));
    let reason = match (d["state_reason"].as_str(), matched.len()) {
        (Some(r), _) => r.to_string(),
        (None, 0) => "-".to_string(),
        (None, n) => format!("{n} rule(s) matched"),
    };
    let mut out = format!(
        "event {}: {} ({reason})\n  source {}, type {}, category {}\n",
        s(&d["id"]),
        s(&d["state"]),
        s(&d["source"]),
        s(&d["event_type"]),
        s(&d["category"]),
    );
    if !matched.is_empty() {
        out.push_str(&format!("matched rules: {}\n", matched.join(", ")));
    }
    for l in d["launches"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        out.push_str(&launch_lines(l));
    }
    out
}

fn launch_lines(l: &Value) -> String {
    let template = match (&l["template_id"], l["template_name"].as_str()) {
        (Value::Number(n), _) => format!("{} template {n}", s_or(&l["template_kind"])),
        (_, Some(name)) => match l["template_org"].as_str() {
            Some(org) => format!(
                "{} template \"{name}\" (organization {org})",
                s_or(&l["template_kind"])
            ),
            None => format!("{} template \"{name}\"", s_or(&l["template_kind"])),
        },
        _ => "template ?".to_string(),
    };
    let template = match l["controller"].as_str() {
        Some(c) if c != crate::config::DEFAULT_CONTROLLER => {
            format!("{template} on controller \"{c}\"")
        }
        _ => template,
    };
    let state = s_or(&l["state"]);
    let what = match state.as_str() {
        "dry_run" => match l["controller"].as_str() {
            Some(c) if c != crate::config::DEFAULT_CONTROLLER => {
                format!("dry run: controller \"{c}\" is marked dry_run, nothing was launched")
            }
            _ => "dry run: no controller is configured, or it is marked dry_run; nothing was \
                  launched"
                .to_string(),
        },
        "coalesced" => format!(
            "coalesced into launch {}: nothing new launched",
            s_or(&l["coalesced_into"])
        ),
        "held" => format!(
            "held: rule {} is paused, nothing was sent (see `aap-bridge rules list`)",
            s_or(&l["rule"])
        ),
        _ => match (&l["job_id"], l["job_url"].as_str()) {
            (Value::Number(job), Some(link)) => format!(
                "{state}: job {job} ({}) {link}",
                l["job_status"].as_str().unwrap_or("status unknown")
            ),
            _ => match l["last_error"].as_str() {
                Some(e) => format!("{state}: {e}"),
                None => state,
            },
        },
    };
    let request = serde_json::to_string_pretty(&l["request"]).unwrap_or_default();
    format!(
        "launch by rule {} of {template}: {what}\n  request: {}\n",
        s_or(&l["rule"]),
        request.replace('\n', "\n  ")
    )
}

fn s_or(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_events_are_guessed_from_the_payload() {
        assert_eq!(
            github_event(&json!({"action": "labeled", "issue": {}})),
            "issues"
        );
        assert_eq!(
            github_event(&json!({"issue": {}, "comment": {}})),
            "issue_comment"
        );
        assert_eq!(github_event(&json!({"pull_request": {}})), "pull_request");
        assert_eq!(
            github_event(&json!({"ref": "refs/heads/main", "commits": []})),
            "push"
        );
        assert_eq!(github_event(&json!({"zen": "x", "hook_id": 1})), "ping");
        assert_eq!(github_event(&json!({})), "issues");
    }

    #[test]
    fn listen_addresses_become_local_urls() {
        assert_eq!(
            local_url("0.0.0.0:8080", "k").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(local_url("127.0.0.1:9", "k").unwrap(), "http://127.0.0.1:9");
        assert_eq!(local_url("[::]:80", "k").unwrap(), "http://[::1]:80");
        assert!(local_url("127.0.0.1:0", "k")
            .unwrap_err()
            .to_string()
            .contains("--url"));
    }

    #[test]
    fn a_dry_run_decision_names_rule_template_and_request() {
        let d = json!({"id": "e1", "state": "dispatched", "state_reason": null,
            "source": "github", "event_type": "issues.labeled", "category": "disk_full",
            "decision": {"planned": [{"rule": "r1"}], "refused": [], "failed": [], "skipped": []},
            "launches": [{"rule": "r1", "state": "dry_run", "template_kind": "job",
                "template_id": null, "template_name": "Disk cleanup", "template_org": "Ops",
                "request": {"extra_vars": {"issue": "42"}}, "job_id": null, "job_url": null}]});
        let text = describe(&d);
        assert!(
            text.starts_with("event e1: dispatched (1 rule(s) matched)"),
            "{text}"
        );
        assert!(text.contains("matched rules: r1"), "{text}");
        assert!(
            text.contains(
                "launch by rule r1 of job template \"Disk cleanup\" (organization Ops): dry run"
            ),
            "{text}"
        );
        assert!(text.contains("\"issue\": \"42\""), "{text}");
    }
}
