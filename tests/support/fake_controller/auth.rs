//! Authentication: Basic, Bearer (personal and OAuth2 tokens), Tower `Token`, session + CSRF,
//! and the endpoints that hand those credentials out.

use super::http::{field, Req, Resp};
use super::model::{random_key, OAuthRefresh, Session, State, Token};
use super::render::ts;
use super::Flavour;
use base64::Engine;
use chrono::{Duration, Utc};
use serde_json::json;

pub struct Who {
    pub user_id: i64,
}

/// Lifetime of OAuth2 access tokens from a grant (`expires_in`): AWX's default
/// ACCESS_TOKEN_EXPIRE_SECONDS is ~1000 years; the gateway's is shorter.
fn oauth_expires_in(f: Flavour) -> i64 {
    match f {
        Flavour::Awx => 31_536_000_000,
        Flavour::Aap => 36000,
    }
}
/// Tower's sliding AUTH_TOKEN_EXPIRATION.
const AUTHTOKEN_SECS: i64 = 1800;

/// Same order as AWX's DRF authentication classes: a live session wins (and then needs CSRF
/// on unsafe methods), otherwise the Authorization header decides.
pub fn authenticate(st: &mut State, r: &Req) -> Result<Who, Resp> {
    let now = Utc::now();
    let max_age = Duration::seconds(st.flavour.session_max_age());
    if let Some(sess) = r
        .cookie(st.flavour.session_cookie())
        .and_then(|sid| st.sessions.get_mut(&sid))
        .filter(|s| s.expires > now)
    {
        sess.expires = now + max_age;
        if r.is_unsafe() {
            check_csrf(r, &sess.csrf, st.tls)?;
        }
        return Ok(Who {
            user_id: sess.user_id,
        });
    }
    let header = r.header("authorization").ok_or_else(Resp::unauthorized)?;
    let (scheme, cred) = header.split_once(' ').unwrap_or((header, ""));
    let cred = cred.trim();
    let (user_id, read_only) = match scheme.to_ascii_lowercase().as_str() {
        "basic" => (basic_user(st, cred).ok_or_else(Resp::unauthorized)?, false),
        "bearer" => {
            if let Some(t) = st
                .tokens
                .values()
                .find(|t| t.key == cred && t.expires > now)
            {
                (t.user_id, t.scope.split(' ').all(|s| s == "read"))
            } else {
                return Err(Resp::unauthorized());
            }
        }
        "token" if st.flavour == Flavour::Awx => {
            let entry = st
                .authtokens
                .get_mut(cred)
                .filter(|(_, exp)| *exp > now)
                .ok_or_else(Resp::unauthorized)?;
            entry.1 = now + Duration::seconds(AUTHTOKEN_SECS);
            (entry.0, false)
        }
        _ => return Err(Resp::unauthorized()),
    };
    // A read-scope token may look but not touch.
    if read_only && r.is_unsafe() {
        return Err(Resp::forbidden());
    }
    Ok(Who { user_id })
}

fn basic_user(st: &State, cred: &str) -> Option<i64> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cred)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    st.check_password(user, pass)
}

fn basic_pair(r: &Req) -> Option<(String, String)> {
    let header = r.header("authorization")?;
    let (scheme, cred) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cred.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (a, b) = text.split_once(':')?;
    Some((a.to_string(), b.to_string()))
}

/// Django's CSRF check as DRF's SessionAuthentication applies it.
fn check_csrf(r: &Req, expected: &str, tls: bool) -> Result<(), Resp> {
    let fail = |why: &str| Resp::json(403, json!({"detail": format!("CSRF Failed: {why}")}));
    if tls {
        check_referer(r).map_err(|why| fail(&why))?;
    }
    let Some(cookie) = r.cookie("csrftoken") else {
        return Err(fail("CSRF cookie not set."));
    };
    let Some(header) = r.header("x-csrftoken") else {
        return Err(fail("CSRF token missing."));
    };
    if header != cookie || header != expected {
        return Err(fail(
            "CSRF token from the 'X-Csrftoken' HTTP header incorrect.",
        ));
    }
    Ok(())
}

