//! Checks that the fake controller behaves like the captured AWX / AAP responses.

#[path = "support/mod.rs"]
mod support;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};
use std::time::Duration;
use support::fake_controller::{FakeController, Flavour, TemplateSpec};

struct Fixture {
    fc: FakeController,
    c: Client,
}

impl Fixture {
    async fn start(flavour: Flavour) -> Fixture {
        let c = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Fixture {
            fc: FakeController::start(flavour).await,
            c,
        }
    }

    /// An unauthenticated request to `path` on the fake.
    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.c.request(method, format!("{}{path}", self.fc.url()))
    }

    /// The same, as the default service user with Basic auth.
    fn svc(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).basic_auth("svc", Some("svc-pass"))
    }
}

async fn send(rb: RequestBuilder) -> (u16, Value) {
    body(rb.send().await.unwrap()).await
}

async fn body(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// The value of cookie `name` among the response's Set-Cookie headers.
fn set_cookie(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[tokio::test]
async fn token_create_use_delete() {
    let f = Fixture::start(Flavour::Awx).await;
    let create = json!({"description": "bridge", "application": null, "scope": "write"});
    let resp = f
        .svc(Method::POST, "/api/v2/tokens/")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-api-product-name"], "AWX");
    assert_eq!(resp.headers()["x-api-product-version"], "24.6.2");
    assert!(resp.headers().contains_key("x-api-request-id"));
    assert_eq!(resp.headers()["location"], "/api/v2/tokens/1/");
    let (status, tok) = body(resp).await;
    assert_eq!(status, 201);
    let key = tok["token"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 30);
    assert_eq!(tok["refresh_token"], Value::Null);
    assert!(
        tok["expires"].as_str().unwrap().starts_with("30"),
        "~1000 years ahead"
    );
    assert_eq!(f.fc.tokens(), vec![(1, "svc".into(), "bridge".into())]);

    let bad = json!({"description": "x", "scope": "admin"});
    let (status, err) = send(f.svc(Method::POST, "/api/v2/tokens/").json(&bad)).await;
    assert_eq!(status, 400);
    assert!(err["scope"][0]
        .as_str()
        .unwrap()
        .contains("['read', 'write']"));

    let (status, list) = send(f.req(Method::GET, "/api/v2/tokens/").bearer_auth(&key)).await;
    assert_eq!((status, list["count"].clone()), (200, json!(1)));
    assert_eq!(list["results"][0]["token"], "************");
    let (status, me) = send(f.req(Method::GET, "/api/v2/me/").bearer_auth(&key)).await;
    assert_eq!(
        (status, me["results"][0]["username"].clone()),
        (200, json!("svc"))
    );

    let del = f.req(Method::DELETE, "/api/v2/tokens/1/").bearer_auth(&key);
    assert_eq!(del.send().await.unwrap().status(), 204);
    let resp = f
        .req(Method::GET, "/api/v2/me/")
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=api authorization_url=/api/o/authorize/"
    );
    let (status, err) = body(resp).await;
    assert_eq!(status, 401);
    assert!(err["detail"]
        .as_str()
        .unwrap()
        .starts_with("Authentication credentials"));
    let (status, _) = send(f.svc(Method::DELETE, "/api/v2/tokens/1/")).await;
    assert_eq!(status, 404);
    assert_eq!(f.fc.tokens_created(), 1);
    assert!(f.fc.tokens().is_empty());
    // The same 401 for a wrong password.
    let wrong = f
        .req(Method::GET, "/api/v2/me/")
        .basic_auth("svc", Some("nope"));
    assert_eq!(send(wrong).await.0, 401);
}

#[tokio::test]
async fn session_login_needs_csrf() {
    let f = Fixture::start(Flavour::Awx).await;
    let tpl = f.fc.add_job_template(TemplateSpec::default());
    let page = f.req(Method::GET, "/api/login/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csrf = set_cookie(&page, "csrftoken").expect("csrftoken cookie");
    let form = [
        ("username", "svc"),
        ("password", "svc-pass"),
        ("next", "/api/"),
        ("csrfmiddlewaretoken", csrf.as_str()),
    ];
    let login = |form: &[(&str, &str)]| {
        f.req(Method::POST, "/api/login/")
            .header("Cookie", format!("csrftoken={csrf}"))
            .header("X-CSRFToken", &csrf)
            .form(form)
    };

    let no_csrf = f
        .req(Method::POST, "/api/login/")
        .form(&form[..3])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    assert!(no_csrf
        .text()
        .await
        .unwrap()
        .contains("CSRF verification failed"));
    let bad_pw = [form[0], ("password", "wrong"), form[2], form[3]];
    assert_eq!(login(&bad_pw).send().await.unwrap().status(), 401);

    let resp = login(&form).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], "/api/");
    assert_eq!(resp.headers()["x-api-session-cookie-name"], "awx_sessionid");
    let sid = set_cookie(&resp, "awx_sessionid").unwrap();
    let new_csrf = set_cookie(&resp, "csrftoken").unwrap();
    assert_ne!(new_csrf, csrf, "csrftoken rotates at login");

    let path = format!("/api/v2/job_templates/{tpl}/launch/");
    let cookies = format!("awx_sessionid={sid}; csrftoken={new_csrf}");
    let me = f.req(Method::GET, "/api/v2/me/").header("Cookie", &cookies);
    assert_eq!(send(me).await.0, 200, "safe methods need no CSRF");
    let launch = || f.req(Method::POST, &path).header("Cookie", &cookies);
    let (status, err) = send(launch().json(&json!({}))).await;
    let missing = json!({"detail": "CSRF Failed: CSRF token missing."});
    assert_eq!((status, err), (403, missing));
    let stale = f
        .req(Method::POST, &path)
        .header("Cookie", format!("awx_sessionid={sid}; csrftoken={csrf}"))
        .header("X-CSRFToken", &csrf);
    assert_eq!(
        send(stale).await.0,
        403,
        "the pre-login csrftoken no longer works"
    );
    assert_eq!(send(launch().header("X-CSRFToken", &new_csrf)).await.0, 201);

    f.fc.expire_sessions();
    assert_eq!(send(launch().header("X-CSRFToken", &new_csrf)).await.0, 401);
    assert_eq!(f.fc.jobs_launched(), 1);
}

