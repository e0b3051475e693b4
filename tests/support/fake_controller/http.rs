//! Request/response plumbing kept free of axum so handlers stay synchronous under the lock.

use axum::http::HeaderMap;
use serde_json::{json, Value};

pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim_matches('"').to_string())
    }

    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Safe methods never need CSRF and are allowed for read-scope tokens.
    pub fn is_unsafe(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE")
    }

    fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|c| c.to_ascii_lowercase().contains("json"))
    }

    /// The JSON body; an empty body is `{}` as DRF treats it. Bad JSON -> 400 like DRF.
    pub fn json(&self) -> Result<Value, Resp> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(json!({}));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Resp::json(400, json!({"detail": format!("JSON parse error - {e}")})))
    }

    /// Form fields, or top-level string fields of a JSON body (some clients post JSON).
    pub fn form(&self) -> Vec<(String, String)> {
        let looks_json = self.body.trim_ascii_start().first() == Some(&b'{');
        if self.is_json() || looks_json {
            let v: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
            return v
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                        .collect()
                })
                .unwrap_or_default();
        }
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub struct Resp {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(status: u16, v: Value) -> Resp {
        Resp {
            status,
            content_type: Some("application/json"),
            headers: Vec::new(),
            body: serde_json::to_vec(&v).unwrap(),
        }
    }

    pub fn html(status: u16, body: &str) -> Resp {
        Resp {
            status,
            content_type: Some("text/html; charset=utf-8"),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn text(status: u16, body: String) -> Resp {
        Resp {
            status,
            content_type: Some("text/plain; charset=utf-8"),
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    pub fn empty(status: u16) -> Resp {
        Resp {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with(mut self, name: &str, value: impl Into<String>) -> Resp {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn not_found() -> Resp {
        Resp::json(404, json!({"detail": "Not found."}))
    }

    pub fn forbidden() -> Resp {
        Resp::json(
            403,
            json!({"detail": "You do not have permission to perform this action."}),
        )
    }

    /// The one 401 the controller gives for every authentication failure.
    pub fn unauthorized() -> Resp {
        Resp::json(
            401,
            json!({"detail": "Authentication credentials were not provided. To establish a login session, visit /api/login/."}),
        )
        .with(
            "WWW-Authenticate",
            "Bearer realm=api authorization_url=/api/o/authorize/",
        )
    }

    pub fn method_not_allowed(method: &str) -> Resp {
        Resp::json(
            405,
            json!({"detail": format!("Method \"{method}\" not allowed.")}),
        )
    }
}

/// 405 unless the request uses one of `methods`.
pub fn only(r: &Req, methods: &[&str]) -> Option<Resp> {
    (!methods.contains(&r.method.as_str())).then(|| Resp::method_not_allowed(&r.method))
}

/// AWX's page size cap (MAX_PAGE_SIZE).
const MAX_PAGE_SIZE: usize = 200;
const DEFAULT_PAGE_SIZE: usize = 25;

/// DRF PageNumberPagination: `{"count","next","previous","results"}`, links as path+query.
pub fn paginate(r: &Req, items: Vec<Value>) -> Resp {
    let size = r
        .q("page_size")
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .map_or(DEFAULT_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE));
    let count = items.len();
    let pages = count.div_ceil(size).max(1);
    let page = match r.q("page") {
        None => 1,
        Some("last") => pages,
        Some(p) => match p.parse::<usize>() {
            Ok(n) if n >= 1 && n <= pages => n,
            _ => return Resp::json(404, json!({"detail": "Invalid page."})),
        },
    };
    let results: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let next = (page < pages).then(|| page_link(r, Some(page + 1)));
    let previous = (page > 1).then(|| page_link(r, (page > 2).then_some(page - 1)));
    Resp::json(
        200,
        json!({"count": count, "next": next, "previous": previous, "results": results}),
    )
}

/// DRF's replace_query_param: keeps the other parameters, sorted by name.
fn page_link(r: &Req, page: Option<usize>) -> String {
    let mut pairs: Vec<(String, String)> = r
        .query
        .iter()
        .filter(|(k, _)| k != "page")
        .cloned()
        .collect();
    if let Some(p) = page {
        pairs.push(("page".into(), p.to_string()));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    if pairs.is_empty() {
        return r.path.clone();
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}?{query}", r.path)
}
