//! The HTTP side: one axum fallback handler, faults and accounting first, then routing.

use super::auth::{self, Who};
use super::faults::LaunchFault;
use super::http::{only, Req, Resp};
use super::jobs;
use super::model::{Kind, State};
use super::render::ts;
use super::tokens;
use super::Flavour;
use axum::body::Body;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

type Shared = Arc<Mutex<State>>;

/// Binds 127.0.0.1:0 and serves (HTTPS with `tls`) until `stop` fires; returns the port.
pub async fn serve(
    state: Shared,
    stop: CancellationToken,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("fake controller binds");
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().fallback(handle).with_state(state);
    tokio::spawn(async move {
        let _ = match tls {
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
            Some(cfg) => {
                axum::serve(crate::support::tls::TlsListener::new(listener, cfg), app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
            }
        };
    });
    port
}

async fn handle(AxState(state): AxState<Shared>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let r = Req {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query,
        headers: parts.headers,
        body: body.to_vec(),
    };
    let lock = |s: &Shared| s.lock().unwrap_or_else(|e| e.into_inner()).flavour;
    let flavour = lock(&state);
    let is_launch = r.method == "POST" && r.path.ends_with("/launch/");
    let is_lookup = r.method == "GET" && r.path.ends_with("job_templates/");
    let (fault, lookup_delay) = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let fault = if is_launch && !st.down && !st.gateway_down {
            st.faults.take_launch()
        } else {
            None
        };
        (fault, st.faults.lookup_delay)
    };
    if is_lookup && !lookup_delay.is_zero() {
        tokio::time::sleep(lookup_delay).await;
    }
    let act = |state: &Shared, r: &Req| {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        respond(&mut st, r)
    };
    let resp = match fault {
        None => act(&state, &r),
        Some(LaunchFault::AnswerLate(d)) => {
            // In a task of its own: the job is created even after the client hung up.
            let state = state.clone();
            let done = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                act(&state, &r)
            });
            done.await.unwrap_or_else(|_| outage(500))
        }
        Some(LaunchFault::Drop504) => outage(504),
        Some(LaunchFault::ActThen504) => {
            act(&state, &r);
            outage(504)
        }
        Some(LaunchFault::Answer504ThenAct(d)) => {
            let state = state.clone();
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                act(&state, &r);
            });
            outage(504)
        }
    };
    finish(resp, flavour, started)
}

/// Adds the headers every controller response carries.
fn finish(resp: Resp, flavour: Flavour, started: Instant) -> Response {
    let mut out = Response::new(Body::from(resp.body));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let time = format!("{:.3}s", started.elapsed().as_secs_f64());
    let mut headers: Vec<(String, String)> = vec![
        ("X-API-Product-Name".into(), flavour.product_name().into()),
        (
            "X-API-Product-Version".into(),
            flavour.product_version().into(),
        ),
        ("X-API-Node".into(), "fake".into()),
        ("X-API-Time".into(), time),
        ("X-API-Request-Id".into(), request_id),
        (
            "Access-Control-Expose-Headers".into(),
            "X-API-Request-Id".into(),
        ),
        (
            "Vary".into(),
            "Accept, Accept-Language, origin, Cookie".into(),
        ),
    ];
    if let Some(ct) = resp.content_type {
        headers.push(("Content-Type".into(), ct.into()));
    }
    headers.extend(resp.headers);
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            out.headers_mut().append(k, v);
        }
    }
    out
}

fn respond(st: &mut State, r: &Req) -> Resp {
    st.requests.push((r.method.clone(), r.path.clone()));
    if st.down {
        return outage(503);
    }
    if st.gateway_down {
        return Resp::text(
            503,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure".into(),
        );
    }
    if st.fail_next.0 > 0 {
        st.fail_next.0 -= 1;
        return outage(st.fail_next.1);
    }
    let resp = route(st, r);
    match &st.next_origin {
        Some(origin) => absolute_next(resp, origin, &r.path),
        None => resp,
    }
}

/// Every list gets a `next` link on `origin` (its own path on the last page), as a hostile
/// or misconfigured proxy might write it.
fn absolute_next(mut resp: Resp, origin: &str, path: &str) -> Resp {
    if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&resp.body) {
        if v.get("results").is_some() {
            let next = v.get("next").and_then(|n| n.as_str()).unwrap_or(path);
            v["next"] = json!(format!("{origin}{next}"));
            resp.body = serde_json::to_vec(&v).unwrap();
        }
    }
    resp
}

