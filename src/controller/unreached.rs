//! Gateway answers that prove a request never reached the controller. A launch POST answered so
//! was not sent, and can be sent again as soon as the controller is back, instead of waiting out
//! the settle window like an unclear answer (README "Launch protocol", "Answers that prove
//! nothing was sent").
//!
//! What the proxies in front of a controller send when they cannot reach it:
//! - Envoy (the AAP 2.5+ platform gateway): 503 `upstream connect error or disconnect/reset
//!   before headers. reset reason: <reason>` (envoyproxy/envoy `source/common/router/router.cc`,
//!   `Filter::onUpstreamReset`). The reasons `connection failure`, `local connection failure`,
//!   `remote connection failure`, `connection timeout` (response flag UF) and `overflow` (UO)
//!   mean no upstream connection carried the request; `connection termination` (UC) and
//!   `remote reset` (UR) may come after the controller read it. `retried and the latest reset
//!   reason` names only the last of several tries, so it proves nothing. `no healthy upstream`
//!   (UH) is answered before any upstream request exists; `x-envoy-overloaded: true` marks UO.
//! - The OpenShift router (HAProxy), when a route has no ready pod: 503 `Application is not
//!   available` (openshift/router `images/router/haproxy/conf/error-page-503.http`).
//! - nginx's 502 page is the same whether or not the upstream read the request: it proves nothing.

use reqwest::header::HeaderMap;

/// Envoy reset reasons that mean the upstream connection never carried the request.
const NEVER_CONNECTED: &[&str] = &[
    "connection failure",
    "local connection failure",
    "remote connection failure",
    "connection timeout",
    "overflow",
];

/// Why this 502/503 answer proves the request never reached the controller, or None.
pub fn never_reached(status: u16, headers: &HeaderMap, body: &str) -> Option<String> {
    if !matches!(status, 502 | 503) {
        return None;
    }
    let overloaded = headers
        .get("x-envoy-overloaded")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if overloaded {
        return Some(format!(
            "HTTP {status} from the gateway: x-envoy-overloaded"
        ));
    }
    let text = body.trim();
    let first = text.lines().next().unwrap_or_default();
    if text == "no healthy upstream" {
        return Some(format!(
            "HTTP {status} from the gateway: no healthy upstream"
        ));
    }
    const ENVOY: &str = "upstream connect error or disconnect/reset before headers. reset reason: ";
    if let Some(reason) = first.strip_prefix(ENVOY) {
        // Envoy may add ", transport failure reason: …" after the reason.
        let reason = reason.split(',').next().unwrap_or_default().trim();
        return NEVER_CONNECTED
            .contains(&reason)
            .then(|| format!("HTTP {status} from the gateway: {first}"));
    }
    if status == 503 && text.contains("<h1>Application is not available</h1>") {
        return Some("HTTP 503 from the OpenShift router: Application is not available".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str) -> bool {
        never_reached(status, &HeaderMap::new(), body).is_some()
    }

    #[test]
    fn only_answers_that_prove_nothing_was_sent() {
        let envoy = "upstream connect error or disconnect/reset before headers. reset reason: ";
        for reason in [
            "connection failure",
            "remote connection failure",
            "connection timeout",
            "overflow",
            "connection failure, transport failure reason: delayed connect error: 111",
        ] {
            assert!(check(503, &format!("{envoy}{reason}")), "{reason}");
        }
        for reason in ["connection termination", "remote reset", "protocol error"] {
            assert!(!check(503, &format!("{envoy}{reason}")), "{reason}");
        }
        let retried = "upstream connect error or disconnect/reset before headers. retried and \
                       the latest reset reason: connection failure";
        assert!(!check(503, retried), "an earlier try may have been sent");
        assert!(check(503, "no healthy upstream"));
        assert!(check(
            503,
            "<html><body><h1>Application is not available</h1><p>The application is currently \
             not serving requests at this endpoint.</p></body></html>"
        ));
        let nginx = "<html><head><title>502 Bad Gateway</title></head></html>";
        assert!(!check(502, nginx), "nginx's page proves nothing");
        assert!(!check(503, ""), "a bare 503 proves nothing");
        assert!(
            !check(504, "no healthy upstream"),
            "a gateway timeout proves nothing"
        );
        let mut h = HeaderMap::new();
        h.insert("x-envoy-overloaded", "true".parse().unwrap());
        assert!(never_reached(503, &h, "").is_some());
    }
}
