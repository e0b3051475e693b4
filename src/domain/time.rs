//! Times as operators type them: RFC 3339, an HTML `datetime-local`, or `2h` before now. One
//! parser for the admin API, the console, the CLI and catch-up.

use chrono::{DateTime, NaiveDateTime, Utc};

/// RFC 3339, or the `YYYY-MM-DDTHH:MM[:SS]` of an HTML `datetime-local` input, taken as UTC.
pub fn time(name: &str, v: &str) -> Result<DateTime<Utc>, String> {
    // An unencoded `+01:00` arrives as ` 01:00`.
    let v = v.replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&v) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&v, format) {
            return Ok(t.and_utc());
        }
    }
    Err(format!(
        "`{name}` must be an RFC 3339 time such as 2026-11-22T10:00:00Z, got `{v}`"
    ))
}

/// `2h`, `30m`, `3d`, `90s` before now, or a time as the admin API takes it (RFC 3339).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let secs = match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86400),
        _ => None,
    };
    if let (Ok(n), Some(secs)) = (n.parse::<i64>(), secs) {
        if let Some(d) = n.checked_mul(secs).and_then(chrono::Duration::try_seconds) {
            return Ok(now - d);
        }
    }
    time("since", t).map_err(|_| {
        format!("`since` must be a duration such as 2h, 30m or 3d, or an RFC 3339 time, got `{t}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_since(s, now).map(|t| t.to_rfc3339());
        assert_eq!(at("2h").unwrap(), "2026-11-29T10:00:00+00:00");
        assert_eq!(at("90s").unwrap(), "2026-11-29T11:58:30+00:00");
        assert_eq!(at("3d").unwrap(), "2026-11-26T12:00:00+00:00");
        assert_eq!(
            at("2026-11-28T08:00:00Z").unwrap(),
            "2026-11-28T08:00:00+00:00"
        );
        for bad in ["yesterday", "2x", "", "h"] {
            assert!(at(bad).unwrap_err().contains("duration"), "{bad}");
        }
    }
}
