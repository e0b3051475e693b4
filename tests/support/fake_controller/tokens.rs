//! Personal access tokens: `R tokens/` on AWX, `/api/gateway/v1/tokens/` (and the controller's
//! own `tokens/`) on AAP. One store serves every path.

use super::auth::Who;
use super::http::{paginate, Req, Resp};
use super::model::{random_key, State, Token};
use super::render::token_json;
use super::Flavour;
use chrono::{Duration, Utc};
use serde_json::{json, Value};

/// AWX's OAUTH2 ACCESS_TOKEN_EXPIRE_SECONDS for personal tokens (~1000 years).
const AWX_TOKEN_SECS: i64 = 31_536_000_000;
const AAP_TOKEN_SECS: i64 = 365 * 24 * 3600;

/// `base` is the collection path the request came through, e.g. `/api/v2/tokens/`.
pub fn handle(st: &mut State, r: &Req, who: &Who, base: &str, id: Option<i64>) -> Resp {
    match (r.method.as_str(), id) {
        ("POST", None) => create(st, r, who, base),
        ("GET", None) => {
            let items: Vec<Value> = st
                .tokens
                .values()
                .filter(|t| t.user_id == who.user_id)
                .map(|t| token_json(st, t, base, false))
                .collect();
            paginate(r, items)
        }
        ("GET", Some(id)) => match st.tokens.get(&id).filter(|t| t.user_id == who.user_id) {
            Some(t) => Resp::json(200, token_json(st, t, base, false)),
            None => Resp::not_found(),
        },
        ("DELETE", Some(id)) => {
            if st.tokens.get(&id).is_some_and(|t| t.user_id == who.user_id) {
                st.tokens.remove(&id);
                Resp::empty(204)
            } else {
                Resp::not_found()
            }
        }
        (m, _) => Resp::method_not_allowed(m),
    }
}

fn create(st: &mut State, r: &Req, who: &Who, base: &str) -> Resp {
    let body = match r.json() {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let scope = match body.get("scope") {
        None | Some(Value::Null) => "write".to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => String::new(),
    };
    let valid = !scope.is_empty() && scope.split(' ').all(|s| s == "read" || s == "write");
    if !valid {
        return Resp::json(
            400,
            json!({"scope": ["Must be a simple space-separated string with allowed scopes ['read', 'write']."]}),
        );
    }
    if !matches!(body.get("application"), None | Some(Value::Null)) {
        return Resp::json(
            400,
            json!({"application": ["Invalid pk - object does not exist."]}),
        );
    }
    let description = body
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let now = Utc::now();
    let lifetime = match st.flavour {
        Flavour::Awx => AWX_TOKEN_SECS,
        Flavour::Aap => AAP_TOKEN_SECS,
    };
    let id = st.next_token;
    st.next_token += 1;
    st.tokens_created += 1;
    let token = Token {
        id,
        user_id: who.user_id,
        application: None,
        description,
        key: random_key(30),
        scope,
        created: now,
        expires: now + Duration::seconds(lifetime),
    };
    let body = token_json(st, &token, base, true);
    st.tokens.insert(id, token);
    Resp::json(201, body).with("Location", format!("{base}{id}/"))
}
