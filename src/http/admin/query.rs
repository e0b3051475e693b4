//! Query strings parsed by hand, so a bad parameter is a JSON 400 that names it.

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use uuid::Uuid;

/// The parameters of one request. Empty values count as absent; the last repeat wins.
pub struct Query(HashMap<String, String>);

impl Query {
    /// Refuses parameters not in `allowed`, so a typo is not silently ignored.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{k}` (expected: {})",
                    allowed.join(", ")
                )));
            }
            if v.trim().is_empty() {
                map.remove(k.as_ref());
            } else {
                map.insert(k.into_owned(), v.trim().to_string());
            }
        }
        Ok(Query(map))
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// A value of a fixed-word type (a state), or a 400 listing the words.
    pub fn word<T: std::str::FromStr<Err = String>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|e| ApiError::bad_request(format!("`{name}`: {e}"))),
        }
    }

    /// An integer from 1 to `max`.
    pub fn limit(&self, name: &str, default: i64, max: i64) -> Result<i64, ApiError> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "`{name}` must be an integer from 1 to {max}, got `{v}`"
                    ))
                }),
        }
    }

    /// An RFC 3339 time such as `2026-11-22T10:00:00Z`.
    pub fn time(&self, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            // An unencoded `+01:00` arrives as ` 01:00`.
            Some(v) => DateTime::parse_from_rfc3339(&v.replace(' ', "+"))
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "`{name}` must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got `{v}` ({e})"
                    ))
                }),
        }
    }

    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => super::uuid_param(name, v).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_the_parameter() {
        let q = Query::parse(
            Some("limit=0&since=yesterday&state=odd&before=x"),
            &["limit", "since", "state", "before"],
        )
        .unwrap();
        assert!(q
            .limit("limit", 50, 500)
            .unwrap_err()
            .message
            .contains("`limit`"));
        assert!(q.time("since").unwrap_err().message.contains("`since`"));
        let e = q
            .word::<crate::store::events::EventState>("state")
            .unwrap_err();
        assert!(e.message.contains("`state`"), "{e}");
        assert!(q.uuid("before").unwrap_err().message.contains("`before`"));
        let e = Query::parse(Some("sorce=x"), &["source"]).err().unwrap();
        assert!(e.message.contains("`sorce`"), "{e}");
    }

    #[test]
    fn empty_values_are_absent_and_times_parse() {
        let q = Query::parse(
            Some("source=&since=2026-11-22T10%3A00%3A00%2B01%3A00"),
            &["source", "since"],
        )
        .unwrap();
        assert_eq!(q.text("source"), None);
        let t = q.time("since").unwrap().unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T09:00:00+00:00");
        assert_eq!(q.limit("limit", 50, 500).unwrap(), 50);
    }
}
