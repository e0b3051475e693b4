//! Templates (compiled into the binary) and HTML responses. Every value is escaped: minijinja
//! auto-escapes templates named `*.html`, and nothing is marked safe.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};
use std::sync::LazyLock;

static TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("error.html", include_str!("templates/error.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("events.html", include_str!("templates/events.html")),
    ("event.html", include_str!("templates/event.html")),
    ("rules.html", include_str!("templates/rules.html")),
    ("dead.html", include_str!("templates/dead.html")),
    ("simulate.html", include_str!("templates/simulate.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("deliveries.html", include_str!("templates/deliveries.html")),
    ("actions.html", include_str!("templates/actions.html")),
    ("audit.html", include_str!("templates/audit.html")),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, text) in TEMPLATES {
        env.add_template(name, text)
            .unwrap_or_else(|e| panic!("console template {name}: {e}"));
    }
    env.add_filter("pretty", pretty);
    env.add_filter("when", when);
    env.add_filter("link", link);
    env.add_filter("age", age);
    env.add_filter("compact", |v: Value| {
        serde_json::to_string(&v).unwrap_or_default()
    });
    env.add_filter("urlencode", |v: String| -> String {
        form_urlencoded::byte_serialize(v.as_bytes()).collect()
    });
    env
});

/// Who is looking, for the header and to hide what they may not do. Set for the request by the
/// session check; absent on the login and error pages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Who {
    pub user: String,
    pub can_act: bool,
}

tokio::task_local! {
    pub static WHO: Who;
}

/// A page with status 200.
pub fn page(name: &str, ctx: Value) -> Response {
    page_with(StatusCode::OK, name, ctx)
}

pub fn page_with(status: StatusCode, name: &str, ctx: Value) -> Response {
    let who = WHO.try_with(|w| w.clone()).ok();
    let ctx = minijinja::context! { who => who, ..ctx };
    match ENV.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "console page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>error</title><p>This page failed to render; see the log."),
            )
                .into_response()
        }
    }
}

/// An HTML error page. `csrf` is None when there is no session (no navigation then).
pub fn error_page(status: StatusCode, message: &str, csrf: Option<&str>) -> Response {
    page_with(
        status,
        "error.html",
        minijinja::context! {
            status => status.as_u16(),
            reason => status.canonical_reason().unwrap_or(""),
            message => message,
            csrf => csrf,
        },
    )
}

/// A JSON value, indented.
fn pretty(v: Value) -> String {
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
}

/// An RFC 3339 time as `2026-11-22 10:00:05 UTC (4 min ago)`; `–` for none. The zone is
/// always said, and how long ago saves the reader at 3 a.m. the sum.
fn when(v: Value) -> String {
    when_at(v, chrono::Utc::now())
}

fn when_at(v: Value, now: chrono::DateTime<chrono::Utc>) -> String {
    let Some(text) = v.as_str() else {
        return "–".into();
    };
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => {
            let t = t.with_timezone(&chrono::Utc);
            format!("{} UTC ({})", t.format("%Y-%m-%d %H:%M:%S"), ago(now - t))
        }
        Err(_) => text.to_string(),
    }
}

/// `just now`, `40 s ago`, `4 min ago`, `3 h ago`, `2 d ago`, or `in 5 s` for a time ahead.
fn ago(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds();
    let (n, ahead) = (secs.unsigned_abs(), secs < 0);
    let span = match n {
        0..=1 => return "just now".into(),
        2..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86400),
    };
    if ahead {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// The URL when it is http(s), else empty: ticket links come from payloads, and a
/// `javascript:` URL in an href would run when clicked.
fn link(v: Value) -> String {
    let text = v.as_str().unwrap_or_default().trim();
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        text.to_string()
    } else {
        String::new()
    }
}

/// Seconds as `3 d 4 h`, `5 h 2 min` or `40 s`.
fn age(v: Value) -> String {
    let Ok(secs) = f64::try_from(v) else {
        return "–".into();
    };
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_and_escapes() {
        LazyLock::force(&ENV);
        let html = ENV
            .get_template("error.html")
            .unwrap()
            .render(minijinja::context! { status => 400, message => "<script>\"'>" })
            .unwrap();
        assert!(!html.contains("<script>\""), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn links_must_be_http() {
        assert_eq!(link(Value::from("javascript:alert(1)")), "");
        assert_eq!(link(Value::from(" JavaScript:x")), "");
        assert_eq!(link(Value::from("https://x.test/a")), "https://x.test/a");
        assert_eq!(age(Value::from(90_000.0)), "1 d 1 h");
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:04:30Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            when_at(Value::from("2026-11-22T10:00:05.123Z"), now),
            "2026-11-22 10:00:05 UTC (4 min ago)"
        );
        assert_eq!(
            when_at(Value::from("2026-11-22T10:04:35Z"), now),
            "2026-11-22 10:04:35 UTC (in 5 s)"
        );
        assert_eq!(when(Value::from(())), "–");
    }
}