#[tokio::test]
async fn launch_reports_ignored_fields_and_refusals() {
    let f = Fixture::start(Flavour::Awx).await;
    let tpl = f.fc.add_job_template(TemplateSpec {
        id: Some(9),
        name: "RustJT".into(),
        organization: "RustOrg".into(),
        ask_variables_on_launch: false,
        variables_needed: vec!["foo".into()],
        outcome: "failed".into(),
        ..TemplateSpec::default()
    });
    assert_eq!(tpl, 9);
    let launch = "/api/v2/job_templates/9/launch/";
    let (status, info) = send(f.svc(Method::GET, launch)).await;
    assert_eq!(status, 200);
    assert_eq!(info["variables_needed_to_start"], json!(["foo"]));
    assert_eq!(info["survey_enabled"], true);

    let (status, err) = send(
        f.svc(Method::POST, launch)
            .json(&json!({"extra_vars": {"bar": 1}})),
    )
    .await;
    let missing = json!({"variables_needed_to_start": ["'foo' value missing"]});
    assert_eq!((status, err), (400, missing));

    let vars = json!({"extra_vars": "{\"foo\": \"x\", \"bar\": 2}", "limit": "web01"});
    let resp = f
        .svc(Method::POST, launch)
        .json(&vars)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/api/v2/jobs/1/");
    let (status, job) = body(resp).await;
    assert_eq!(status, 201);
    assert_eq!(
        (job["job"].clone(), job["status"].clone()),
        (json!(1), json!("pending"))
    );
    assert_eq!(
        job["extra_vars"], "{\"foo\": \"x\"}",
        "stored like Python's json.dumps"
    );
    let ignored = json!({"extra_vars": {"bar": 2}, "limit": "web01"});
    assert_eq!(job["ignored_fields"], ignored);
    assert_eq!(job["summary_fields"]["organization"]["name"], "RustOrg");
    let created = job["created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 27, "{created}");

    let now = f.fc.job(1).unwrap();
    assert_eq!(
        (now["status"].clone(), now["failed"].clone()),
        (json!("failed"), json!(true))
    );
    // As on AWX 24.6.1: `failed` first, the output saved a moment later.
    assert_eq!(now["event_processing_finished"], false);
    let stdout = || async {
        let out = f
            .svc(Method::GET, "/api/v2/jobs/1/stdout/?format=txt")
            .send()
            .await
            .unwrap();
        out.text().await.unwrap()
    };
    let early = stdout().await;
    assert_eq!(early.lines().count(), 3, "{early}");
    assert!(!early.contains("FAILED"));
    let (_, listed) = send(f.svc(Method::GET, "/api/v2/unified_jobs/?id=1")).await;
    assert!(listed["results"][0]
        .get("event_processing_finished")
        .is_none());
    f.fc.set_event_processing_delay(Some(Duration::ZERO));
    assert_eq!(f.fc.job(1).unwrap()["event_processing_finished"], true);
    let text = stdout().await;
    assert!(text
        .trim_end()
        .ends_with("fatal: [web01]: FAILED! => {\"msg\": \"fake failure\"}"));
    let missing = f
        .svc(Method::GET, "/api/v2/jobs/77/stdout/?format=txt")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        missing.text().await.unwrap(),
        "{'detail': ErrorDetail(string='No Job matches the given query.', code='not_found')}"
    );

    f.fc.add_user("viewer", "viewer-pass", false);
    let viewer = f
        .req(Method::POST, launch)
        .basic_auth("viewer", Some("viewer-pass"));
    assert_eq!(
        send(viewer.json(&json!({"extra_vars": {"foo": 1}})))
            .await
            .0,
        403
    );
    let no_inv = TemplateSpec {
        missing_inventory: true,
        ..TemplateSpec::default()
    };
    let no_inv = f.fc.add_job_template(no_inv);
    let path = format!("/api/v2/job_templates/{no_inv}/launch/");
    let (status, err) = send(f.svc(Method::POST, &path)).await;
    assert_eq!(status, 400);
    assert!(err["resources_needed_to_start"].is_array());

    assert_eq!(f.fc.jobs_launched(), 1);
    let sent = f.fc.launches();
    assert_eq!(sent.len(), 4, "refused launches are recorded too");
    assert_eq!(
        (sent[1]["template_id"].clone(), sent[1]["limit"].clone()),
        (json!(9), json!("web01"))
    );

    let cancel = "/api/v2/jobs/1/cancel/";
    assert_eq!(send(f.svc(Method::POST, cancel)).await.0, 202);
    assert_eq!(send(f.svc(Method::POST, cancel)).await.0, 405);
    assert_eq!(f.fc.job(1).unwrap()["status"], "canceled");
}

