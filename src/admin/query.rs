//! Query strings of the event and callback lists, parsed by serde (axum's `Query`, or a
//! console form). Each field parses itself, so a bad value's error names its parameter; unknown
//! parameters are refused, so a typo is not silently ignored. Empty values count as absent.

use crate::domain::time::{parse_since, time};
use crate::domain::{CallbackState, EventState};
use crate::store::admin::EventFilter;
use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// `GET /api/v1/events` and the console's event list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventQuery {
    /// Only events from this source.
    #[serde(default, deserialize_with = "text")]
    pub source: Option<String>,
    /// pending, dispatched, unmapped, ignored or failed.
    #[serde(default, deserialize_with = "event_state")]
    pub state: Option<EventState>,
    #[serde(default, deserialize_with = "text")]
    pub category: Option<String>,
    /// e.g. `incident.insert`.
    #[serde(default, deserialize_with = "text")]
    pub event_type: Option<String>,
    /// The ticket number (`INC0010001`, an issue number, a PagerDuty incident number).
    #[serde(default, deserialize_with = "text")]
    pub ticket: Option<String>,
    /// Received at or after: RFC 3339 (`2026-11-22T10:00:00Z`), or `2026-11-22T10:00` in UTC.
    #[serde(default, deserialize_with = "since")]
    pub since: Option<DateTime<Utc>>,
    /// Received before; same forms as `since`.
    #[serde(default, deserialize_with = "until")]
    pub until: Option<DateTime<Utc>>,
    /// The page cursor: events older than this id (`next_before` of the previous page).
    #[serde(default, deserialize_with = "before")]
    pub before: Option<Uuid>,
    /// 1 to 500, default 50.
    #[serde(default, deserialize_with = "limit")]
    pub limit: Option<i64>,
}

impl EventQuery {
    pub fn filter(&self) -> EventFilter {
        EventFilter {
            source: self.source.clone(),
            state: self.state,
            category: self.category.clone(),
            event_type: self.event_type.clone(),
            ticket: self.ticket.clone(),
            since: self.since,
            until: self.until,
            before: self.before,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
        }
    }
}

/// `GET /api/v1/callbacks`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CallbackQuery {
    /// pending, sent or dead (the dead letters).
    #[serde(default, deserialize_with = "callback_state")]
    pub state: Option<CallbackState>,
    /// 1 to 500, default 50.
    #[serde(default, deserialize_with = "limit")]
    pub limit: Option<i64>,
}

/// `POST /api/v1/catch-up/{source}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CatchUpQuery {
    /// Look back to this time instead of the checkpoint: a duration before now (`2h`, `30m`,
    /// `3d`) or an RFC 3339 time. GitHub lists at most the last 3 days.
    #[serde(default, deserialize_with = "ago_or_time")]
    pub since: Option<DateTime<Utc>>,
}

/// The value, trimmed; None when empty.
fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    let s = s.trim();
    Ok((!s.is_empty()).then(|| s.to_string()))
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    raw(d)
}

/// A deserializer for one named parameter, parsed by `$parse(name, value)`.
macro_rules! parameter {
    ($fn:ident($name:literal): $ty:ty = $parse:expr) => {
        fn $fn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$ty>, D::Error> {
            match raw(d)? {
                None => Ok(None),
                Some(v) => $parse($name, &v).map(Some).map_err(D::Error::custom),
            }
        }
    };
}

parameter!(event_state("state"): EventState = word);
parameter!(callback_state("state"): CallbackState = word);
parameter!(since("since"): DateTime<Utc> = time);
parameter!(until("until"): DateTime<Utc> = time);
parameter!(before("before"): Uuid = uuid);
parameter!(limit("limit"): i64 = page_size);
parameter!(ago_or_time("since"): DateTime<Utc> = ago);

fn ago(_name: &str, v: &str) -> Result<DateTime<Utc>, String> {
    parse_since(v, Utc::now())
}

fn word<T: std::str::FromStr<Err = String>>(name: &str, v: &str) -> Result<T, String> {
    v.parse::<T>().map_err(|e| format!("`{name}`: {e}"))
}

fn page_size(name: &str, v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| format!("`{name}` must be an integer from 1 to {MAX_LIMIT}, got `{v}`"))
}

fn uuid(name: &str, v: &str) -> Result<Uuid, String> {
    super::uuid_param(name, v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(q: &str) -> Result<EventQuery, String> {
        serde_urlencoded_like(q)
    }

    /// axum's `Query` uses serde_urlencoded; `form_urlencoded` + serde_json gives the same
    /// string map for these flat structs.
    fn serde_urlencoded_like<T: serde::de::DeserializeOwned>(q: &str) -> Result<T, String> {
        let map: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| e.to_string())
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (q, name) in [
            ("limit=0", "`limit`"),
            ("limit=ten", "`limit`"),
            ("since=yesterday", "`since`"),
            ("until=2026-13-01T00:00:00Z", "`until`"),
            ("state=odd", "`state`"),
            ("before=x", "`before`"),
            ("sorce=x", "`sorce`"),
        ] {
            let e = events(q).unwrap_err();
            assert!(e.contains(name), "{q}: {e}");
        }
    }

    #[test]
    fn empty_values_are_absent_and_times_parse() {
        let q = events("source=&since=2026-11-22T10%3A00%3A00%2B01%3A00&until=2026-11-22T12:30")
            .unwrap();
        assert_eq!(q.source, None);
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-11-22T09:00:00+00:00");
        assert_eq!(q.until.unwrap().to_rfc3339(), "2026-11-22T12:30:00+00:00");
        assert_eq!(q.filter().limit, DEFAULT_LIMIT);
        let q = events("since=2026-11-22T10:00:00 01:00").unwrap();
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-11-22T09:00:00+00:00");
    }
}