/// Django's `_check_referer` over HTTPS: present, https, and the same host and port.
fn check_referer(r: &Req) -> Result<(), String> {
    let Some(referer) = r.header("referer") else {
        return Err("Referer checking failed - no Referer.".into());
    };
    let Ok(url) = reqwest::Url::parse(referer) else {
        return Err("Referer checking failed - Referer is malformed.".into());
    };
    if url.scheme() != "https" {
        return Err("Referer checking failed - Referer is insecure while host is secure.".into());
    }
    let origin = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    if r.header("host") != Some(origin.as_str()) {
        return Err(format!(
            "Referer checking failed - '{referer}' does not match any trusted origins."
        ));
    }
    Ok(())
}

const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><title>Log in</title></head><body>\
<form method=\"post\"><input type=\"hidden\" name=\"csrfmiddlewaretoken\" value=\"\">\
<input name=\"username\"><input name=\"password\" type=\"password\">\
<input type=\"hidden\" name=\"next\" value=\"/api/\"></form></body></html>";

const CSRF_FAILED_PAGE: &str = "<!DOCTYPE html><html><body><h1>Forbidden <span>(403)</span></h1>\
<p>CSRF verification failed. Request aborted.</p></body></html>";

fn csrf_cookie(value: &str) -> String {
    format!("csrftoken={value}; Max-Age=31449600; Path=/; SameSite=Lax")
}

/// `/api/login/` (AWX) or `/api/gateway/v1/login/` (gateway).
pub fn login(st: &mut State, r: &Req) -> Resp {
    match r.method.as_str() {
        "GET" => Resp::html(200, LOGIN_PAGE).with("Set-Cookie", csrf_cookie(&random_key(64))),
        "POST" => login_post(st, r),
        m => Resp::method_not_allowed(m),
    }
}

fn login_post(st: &mut State, r: &Req) -> Resp {
    if st.tls {
        if let Err(why) = check_referer(r) {
            return Resp::html(
                403,
                &CSRF_FAILED_PAGE.replace("</p>", &format!("</p><p>{why}</p>")),
            );
        }
    }
    let form = r.form();
    let supplied: Vec<&str> = [field(&form, "csrfmiddlewaretoken"), r.header("x-csrftoken")]
        .into_iter()
        .flatten()
        .collect();
    let csrf_ok = match r.cookie("csrftoken") {
        Some(c) => !supplied.is_empty() && supplied.iter().all(|s| *s == c),
        None => false,
    };
    if !csrf_ok {
        return Resp::html(403, CSRF_FAILED_PAGE);
    }
    let user = st.check_password(
        field(&form, "username").unwrap_or(""),
        field(&form, "password").unwrap_or(""),
    );
    let Some(user_id) = user else {
        return Resp::html(
            401,
            "<!DOCTYPE html><html><body><p>Please enter a correct username and password.</p></body></html>",
        );
    };
    let sid = random_key(32).to_ascii_lowercase();
    let csrf = random_key(64);
    let max_age = st.flavour.session_max_age();
    st.sessions.insert(
        sid.clone(),
        Session {
            user_id,
            csrf: csrf.clone(),
            expires: Utc::now() + Duration::seconds(max_age),
        },
    );
    let next = field(&form, "next")
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or("/api/");
    let name = st.flavour.session_cookie();
    Resp::empty(302)
        .with("Location", next)
        .with("X-API-Session-Cookie-Name", name)
        .with(
            "Set-Cookie",
            format!("{name}={sid}; HttpOnly; Max-Age={max_age}; Path=/; SameSite=Lax"),
        )
        .with("Set-Cookie", "userLoggedIn=true; Path=/")
        .with("Set-Cookie", csrf_cookie(&csrf))
}

fn oauth_error(status: u16, error: &str, description: Option<&str>) -> Resp {
    let mut body = json!({"error": error});
    if let Some(d) = description {
        body["error_description"] = json!(d);
    }
    Resp::json(status, body)
        .with("Cache-Control", "no-store")
        .with("Pragma", "no-cache")
}