/// What a load balancer in front of the controller says when it cannot reach it.
fn outage(status: u16) -> Resp {
    let reason = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    Resp::html(
        status,
        &format!("<html><head><title>{status} {reason}</title></head><body><center><h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>\n"),
    )
}

/// Routes that need an authenticated user; ids parsed like AWX's `[0-9]+` URL patterns.
enum Route {
    Me,
    Tokens(String, Option<i64>),
    Templates(Kind),
    Template(Kind, i64),
    Launch(Kind, i64),
    Jobs(Option<Kind>),
    Job(Kind, i64),
    Stdout(i64),
    Cancel(Kind, i64),
    SettingsJobs,
    UserTeams(i64),
}

fn route(st: &mut State, r: &Req) -> Resp {
    let f = st.flavour;
    let path = r.path.as_str();
    if path == "/api/" {
        return only(r, &["GET"]).unwrap_or_else(|| api_index(f));
    }
    if path == f.login_path() {
        return auth::login(st, r);
    }
    if path == f.oauth_token_path() {
        return auth::oauth_token(st, r);
    }
    if path == f.oauth_revoke_path() {
        return auth::oauth_revoke(st, r);
    }
    if f == Flavour::Awx && path == "/api/v2/authtoken/" {
        return auth::authtoken(st, r);
    }
    let gateway = match f {
        Flavour::Aap => path.strip_prefix("/api/gateway/v1/"),
        Flavour::Awx => None,
    };
    let (base, rest) = match (gateway, path.strip_prefix(f.api_root())) {
        (Some(rest), _) => ("/api/gateway/v1/", rest),
        (None, Some(rest)) => (f.api_root(), rest),
        _ => return Resp::not_found(),
    };
    if !path.ends_with('/') {
        // Django's APPEND_SLASH redirects safe requests; other methods find nothing.
        return match r.method.as_str() {
            "GET" | "HEAD" => Resp::empty(301).with("Location", format!("{path}/")),
            _ => Resp::not_found(),
        };
    }
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let is_gateway = gateway.is_some();
    match segs.as_slice() {
        [] => {
            return only(r, &["GET"])
                .unwrap_or_else(|| Resp::json(200, json!({"ping": format!("{base}ping/")})))
        }
        ["ping"] => return only(r, &["GET"]).unwrap_or_else(|| ping(f, is_gateway)),
        _ => {}
    }
    let Some(route) = parse_route(&segs, base, is_gateway) else {
        return Resp::not_found();
    };
    // DRF authenticates before it looks at the method.
    let who = match auth::authenticate(st, r) {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    dispatch(st, r, &who, route)
}

fn parse_route(segs: &[&str], base: &str, gateway: bool) -> Option<Route> {
    let id = |s: &str| {
        s.parse::<i64>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
    };
    let tokens = |id: Option<i64>| Route::Tokens(format!("{base}tokens/"), id);
    if gateway {
        return match segs {
            ["me"] => Some(Route::Me),
            ["tokens"] => Some(tokens(None)),
            ["tokens", i] => Some(tokens(Some(id(i)?))),
            _ => None,
        };
    }
    let tkind = |s: &str| match s {
        "job_templates" => Some(Kind::Job),
        "workflow_job_templates" => Some(Kind::Workflow),
        _ => None,
    };
    let jkind = |s: &str| match s {
        "jobs" => Some(Kind::Job),
        "workflow_jobs" => Some(Kind::Workflow),
        _ => None,
    };
    Some(match segs {
        ["me"] => Route::Me,
        ["tokens"] => tokens(None),
        ["tokens", i] => tokens(Some(id(i)?)),
        ["unified_jobs"] => Route::Jobs(None),
        [t] if tkind(t).is_some() => Route::Templates(tkind(t)?),
        [t, i] if tkind(t).is_some() => Route::Template(tkind(t)?, id(i)?),
        [t, i, "launch"] if tkind(t).is_some() => Route::Launch(tkind(t)?, id(i)?),
        [j] if jkind(j).is_some() => Route::Jobs(jkind(j)),
        [j, i] if jkind(j).is_some() => Route::Job(jkind(j)?, id(i)?),
        [j, i, "cancel"] if jkind(j).is_some() => Route::Cancel(jkind(j)?, id(i)?),
        ["jobs", i, "stdout"] => Route::Stdout(id(i)?),
        ["settings", "jobs"] => Route::SettingsJobs,
        ["users", i, "teams"] => Route::UserTeams(id(i)?),
        _ => return None,
    })
}

fn dispatch(st: &mut State, r: &Req, who: &Who, route: Route) -> Resp {
    match route {
        Route::Me => only(r, &["GET"]).unwrap_or_else(|| me(st, who)),
        Route::Tokens(base, id) => tokens::handle(st, r, who, &base, id),
        Route::Templates(k) => only(r, &["GET"]).unwrap_or_else(|| jobs::list_templates(st, r, k)),
        Route::Template(k, id) => {
            only(r, &["GET"]).unwrap_or_else(|| jobs::get_template(st, k, id))
        }
        Route::Launch(k, id) => {
            only(r, &["GET", "POST"]).unwrap_or_else(|| jobs::launch(st, r, who, k, id))
        }
        Route::Jobs(k) => only(r, &["GET"]).unwrap_or_else(|| jobs::list_jobs(st, r, k)),
        Route::Job(k, id) => only(r, &["GET"]).unwrap_or_else(|| jobs::get_job(st, k, id)),
        Route::Stdout(id) => only(r, &["GET"]).unwrap_or_else(|| jobs::stdout(st, r, id)),
        Route::Cancel(k, id) => {
            only(r, &["GET", "POST"]).unwrap_or_else(|| jobs::cancel(st, r, k, id))
        }
        Route::SettingsJobs => only(r, &["GET"]).unwrap_or_else(|| settings_jobs(st)),
        Route::UserTeams(id) => only(r, &["GET"]).unwrap_or_else(|| user_teams(st, who, id)),
    }
}

/// A few of AWX 24.6's job settings.
fn settings_jobs(st: &State) -> Resp {
    match &st.allow_jinja {
        Ok(v) => Resp::json(
            200,
            json!({"ALLOW_JINJA_IN_EXTRA_VARS": v, "AWX_ISOLATION_BASE_PATH": "/tmp",
                   "DEFAULT_JOB_TIMEOUT": 0, "AWX_TASK_ENV": {}}),
        ),
        Err(403) => Resp::json(
            403,
            json!({"detail": "You do not have permission to perform this action."}),
        ),
        Err(_) => Resp::not_found(),
    }
}

fn me(st: &State, who: &Who) -> Resp {
    let superuser = st.users.iter().any(|u| u.id == who.user_id && u.superuser);
    let user = json!({"id": who.user_id, "type": "user", "username": st.username(who.user_id),
                      "first_name": "", "last_name": "", "email": "", "is_superuser": superuser,
                      "is_system_auditor": false});
    Resp::json(
        200,
        json!({"count": 1, "next": null, "previous": null, "results": [user]}),
    )
}

/// AWX lets a user list their own teams; another user's needs more than we model: 403.
fn user_teams(st: &State, who: &Who, id: i64) -> Resp {
    let Some(u) = st.users.iter().find(|u| u.id == id) else {
        return Resp::not_found();
    };
    if id != who.user_id {
        return Resp::json(
            403,
            json!({"detail": "You do not have permission to perform this action."}),
        );
    }
    let results: Vec<_> = u
        .teams
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": i + 1, "type": "team", "name": t, "organization": 1}))
        .collect();
    Resp::json(
        200,
        json!({"count": results.len(), "next": null, "previous": null, "results": results}),
    )
}

fn ping(f: Flavour, gateway: bool) -> Resp {
    let v = if gateway {
        json!({"version": f.product_version(), "pong": ts(chrono::Utc::now()),
               "status": "good", "db_connected": true, "proxy_connected": true})
    } else {
        json!({"ha": false, "version": f.product_version(), "active_node": "fake",
               "install_uuid": "00000000-0000-4000-8000-000000000000",
               "instances": [], "instance_groups": []})
    };
    Resp::json(200, v)
}

/// `/api/`: where a successful login redirects to.
fn api_index(f: Flavour) -> Resp {
    match f {
        Flavour::Awx => Resp::json(
            200,
            json!({"description": "AWX REST API", "current_version": "/api/v2/",
                   "available_versions": {"v2": "/api/v2/"}, "oauth2": "/api/o/",
                   "custom_logo": "", "custom_login_info": "", "login_redirect_override": ""}),
        ),
        Flavour::Aap => Resp::json(
            200,
            json!({"apis": {"gateway": "/api/gateway/", "controller": "/api/controller/"}}),
        ),
    }
}