#[tokio::test]
async fn unified_jobs_page_size_is_capped_at_200() {
    let f = Fixture::start(Flavour::Awx).await;
    let tpl = f.fc.add_job_template(TemplateSpec::default());
    let wf = TemplateSpec {
        name: "wf".into(),
        ..TemplateSpec::default()
    };
    let wf = f.fc.add_workflow_template(wf);
    let mut ids = Vec::new();
    for n in 0..450 {
        let (path, key) = match n % 3 {
            0 => (
                format!("/api/v2/workflow_job_templates/{wf}/launch/"),
                "workflow_job",
            ),
            _ => (format!("/api/v2/job_templates/{tpl}/launch/"), "job"),
        };
        let (status, v) = send(
            f.svc(Method::POST, &path)
                .json(&json!({"extra_vars": {"n": n}})),
        )
        .await;
        assert_eq!(status, 201, "{v}");
        ids.push(v[key].as_i64().unwrap().to_string());
    }
    assert_eq!(f.fc.jobs_launched(), 450);
    let first = format!(
        "/api/v2/unified_jobs/?id__in={}&page_size=1000",
        ids.join(",")
    );
    let (mut next, mut sizes, mut workflows) = (Some(first), Vec::new(), 0);
    while let Some(path) = next {
        let (status, page) = send(f.svc(Method::GET, &path)).await;
        assert_eq!((status, page["count"].clone()), (200, json!(450)), "{page}");
        let results = page["results"].as_array().unwrap();
        sizes.push(results.len());
        workflows += results
            .iter()
            .filter(|r| r["type"] == "workflow_job")
            .count();
        next = page["next"].as_str().map(str::to_string);
        if let Some(n) = &next {
            assert!(n.starts_with("/api/v2/unified_jobs/?id__in="), "{n}");
        }
    }
    assert_eq!(sizes, vec![200, 200, 50]);
    assert_eq!(workflows, 150);
    assert_eq!(f.fc.requests("GET", "/api/v2/unified_jobs/"), 3);
}

