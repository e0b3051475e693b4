//! kill -9 at random moments under a stream of deliveries that are retried like a sender
//! retries them: every acknowledged delivery stored, every mapped event exactly one job (one on
//! each controller when a second rule sends it to a second controller).

use crate::support::fake_controller::{FakeController, Flavour, TemplateSpec};
use crate::support::fake_tickets::FakeTickets;
use crate::support::pipeline::{jobs_per_launch, wait_quiescent};
use crate::support::Sender;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command};

const RULES: &str = r#"
rules:
  - name: remediate
    source: snow
    category: disk_full
    launch: 15
    extra_vars:
      incident_number: "{{ ticket.number }}"
    reply: work_notes
"#;

/// With a second controller: the same events also launch on `lab` (an AAP).
const LAB_RULE: &str = r#"
  - name: remediate-lab
    source: snow
    category: disk_full
    controller: lab
    launch: 15
    reply: none
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A pseudo-random number below `n`, different every call (no dependency needed for this).
fn random_below(n: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos.wrapping_mul(6364136223846793005) >> 17) % n
}

/// Starts the binary (its output appended to `bridge.log` beside the config) and waits until
/// it is ready.
async fn start(config: &std::path::Path, base: &str) -> Child {
    let log_path = config.with_file_name("bridge.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_aap-bridge"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .env_remove("RUST_LOG")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    for _ in 0..300 {
        let ready = client.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return child;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("the bridge exited with {status}:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the bridge was not ready within 30 s");
}

#[sqlx::test]
async fn repeated_kill_9_under_load_loses_nothing_and_launches_once(pool: PgPool) {
    kill_9_under_load(pool, false).await;
}

/// The same with two controllers: each event one job on each, whatever the kills.
#[sqlx::test]
async fn repeated_kill_9_with_two_controllers_launches_once_on_each(pool: PgPool) {
    kill_9_under_load(pool, true).await;
}

async fn fake(flavour: Flavour) -> FakeController {
    let c = FakeController::start(flavour).await;
    c.set_job_duration(Duration::from_millis(200));
    c.add_job_template(TemplateSpec {
        id: Some(15),
        name: "template-15".into(),
        ..Default::default()
    });
    c
}

async fn kill_9_under_load(pool: PgPool, two: bool) {
    let controller = fake(Flavour::Awx).await;
    let lab = fake(Flavour::Aap).await;
    let tickets = FakeTickets::start().await;
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    let lab_rule = if two { LAB_RULE } else { "" };
    std::fs::write(rules.join("rules.yaml"), format!("{RULES}{lab_rule}")).unwrap();
    let lab_controller = match two {
        true => format!(
            "controllers:\n  lab:\n    url: \"{}\"\n    allow_insecure_http: true\n    \
             timeout_secs: 1\n    retry: {{max_attempts: 2, base_delay_ms: 20, max_delay_ms: 50}}\n    \
             auth: {{mode: basic, username: svc, password: svc-pass}}\n",
            lab.url()
        ),
        false => String::new(),
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("bridge.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
dev_mode: true
server: {{listen: "127.0.0.1:{port}", shutdown_grace_secs: 2, drain_secs: 0}}
database: {{url: "{db_url}", create_if_missing: false}}
log: {{level: warn}}
mappings: {{path: "{rules}"}}
workers:
  poll_interval_ms: 50
  tracker_interval_ms: 100
  launch_lease_secs: 2
  launch_settle_secs: 3
  reconcile_interval_secs: 1
  launch_retry_base_ms: 100
  launch_retry_max_ms: 500
  callback_retry_base_ms: 100
  callback_retry_max_ms: 500
  callback_lease_secs: 3
controller:
  url: "{controller}"
  allow_insecure_http: true
  timeout_secs: 1
  retry: {{max_attempts: 2, base_delay_ms: 20, max_delay_ms: 50}}
  auth: {{mode: basic, username: svc, password: svc-pass}}
sources:
  snow:
    kind: servicenow
    secrets: ["servicenow-new"]
    signature_header: X-Bridge-Signature
    timestamp_header: X-Bridge-Timestamp
    reply: {{api_url: "{tickets}", allow_insecure_http: true, username: snow-bot, password: snow-pass, timeout_secs: 2}}
{lab_controller}"#,
            rules = rules.display(),
            db_url = crate::support::database_url(&pool),
            controller = controller.url(),
            tickets = tickets.url(),
        ),
    )
    .unwrap();

    let mut child = start(&config, &base).await;
    // The sender: 4 streams, each delivery retried until the bridge acknowledges it.
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let mut senders = tokio::task::JoinSet::new();
    for stream in 0..4 {
        let (acked, base) = (acked.clone(), base.clone());
        senders.spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            for n in 0..20 {
                let delivery = format!("kill-{stream}-{n}");
                let body = Sender::ServiceNow.body(&delivery);
                loop {
                    let headers =
                        Sender::ServiceNow.signed_headers("servicenow-new", &delivery, &body);
                    let mut req = client.post(format!("{base}/hooks/snow")).body(body.clone());
                    for (k, v) in headers {
                        req = req.header(k, v);
                    }
                    match req.send().await {
                        Ok(r) if r.status().is_success() => break,
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                acked.lock().unwrap().insert(delivery);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
    }
    // The killer: kill -9 at random moments while deliveries and launches are in flight.
    let mut kills = 0;
    while !senders.is_empty() || kills < 4 {
        tokio::time::sleep(Duration::from_millis(200 + random_below(1000))).await;
        child.kill().await.unwrap(); // SIGKILL
        kills += 1;
        if senders.is_empty() && kills >= 4 {
            break;
        }
        child = start(&config, &base).await;
        while let Some(done) = senders.try_join_next() {
            done.unwrap();
        }
    }
    let _last = start(&config, &base).await;
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }

    let jobs = wait_quiescent(&pool, &controller, 120).await;
    let acked = acked.lock().unwrap().len();
    assert_eq!(acked, 80);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        events, 80,
        "every acknowledged delivery stored once ({kills} kills)"
    );
    assert_eq!(
        jobs, 80,
        "every mapped event exactly one job ({kills} kills)"
    );
    let per_launch = jobs_per_launch(&controller);
    assert_eq!(per_launch.len(), 80);
    assert!(per_launch.values().all(|n| *n == 1), "{per_launch:?}");
    if two {
        let jobs = wait_quiescent(&pool, &lab, 60).await;
        assert_eq!(jobs, 80, "one job on lab per event ({kills} kills)");
        let per_launch = jobs_per_launch(&lab);
        assert_eq!(per_launch.len(), 80);
        assert!(per_launch.values().all(|n| *n == 1), "{per_launch:?}");
    } else {
        assert_eq!(lab.jobs_launched(), 0);
    }
}
