//! Sorting a ticket system's answer: done, retry (with the wait the server asked for), or give up.

use crate::config::SourceKind;
use reqwest::header::HeaderMap;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest wait honoured from `Retry-After` or a rate-limit reset (GitHub resets hourly).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// GitHub's advice for a secondary rate limit that names no wait: at least a minute.
const SECONDARY_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
const REASON_MAX_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Try again later: 429, 5xx, a rate limit, or no answer. `after` is the wait the server
    /// asked for, when it said.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Sending again will not help: the ticket is gone, credentials are wrong, the request is
    /// refused.
    Permanent { reason: String },
}

impl SendError {
    pub fn reason(&self) -> &str {
        match self {
            SendError::Retry { reason, .. } | SendError::Permanent { reason } => reason,
        }
    }

    /// The ticket API's HTTP status, when it answered (the reason starts `HTTP 404: …`); None
    /// when it did not (no connection, a timeout) or the request was never built.
    pub fn status(&self) -> Option<u16> {
        let rest = self.reason().strip_prefix("HTTP ")?;
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok().filter(|s| (100..600).contains(s))
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Retry {
                after: Some(d),
                reason,
            } => write!(f, "{reason} (retry after {} s)", d.as_secs()),
            SendError::Retry {
                after: None,
                reason,
            } => write!(f, "{reason} (retry)"),
            SendError::Permanent { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for SendError {}

/// Sorts a non-2xx answer.
pub(crate) fn classify(
    kind: SourceKind,
    status: u16,
    headers: &HeaderMap,
    body: &str,
    now: SystemTime,
) -> Result<u16, SendError> {
    if (200..300).contains(&status) {
        return Ok(status);
    }
    let reason = format!("HTTP {status}: {}", short_reason(status, body));
    let (limited, after) = rate_limit_wait(headers, now);
    let retry = |after| {
        Err(SendError::Retry {
            after,
            reason: reason.clone(),
        })
    };
    match status {
        408 | 429 | 500..=599 => retry(after),
        403 if limited => retry(after),
        403 if kind == SourceKind::Github && body.to_ascii_lowercase().contains("rate limit") => {
            retry(Some(SECONDARY_RATE_LIMIT_WAIT))
        }
        _ => Err(SendError::Permanent { reason }),
    }
}

/// Whether the answer carries rate-limit headers, and the wait they ask for: `Retry-After`
/// (seconds or an HTTP date), else `x-ratelimit-remaining: 0` with `x-ratelimit-reset`.
fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> (bool, Option<Duration>) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(v) = get("retry-after") {
        return (true, parse_retry_after(v, now));
    }
    if get("x-ratelimit-remaining") == Some("0") {
        let after = get("x-ratelimit-reset")
            .and_then(|r| r.parse::<u64>().ok())
            .map(|reset| {
                let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                Duration::from_secs(reset)
                    .saturating_sub(now)
                    .min(MAX_RETRY_AFTER)
            });
        return (true, after);
    }
    (false, None)
}

pub(crate) fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(at.timestamp()).ok()?);
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .min(MAX_RETRY_AFTER),
    )
}

/// The error message from the answer: GitHub `message`, ServiceNow and PagerDuty `error`,
/// else the start of the body on one line.
fn short_reason(status: u16, body: &str) -> String {
    let from_json = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let mut parts: Vec<String> = Vec::new();
        let mut push = |x: Option<&Value>| match x {
            Some(Value::String(s)) if !s.is_empty() => parts.push(s.clone()),
            Some(Value::Array(items)) => parts.extend(items.iter().filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
                _ => None,
            })),
            _ => {}
        };
        push(v.get("message"));
        push(v.get("errors"));
        if let Some(e) = v.get("error") {
            push(Some(e));
            push(e.get("message"));
            push(e.get("detail"));
            push(e.get("errors"));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    });
    let text = from_json.unwrap_or_else(|| body.split_whitespace().collect::<Vec<_>>().join(" "));
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("no body")
            .to_string()
    } else {
        super::first_chars(&text, REASON_MAX_CHARS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_status_is_kept_when_there_was_one() {
        let e = |reason: &str| SendError::Permanent {
            reason: reason.into(),
        };
        assert_eq!(e("HTTP 404: No Record found").status(), Some(404));
        assert_eq!(e("HTTP 502").status(), Some(502));
        assert_eq!(e("connection refused").status(), None);
        assert_eq!(e("HTTP x: odd").status(), None);
    }

    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn sorting() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let none = HeaderMap::new();
        let gh = SourceKind::Github;
        assert_eq!(classify(gh, 201, &none, "", now), Ok(201));
        assert!(matches!(
            classify(gh, 502, &none, "", now),
            Err(SendError::Retry { after: None, .. })
        ));
        let limited = headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1042"),
        ]);
        assert_eq!(
            classify(
                gh,
                403,
                &limited,
                "{\"message\":\"API rate limit exceeded\"}",
                now
            ),
            Err(SendError::Retry {
                after: Some(Duration::from_secs(42)),
                reason: "HTTP 403: API rate limit exceeded".into()
            })
        );
        assert!(matches!(
            classify(gh, 403, &none, "{\"message\":\"You have exceeded a secondary rate limit\"}", now),
            Err(SendError::Retry { after: Some(d), .. }) if d == SECONDARY_RATE_LIMIT_WAIT
        ));
        assert_eq!(
            classify(
                gh,
                403,
                &none,
                "{\"message\":\"Resource not accessible by integration\"}",
                now
            ),
            Err(SendError::Permanent {
                reason: "HTTP 403: Resource not accessible by integration".into()
            })
        );
        let sn = r#"{"error":{"message":"No Record found","detail":"ACL"},"status":"failure"}"#;
        assert_eq!(
            classify(SourceKind::Servicenow, 404, &none, sn, now)
                .unwrap_err()
                .reason(),
            "HTTP 404: No Record found; ACL"
        );
        assert_eq!(
            classify(SourceKind::Pagerduty, 400, &none, "", now)
                .unwrap_err()
                .reason(),
            "HTTP 400: Bad Request"
        );
    }
}