#[tokio::test]
async fn job_lists_refuse_extra_vars_filters() {
    let f = Fixture::start(Flavour::Awx).await;
    let tpl = f.fc.add_job_template(TemplateSpec::default()).to_string();
    let before = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let launch = format!("/api/v2/job_templates/{tpl}/launch/");
    for corr in ["a1", "b2"] {
        let rb = f
            .svc(Method::POST, &launch)
            .json(&json!({"extra_vars": {"corr": corr}}));
        assert_eq!(send(rb).await.0, 201);
    }
    let filter = [
        ("job_template", tpl.as_str()),
        ("extra_vars__contains", "a1"),
    ];
    let (status, err) = send(f.svc(Method::GET, "/api/v2/jobs/").query(&filter)).await;
    let denied = json!({"detail": "You do not have permission to perform this action."});
    assert_eq!((status, err), (403, denied));

    let since = [
        ("job_template", tpl.as_str()),
        ("created__gte", &before),
        ("page_size", "50"),
    ];
    let (status, list) = send(f.svc(Method::GET, "/api/v2/jobs/").query(&since)).await;
    assert_eq!((status, list["count"].clone()), (200, json!(2)), "{list}");
    assert_eq!(list["results"][0]["extra_vars"], "{\"corr\": \"a1\"}");
    assert_eq!(list["results"][1]["status"], "successful");
}

#[tokio::test]
async fn oauth_authtoken_and_faults() {
    let f = Fixture::start(Flavour::Awx).await;
    let grant = |form: &[(&str, &str)]| {
        f.req(Method::POST, "/api/o/token/")
            .basic_auth("bridge-app", Some("bridge-app-secret"))
            .form(form)
    };
    let me = |bearer: &str| f.req(Method::GET, "/api/v2/me/").bearer_auth(bearer);
    let pw = [
        ("grant_type", "password"),
        ("username", "svc"),
        ("password", "svc-pass"),
        ("scope", "write"),
    ];
    let (status, tok) = send(grant(&pw)).await;
    // ~1000 years, like AWX's default; listed under tokens/ with the application set.
    assert_eq!(
        (status, tok["expires_in"].clone()),
        (200, json!(31_536_000_000i64))
    );
    let (_, listed) = send(f.svc(Method::GET, "/api/v2/tokens/")).await;
    assert_eq!(listed["count"], 1);
    assert_eq!(
        (
            listed["results"][0]["application"].clone(),
            listed["results"][0]["description"].clone()
        ),
        (json!(1), json!(""))
    );
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(send(me(access)).await.0, 200);

    f.fc.expire_oauth_access_tokens();
    assert_eq!(send(me(access)).await.0, 401);
    let refresh_token = tok["refresh_token"].as_str().unwrap();
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let (status, tok2) = send(grant(&refresh)).await;
    assert_eq!(status, 200);
    assert_eq!(
        send(me(tok2["access_token"].as_str().unwrap())).await.0,
        200
    );
    let (status, err) = send(grant(&refresh)).await;
    assert_eq!(
        (status, err["error"].clone()),
        (400, json!("invalid_grant")),
        "refresh tokens are single use"
    );

    // RFC 7009 revocation with the client's credentials: the token stops working.
    let access2 = tok2["access_token"].as_str().unwrap();
    let revoke = |client_secret: &str| {
        f.req(Method::POST, "/api/o/revoke_token/")
            .basic_auth("bridge-app", Some(client_secret))
            .form(&[("token", access2)])
    };
    assert_eq!(send(revoke("nope")).await.0, 401);
    assert_eq!(send(me(access2)).await.0, 200);
    assert_eq!(send(revoke("bridge-app-secret")).await.0, 200);
    assert_eq!(send(me(access2)).await.0, 401);
    assert!(f.fc.oauth_tokens().is_empty());
    assert_eq!(
        send(revoke("bridge-app-secret")).await.0,
        200,
        "unknown tokens too"
    );
    let bad = [pw[0], pw[1], ("password", "wrong")];
    let invalid =
        json!({"error": "invalid_grant", "error_description": "Invalid credentials given."});
    assert_eq!(send(grant(&bad)).await, (400, invalid));
    let bad_client = f
        .req(Method::POST, "/api/o/token/")
        .basic_auth("bridge-app", Some("nope"));
    assert_eq!(send(bad_client.form(&pw)).await.0, 401);

    let creds = json!({"username": "svc", "password": "svc-pass"});
    let (status, at) = send(f.req(Method::POST, "/api/v2/authtoken/").json(&creds)).await;
    assert_eq!(status, 200);
    let key = at["token"].as_str().unwrap();
    let old_style = f
        .req(Method::GET, "/api/v2/me/")
        .header("Authorization", format!("Token {key}"));
    assert_eq!(send(old_style).await.0, 200);

    f.fc.fail_next(2, 502);
    let ping = || f.req(Method::GET, "/api/v2/ping/");
    assert_eq!(send(ping()).await.0, 502);
    assert_eq!(send(ping()).await.0, 502);
    assert_eq!(send(ping()).await.0, 200);
    f.fc.set_down(true);
    assert_eq!(send(ping()).await.0, 503);
    f.fc.set_down(false);
    assert_eq!(f.fc.requests("get", "/api/v2/ping/"), 4);
    f.fc.reset_requests();
    assert_eq!(f.fc.requests("", "/"), 0);

    f.fc.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fresh = Client::new().get(format!("{}/api/v2/ping/", f.fc.url()));
    assert!(
        fresh.send().await.is_err(),
        "a stopped fake refuses connections"
    );
}