/// OAuth2 token endpoint: password and refresh_token grants for a registered application.
pub fn oauth_token(st: &mut State, r: &Req) -> Resp {
    if r.method != "POST" {
        return Resp::method_not_allowed(&r.method);
    }
    let form = r.form();
    let client = basic_pair(r).or_else(|| {
        Some((
            field(&form, "client_id")?.to_string(),
            field(&form, "client_secret")?.to_string(),
        ))
    });
    let client_id = match client {
        Some((id, secret)) if st.apps.get(&id) == Some(&secret) => id,
        _ => return oauth_error(401, "invalid_client", None),
    };
    let (user_id, scope) = match field(&form, "grant_type") {
        Some("password") => {
            let user = st.check_password(
                field(&form, "username").unwrap_or(""),
                field(&form, "password").unwrap_or(""),
            );
            let Some(user_id) = user else {
                return oauth_error(400, "invalid_grant", Some("Invalid credentials given."));
            };
            let scope = field(&form, "scope").unwrap_or("write").trim().to_string();
            let scope = if scope.is_empty() {
                "write".into()
            } else {
                scope
            };
            if !scope.split(' ').all(|s| s == "read" || s == "write") {
                return oauth_error(400, "invalid_scope", None);
            }
            (user_id, scope)
        }
        Some("refresh_token") => {
            let key = field(&form, "refresh_token").unwrap_or("");
            match st.oauth_refresh.get(key) {
                Some(old) if old.client_id == client_id => {
                    // django-oauth-toolkit revokes both the refresh and its access token.
                    let old = st.oauth_refresh.remove(key).unwrap();
                    st.tokens.retain(|_, t| t.key != old.access);
                    (old.user_id, old.scope)
                }
                _ => return oauth_error(400, "invalid_grant", None),
            }
        }
        Some(_) => return oauth_error(400, "unsupported_grant_type", None),
        None => {
            return oauth_error(
                400,
                "invalid_request",
                Some("Request is missing grant type."),
            )
        }
    };
    let access = random_key(30);
    let refresh = random_key(30);
    let expires_in = oauth_expires_in(st.flavour);
    // Every grant creates an access token listed under `tokens/` (application set, no
    // description), which nothing removes but a revoke or a DELETE.
    let id = st.next_token;
    st.next_token += 1;
    let now = Utc::now();
    st.tokens.insert(
        id,
        Token {
            id,
            user_id,
            application: Some(client_id.clone()),
            description: String::new(),
            key: access.clone(),
            scope: scope.clone(),
            created: now,
            expires: now + Duration::seconds(expires_in),
        },
    );
    st.oauth_refresh.insert(
        refresh.clone(),
        OAuthRefresh {
            user_id,
            scope: scope.clone(),
            client_id,
            access: access.clone(),
        },
    );
    Resp::json(
        200,
        json!({"access_token": access, "expires_in": expires_in, "token_type": "Bearer",
               "scope": scope, "refresh_token": refresh}),
    )
    .with("Cache-Control", "no-store")
    .with("Pragma", "no-cache")
}

/// django-oauth-toolkit's RFC 7009 endpoint: form `token` (access or refresh) with the
/// application's client credentials. Unknown tokens are answered 200 too.
pub fn oauth_revoke(st: &mut State, r: &Req) -> Resp {
    if r.method != "POST" {
        return Resp::method_not_allowed(&r.method);
    }
    let form = r.form();
    let client = basic_pair(r).or_else(|| {
        Some((
            field(&form, "client_id")?.to_string(),
            field(&form, "client_secret")?.to_string(),
        ))
    });
    let client_id = match client {
        Some((id, secret)) if st.apps.get(&id) == Some(&secret) => id,
        _ => return oauth_error(401, "invalid_client", None),
    };
    let key = field(&form, "token").unwrap_or("").to_string();
    let owned = |t: &Token| t.key == key && t.application.as_deref() == Some(client_id.as_str());
    st.tokens.retain(|_, t| !owned(t));
    if st
        .oauth_refresh
        .get(&key)
        .is_some_and(|rt| rt.client_id == client_id)
    {
        // Revoking a refresh token revokes its access token too.
        let rt = st.oauth_refresh.remove(&key).unwrap();
        st.tokens.retain(|_, t| t.key != rt.access);
    }
    Resp::empty(200)
}

/// Tower <= 3.2 `POST /api/v2/authtoken/`: a key that expires 1800 s after its last use.
pub fn authtoken(st: &mut State, r: &Req) -> Resp {
    if r.method != "POST" {
        return Resp::method_not_allowed(&r.method);
    }
    let form = r.form();
    let user = st.check_password(
        field(&form, "username").unwrap_or(""),
        field(&form, "password").unwrap_or(""),
    );
    let Some(user_id) = user else {
        return Resp::json(
            400,
            json!({"non_field_errors": ["Unable to login with provided credentials."]}),
        );
    };
    let key = random_key(40).to_ascii_lowercase();
    let expires = Utc::now() + Duration::seconds(AUTHTOKEN_SECS);
    st.authtokens.insert(key.clone(), (user_id, expires));
    Resp::json(200, json!({"token": key, "expires": ts(expires)}))
}
