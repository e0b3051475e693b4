//! Realistic deliveries for each sender, signed the way the sender signs them.

use aap_bridge::config::SignatureScheme;
use aap_bridge::sign::{github_signature, pagerduty_signature, servicenow_signature};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Github,
    PagerDuty,
    ServiceNow,
}

impl Sender {
    pub const ALL: [Sender; 3] = [Sender::Github, Sender::PagerDuty, Sender::ServiceNow];

    pub fn source(self) -> &'static str {
        match self {
            Sender::Github => "gh",
            Sender::PagerDuty => "pd",
            Sender::ServiceNow => "snow",
        }
    }
    pub fn old_secret(self) -> &'static str {
        match self {
            Sender::Github => "github-old",
            Sender::PagerDuty => "pagerduty-old",
            Sender::ServiceNow => "servicenow-old",
        }
    }
    pub fn new_secret(self) -> &'static str {
        match self {
            Sender::Github => "github-new",
            Sender::PagerDuty => "pagerduty-new",
            Sender::ServiceNow => "servicenow-new",
        }
    }

    /// A typical payload. Every kind dedupes on the signed body, so `delivery` is written into
    /// it (GitHub: the issue body; PagerDuty: `event.id`; ServiceNow: `sys_updated_on`).
    pub fn body(self, delivery: &str) -> Vec<u8> {
        let v = match self {
            Sender::Github => json!({
                "action": "labeled",
                "label": {"name": "disk_full"},
                "issue": {"number": 42, "html_url": "https://github.com/acme/ops/issues/42",
                          "labels": [{"name": "disk_full"}], "title": "disk full on web01",
                          "body": format!("reported in delivery {delivery}")},
                "repository": {"full_name": "acme/ops"},
                "sender": {"login": "octocat"}
            }),
            Sender::PagerDuty => json!({"event": {
                "id": format!("evt-{delivery}"),
                "event_type": "incident.triggered",
                "resource_type": "incident",
                "occurred_at": "2026-11-22T10:00:00Z",
                "data": {"id": "PABC123", "type": "incident", "number": 77,
                         "html_url": "https://acme.pagerduty.com/incidents/PABC123",
                         "title": "web01 down", "service": {"id": "PSVC1", "summary": "web-tier"}}
            }}),
            Sender::ServiceNow => json!({
                "table": "incident",
                "sys_id": "9d385017c611228701d22104cc95c371",
                "number": "INC0010001",
                "sys_updated_on": format!("2026-11-22 10:00:00 {delivery}"),
                "category": {"value": "disk_full", "display_value": "Disk full"},
                "cmdb_ci": "web01.example.com",
                "priority": "2",
                "operation": "insert"
            }),
        };
        serde_json::to_vec(&v).unwrap()
    }

    /// Headers the sender would send, signed with `secret`.
    pub fn signed_headers(
        self,
        secret: &str,
        delivery: &str,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let ts = now();
        let mut h = self.unsigned_headers(delivery);
        h.push(self.signature_header(secret, body, ts));
        if self == Sender::ServiceNow {
            h.push(("X-Bridge-Timestamp".into(), ts.to_string()));
        }
        h
    }

    pub fn unsigned_headers(self, delivery: &str) -> Vec<(String, String)> {
        let ct = ("Content-Type".to_string(), "application/json".to_string());
        match self {
            Sender::Github => vec![
                ct,
                ("X-GitHub-Event".into(), "issues".into()),
                ("X-GitHub-Delivery".into(), delivery.into()),
                ("X-GitHub-Hook-ID".into(), "1001".into()),
            ],
            Sender::PagerDuty => vec![ct, ("X-Webhook-Id".into(), delivery.into())],
            // `snow` signs `{timestamp}.{body}`: this header is information only.
            Sender::ServiceNow => vec![ct, ("X-ServiceNow-Delivery".into(), delivery.into())],
        }
    }

    /// A captured delivery as an attacker would resend it: body, signature and signed timestamp
    /// kept, every unsigned header fresh, dropped or changed.
    pub fn replayed_headers(self, original: &[(String, String)]) -> Vec<(String, String)> {
        let unsigned = [
            "x-github-delivery",
            "x-github-hook-id",
            "x-github-event",
            "x-webhook-id",
            "x-servicenow-delivery",
        ];
        let mut h: Vec<(String, String)> = original
            .iter()
            .filter(|(k, _)| !unsigned.contains(&k.to_ascii_lowercase().as_str()))
            .cloned()
            .collect();
        let fresh = format!("fresh-{}", uuid::Uuid::new_v4());
        match self {
            Sender::Github => {
                h.push(("X-GitHub-Delivery".into(), fresh));
                h.push(("X-GitHub-Event".into(), "issue_comment".into()));
            }
            Sender::PagerDuty => h.push(("X-Webhook-Id".into(), fresh)),
            Sender::ServiceNow => h.push(("X-ServiceNow-Delivery".into(), fresh)),
        }
        h
    }

    /// The signature header; `ts` is signed too for ServiceNow (`{ts}.{body}`).
    pub fn signature_header(self, secret: &str, body: &[u8], ts: i64) -> (String, String) {
        match self {
            Sender::Github => ("X-Hub-Signature-256".into(), github_signature(secret, body)),
            Sender::PagerDuty => (
                "X-PagerDuty-Signature".into(),
                pagerduty_signature(secret, body),
            ),
            Sender::ServiceNow => {
                let (scheme, ts) = (SignatureScheme::TimestampBody, ts.to_string());
                let sig = servicenow_signature(secret, scheme, &ts, "", body);
                ("X-Bridge-Signature".into(), sig)
            }
        }
    }

    pub fn garbled_signature(self) -> (String, String) {
        match self {
            Sender::Github => ("X-Hub-Signature-256".into(), "sha256=zz-not-hex".into()),
            Sender::PagerDuty => ("X-PagerDuty-Signature".into(), "v2=abc".into()),
            Sender::ServiceNow => ("X-Bridge-Signature".into(), "!!not base64!!".into()),
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