#[tokio::test]
async fn aap_paths_and_job_lifecycle() {
    let f = Fixture::start(Flavour::Aap).await;
    assert_eq!(f.fc.api_root(), "/api/controller/v2/");
    let resp = f
        .req(Method::GET, "/api/gateway/v1/ping/")
        .send()
        .await
        .unwrap();
    let product = resp.headers()["x-api-product-name"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(product, "Red Hat Ansible Automation Platform");
    let (status, ping) = body(resp).await;
    assert_eq!(
        (status, ping["version"].clone()),
        (200, json!("2.5.20260101"))
    );
    assert_eq!(
        send(f.req(Method::GET, "/api/controller/v2/ping/")).await.0,
        200
    );
    assert_eq!(send(f.svc(Method::GET, "/api/v2/ping/")).await.0, 404);
    assert_eq!(
        send(f.svc(Method::GET, "/api/controller/v2/nothing/"))
            .await
            .0,
        404
    );

    let create = json!({"description": "gw", "application": null, "scope": "write"});
    let resp = f
        .svc(Method::POST, "/api/gateway/v1/tokens/")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["location"], "/api/gateway/v1/tokens/1/");
    let (status, tok) = body(resp).await;
    assert_eq!(status, 201);
    assert!(
        tok["expires"].as_str().unwrap() < "2300",
        "AAP tokens last a year"
    );

    let pw = [
        ("grant_type", "password"),
        ("username", "svc"),
        ("password", "svc-pass"),
        ("scope", "write"),
    ];
    let grant = f
        .req(Method::POST, "/o/token/")
        .basic_auth("bridge-app", Some("bridge-app-secret"));
    let (status, tok) = send(grant.form(&pw)).await;
    assert_eq!(status, 200, "{tok}");

    let slow = TemplateSpec {
        name: "slow".into(),
        ..TemplateSpec::default()
    };
    let tpl = f.fc.add_job_template(slow);
    let query = "/api/controller/v2/job_templates/?name=slow&organization__name=Default";
    let (status, list) = send(f.svc(Method::GET, query)).await;
    assert_eq!(
        (status, list["results"][0]["id"].clone()),
        (200, json!(tpl))
    );
    f.fc.set_job_duration(Duration::from_millis(1200));
    let path = format!("/api/controller/v2/job_templates/{tpl}/launch/");
    let bearer = tok["access_token"].as_str().unwrap();
    let (status, job) = send(f.req(Method::POST, &path).bearer_auth(bearer)).await;
    assert_eq!(status, 201);
    let id = job["id"].as_i64().unwrap();
    assert_eq!(f.fc.job(id).unwrap()["status"], "pending");
    tokio::time::sleep(Duration::from_millis(900)).await;
    let running = f.fc.job(id).unwrap();
    assert_eq!(running["status"], "running");
    assert!(running["started"].is_string() && running["finished"].is_null());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, done) = send(f.svc(Method::GET, &format!("/api/controller/v2/jobs/{id}/"))).await;
    assert_eq!(
        (done["status"].clone(), done["failed"].clone()),
        (json!("successful"), json!(false))
    );
    f.fc.set_job_status(id, "error");
    assert_eq!(f.fc.job(id).unwrap()["status"], "error");
}
