//! The client's address, for log lines, the deliveries log, the audit trail and login limits.

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, HeaderName};
use std::net::SocketAddr;

/// With `header` (`server.client_address_header`), its right-most entry: a proxy appends the
/// address it saw, and everything left of it is the client's own claim. Otherwise the peer.
pub fn address(
    header: Option<&HeaderName>,
    headers: &HeaderMap,
    ext: &Extensions,
) -> Option<String> {
    let peer = || {
        ext.get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
    };
    let Some(name) = header else {
        return peer();
    };
    let forwarded = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
        .and_then(|v| v.parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string());
    forwarded.or_else(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_proxy_s_entry_wins_over_the_client_s_claim() {
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 4000))));
        let mut h = HeaderMap::new();
        assert_eq!(address(None, &h, &ext).as_deref(), Some("10.0.0.9"));
        let name = HeaderName::from_static("x-forwarded-for");
        h.append(&name, HeaderValue::from_static("1.2.3.4, 203.0.113.7"));
        assert_eq!(
            address(Some(&name), &h, &ext).as_deref(),
            Some("203.0.113.7")
        );
        h.insert(&name, HeaderValue::from_static("not an address"));
        assert_eq!(address(Some(&name), &h, &ext).as_deref(), Some("10.0.0.9"));
        assert_eq!(address(Some(&name), &h, &Extensions::new()), None);
        assert_eq!(
            address(None, &HeaderMap::new(), &ext).as_deref(),
            Some("10.0.0.9")
        );
    }
}
