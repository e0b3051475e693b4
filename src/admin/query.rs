//! Query strings of the event and callback lists, parsed by serde (axum's `Query`, or a
//! console form). Each field parses itself, so a bad value's error names its parameter; unknown
//! parameters are refused, so a typo is not silently ignored. Empty values count as absent.

use crate::domain::time::{parse_since, time};
use crate::domain::{CallbackState, DeliveryOutcome, EventState};
use crate::store::event_list::EventFilter;
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
    /// Only events with a launch in this state (`awaiting_approval`, `held`, `planned`, …).
    #[serde(default, deserialize_with = "launch_state")]
    pub launch_state: Option<crate::domain::LaunchState>,
    #[serde(default, deserialize_with = "text")]
    pub category: Option<String>,
    /// e.g. `incident.insert`.
    #[serde(default, deserialize_with = "text")]
    pub event_type: Option<String>,
    /// The ticket number exactly (`INC0010001`, an issue number, a PagerDuty incident number).
    #[serde(default, deserialize_with = "text")]
    pub ticket: Option<String>,
    /// Search, case-insensitive, any part of: the ticket number, `sys_id`, PagerDuty incident
    /// id, `owner/repo#number`, delivery id, or text in the payload of the newest 20,000 events.
    #[serde(default, deserialize_with = "search")]
    pub q: Option<String>,
    /// Received at or after: RFC 3339 (`2026-11-22T10:00:00Z`), or `2026-11-22T10:00` in UTC.
    #[serde(default, deserialize_with = "since")]
    pub since: Option<DateTime<Utc>>,
    /// Received before; same forms as `since`.
    #[serde(default, deserialize_with = "until")]
    pub until: Option<DateTime<Utc>>,
    /// The page cursor: events older than this id (`next_before` of the previous page).
    #[serde(default, deserialize_with = "before")]
    pub before: Option<Uuid>,
    /// The other cursor: events newer than this id (`prev_after`), the page above.
    #[serde(default, deserialize_with = "after")]
    pub after: Option<Uuid>,
    /// 1 to 500, default 50.
    #[serde(default, deserialize_with = "limit")]
    pub limit: Option<i64>,
}

impl EventQuery {
    pub fn filter(&self) -> EventFilter {
        EventFilter {
            source: self.source.clone(),
            state: self.state,
            launch_state: self.launch_state,
            category: self.category.clone(),
            event_type: self.event_type.clone(),
            ticket: self.ticket.clone(),
            search: self.q.clone(),
            since: self.since,
            until: self.until,
            before: self.before,
            after: self.after,
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

/// `GET /api/v1/deliveries` and the console's deliveries page.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only requests to this source (as requested, configured or not).
    #[serde(default, deserialize_with = "text")]
    pub source: Option<String>,
    /// accepted, duplicate, ignored, refused or unavailable.
    #[serde(default, deserialize_with = "delivery_outcome")]
    pub outcome: Option<DeliveryOutcome>,
    /// The HTTP status answered, e.g. 401.
    #[serde(default, deserialize_with = "status")]
    pub status: Option<i16>,
    /// Older than this id (`next_before` of the previous page).
    #[serde(default, deserialize_with = "row_id_before")]
    pub before: Option<i64>,
    /// Newer than this id (`prev_after`): the page above.
    #[serde(default, deserialize_with = "row_id_after")]
    pub after: Option<i64>,
    /// 1 to 500, default 50.
    #[serde(default, deserialize_with = "limit")]
    pub limit: Option<i64>,
}

impl DeliveryQuery {
    pub fn filter(&self) -> crate::deliveries::sql::DeliveryFilter {
        crate::deliveries::sql::DeliveryFilter {
            source: self.source.clone(),
            outcome: self.outcome,
            status: self.status,
            before: self.before,
            after: self.after,
            limit: self.limit.unwrap_or(DEFAULT_LIMIT),
        }
    }
}

/// `GET /api/v1/audit`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only actions by this user (`admin-token`, `cli` or a controller user name).
    #[serde(default, deserialize_with = "text")]
    pub actor: Option<String>,
    /// Only actions on this event, callback, rule or source.
    #[serde(default, deserialize_with = "text")]
    pub target: Option<String>,
    /// Older than this id (`next_before` of the previous page).
    #[serde(default, deserialize_with = "row_id_before")]
    pub before: Option<i64>,
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
parameter!(launch_state("launch_state"): crate::domain::LaunchState = word);
parameter!(delivery_outcome("outcome"): DeliveryOutcome = word);
parameter!(status("status"): i16 = http_status);
parameter!(row_id_before("before"): i64 = row_id);
parameter!(row_id_after("after"): i64 = row_id);
parameter!(callback_state("state"): CallbackState = word);
parameter!(since("since"): DateTime<Utc> = time);
parameter!(until("until"): DateTime<Utc> = time);
parameter!(before("before"): Uuid = uuid);
parameter!(after("after"): Uuid = uuid);
parameter!(search("q"): String = search_text);
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

fn search_text(name: &str, v: &str) -> Result<String, String> {
    if v.chars().count() > 200 {
        return Err(format!("`{name}` is longer than 200 characters"));
    }
    Ok(v.to_string())
}

fn http_status(name: &str, v: &str) -> Result<i16, String> {
    v.parse::<i16>()
        .ok()
        .filter(|n| (100..=599).contains(n))
        .ok_or_else(|| format!("`{name}` must be an HTTP status from 100 to 599, got `{v}`"))
}

fn row_id(name: &str, v: &str) -> Result<i64, String> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{name}` must be a positive row id, got `{v}`"))
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
