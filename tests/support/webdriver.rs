//! Just enough of the W3C WebDriver protocol to drive headless Chromium through chromedriver,
//! on 127.0.0.1 and a free port, with every call bounded in time.

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C key under which an element reference comes back.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where a test's screenshot `name` goes: `target/screenshots/` by default, so a test run leaves
/// the committed ones alone; `AAP_BRIDGE_SCREENSHOT_DIR=docs/screenshots` refreshes those.
pub fn shot(name: &str) -> std::path::PathBuf {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("AAP_BRIDGE_SCREENSHOT_DIR") {
        Some(d) => root.join(d),
        None => root.join("target/screenshots"),
    };
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir.join(format!("{name}.png"))
}

/// Where chromedriver is, or None (Debian installs it in /usr/bin).
pub fn chromedriver() -> Option<&'static str> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

pub struct Browser {
    base: String,
    session: String,
    client: reqwest::Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session with a fresh profile.
    pub async fn start(driver: &str) -> Result<Browser, String> {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {driver}: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = client.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            if Instant::now() > deadline {
                return Err("chromedriver did not become ready within 20 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {"pageLoad": 30000, "script": 5000, "implicit": 0}
        }}});
        let v = call(
            &client,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(caps),
        )
        .await?;
        let session = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {v}"))?
            .to_string();
        Ok(Browser {
            base,
            session,
            client,
            _driver: child,
            _profile: profile,
        })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        call(&self.client, method, &url, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/source", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Waits (at most 15 s) until the page's URL ends with `suffix` and its HTML contains
    /// `text`: a click that submits a form returns before the next page has loaded.
    pub async fn wait_for(&self, suffix: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (url, source) = (self.url().await, self.source().await);
            if url.ends_with(suffix) && source.contains(text) {
                return source;
            }
            if Instant::now() > deadline {
                panic!("waited 15 s for `{text}` at …{suffix}; at {url}:\n{source}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn find(&self, css: &str) -> String {
        let body = json!({"using": "css selector", "value": css});
        let v = self
            .cmd(reqwest::Method::POST, "/element", Some(body))
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        let body = json!({ "text": text });
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(body),
        )
        .await;
    }

    /// Resizes the window; headless, the viewport is the window.
    pub async fn set_size(&self, width: u32, height: u32) {
        let body = json!({ "width": width, "height": height });
        self.cmd(reqwest::Method::POST, "/window/rect", Some(body))
            .await;
    }

    /// Runs `js` (a function body: `return …`) in the page. WebDriver runs it through the
    /// DevTools protocol, which the console's CSP (no script) does not govern.
    pub async fn script(&self, js: &str) -> Value {
        let body = json!({ "script": js, "args": [] });
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// The page's layout width and the viewport's, in CSS pixels.
    pub async fn widths(&self) -> (i64, i64) {
        let v = self
            .script(
                "return [Math.max(document.documentElement.scrollWidth, document.body.scrollWidth), \
                 window.innerWidth];",
            )
            .await;
        (v[0].as_i64().unwrap_or(-1), v[1].as_i64().unwrap_or(-1))
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64 PNG"))
            .expect("valid base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    pub async fn quit(self) {
        let _ = call(
            &self.client,
            reqwest::Method::DELETE,
            &format!("{}/session/{}", self.base, self.session),
            None,
        )
        .await;
    }
}

/// One WebDriver call; its `value`, or the error it reported.
async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    match v["value"].get("error") {
        Some(err) => Err(format!("{err}: {}", v["value"]["message"])),
        None => Ok(v["value"].clone()),
    }
}
