//! A browser stand-in for the console: no redirects followed, the session cookie kept by hand,
//! the CSRF token read from the pages.

use super::ADMIN_TOKEN;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::time::Duration;

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub csp: Option<String>,
    pub body: String,
}

impl Page {
    /// The hidden CSRF field's value in this page.
    pub fn csrf(&self) -> String {
        self.hidden("csrf")
    }

    /// The value of the first hidden field `name` in this page.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_string()
    }

    #[track_caller]
    pub fn assert_has(&self, text: &str) {
        assert!(
            self.body.contains(text),
            "expected `{text}` in the page (status {}):\n{}",
            self.status,
            self.body
        );
    }
}

pub struct Console {
    pub base: String,
    client: reqwest::Client,
    pub cookie: Option<String>,
}

impl Console {
    pub fn new(base: &str) -> Self {
        Console {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    /// A console logged in with the pipeline's admin token.
    pub async fn logged_in(base: &str) -> Self {
        let mut c = Console::new(base);
        let page = c.login(ADMIN_TOKEN).await;
        assert_eq!(page.status, 303, "{}", page.body);
        c
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header(COOKIE, c),
            None => req,
        };
        let resp = req.send().await.expect("request completes");
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, set_cookie) = (header(LOCATION), header(SET_COOKIE));
        let csp = header(reqwest::header::CONTENT_SECURITY_POLICY);
        Page {
            status: resp.status().as_u16(),
            location,
            set_cookie,
            csp,
            body: resp.text().await.unwrap_or_default(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.client.post(format!("{}{path}", self.base)).form(form))
            .await
    }

    /// Logs in; on success keeps the session cookie (`name=value` only).
    pub async fn login(&mut self, token: &str) -> Page {
        self.login_form(&[("token", token)]).await
    }

    /// Logs in with these form fields (`username` and `password`, or `token`).
    pub async fn login_form(&mut self, form: &[(&str, &str)]) -> Page {
        let page = self.post("/ui/login", form).await;
        if let Some(set) = &page.set_cookie {
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        page
    }

    /// Posts a form with the CSRF token of the page at `from`.
    pub async fn submit(&self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.get(from).await.csrf();
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post(action, &form).await
    }
}
