//! A small W3C WebDriver client (JSON over HTTP) for chromedriver: what the browser test
//! needs and nothing more.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver running on a loopback port, stopped on drop.
pub struct Driver {
    child: Child,
    pub base: String,
}

impl Driver {
    pub async fn start() -> Self {
        let port = jukebox_test_support::free_port();
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary} does not start ({e}): run scripts/install-deps.sh")
            });
        let driver = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(response) = http.get(format!("{}/status", driver.base)).send().await {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return driver;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

pub type Element = String;

impl Browser {
    /// Headless Chromium with a fixed window size.
    pub async fn open(driver: &Driver, width: u32, height: u32) -> Self {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| {
            [
                "/usr/bin/chromium",
                "/usr/bin/chromium-browser",
                "/usr/bin/google-chrome",
            ]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("chromium")
            .to_owned()
        });
        let http = reqwest::Client::new();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--mute-audio",
                    "--autoplay-policy=no-user-gesture-required",
                    "--no-proxy-server",
                    format!("--window-size={width},{height}"),
                ],
            },
            "unhandledPromptBehavior": "ignore",
            // The console, for `console()`.
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let response: Value = http
            .post(format!("{}/session", driver.base))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {response}"))
            .to_owned();
        Self {
            http,
            session: format!("{}/session/{session}", driver.base),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = response["value"]["error"].as_str() {
            panic!(
                "webdriver {path}: {error}: {}",
                response["value"]["message"]
            );
        }
        response["value"].clone()
    }

    async fn try_call(&self, path: &str, body: Value) -> Result<Value, String> {
        let response: Value = self
            .http
            .post(format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match response["value"]["error"].as_str() {
            Some(error) => Err(format!("{error}: {}", response["value"]["message"])),
            None => Ok(response["value"].clone()),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Reloads the page (a `goto` to the same URL with a fragment would not).
    pub async fn reload(&self) {
        self.call(reqwest::Method::POST, "/refresh", Some(json!({})))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    pub async fn exec(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until `script` returns something truthy, and returns it.
    pub async fn wait_for(&self, what: &str, script: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        let mut last;
        loop {
            match self
                .try_call("/execute/sync", json!({ "script": script, "args": [] }))
                .await
            {
                Ok(value)
                    if !(value.is_null()
                        || value == false
                        || value == ""
                        || value == 0
                        || value.as_array().is_some_and(|a| a.is_empty())) =>
                {
                    return value
                }
                Ok(value) => last = value.to_string(),
                Err(error) => last = error,
            }
            if start.elapsed() > timeout {
                let page = self.exec("return document.body.innerText;", vec![]).await;
                panic!(
                    "timed out waiting for {what} (last: {last})\npage text:\n{}",
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a visible element that matches `css`.
    pub async fn find(&self, css: &str) -> Element {
        let script = "const e = document.querySelector(arguments[0]); \
                      return e && e.getClientRects().length ? e : null;";
        let start = Instant::now();
        loop {
            let last = match self
                .try_call("/execute/sync", json!({ "script": script, "args": [css] }))
                .await
            {
                Ok(value) => match value[ELEMENT].as_str() {
                    Some(id) => return id.to_owned(),
                    None => value.to_string(),
                },
                Err(error) => error,
            };
            if start.elapsed() > Duration::from_secs(15) {
                panic!("no visible element {css} (last: {last})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matching `css`, found afresh if the page redrew it meanwhile.
    pub async fn click(&self, css: &str) {
        for _ in 0..20 {
            let element = self.find(css).await;
            // To the middle of the window, as a person scrolls, clear of the fixed player
            // bar (chromedriver scrolls only until the element's edge shows).
            let scrolled = self
                .try_call(
                    "/execute/sync",
                    json!({
                        "script": "arguments[0].scrollIntoView({ block: 'center' });",
                        "args": [{ ELEMENT: element }],
                    }),
                )
                .await;
            let clicked = match scrolled {
                Ok(_) => {
                    self.try_call(&format!("/element/{element}/click"), json!({}))
                        .await
                }
                Err(error) => Err(error),
            };
            match clicked {
                Ok(_) => return,
                Err(error) if error.starts_with("stale element") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("webdriver click {css}: {error}"),
            }
        }
        panic!("{css} kept being replaced before it could be clicked");
    }

    /// Clears an input and types `text` into it, as a person would.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Sends keys to the focused element (WebDriver key codes such as `\u{E014}`).
    pub async fn keys(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Presses and releases one key where the focus is, as a person at the keyboard does
    /// (WebDriver key codes: `\u{E004}` Tab, `\u{E007}` Enter).
    pub async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
        ]}]});
        self.call(reqwest::Method::POST, "/actions", Some(actions))
            .await;
    }

    /// Holds `modifier` (`\u{E00A}` Alt) while pressing `key` (`\u{E013}` ArrowUp,
    /// `\u{E015}` ArrowDown) where the focus is.
    pub async fn chord(&self, modifier: &str, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": modifier},
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
            {"type": "keyUp", "value": modifier},
        ]}]});
        self.call(reqwest::Method::POST, "/actions", Some(actions))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.exec(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            vec![json!(css)],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Accepts a `confirm()` dialog once it is open.
    pub async fn accept_dialog(&self) {
        for _ in 0..50 {
            if self.try_call("/alert/accept", json!({})).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no dialog to accept");
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// The console's entries since the last call, as (level, message): chromedriver's
    /// log endpoint (JavaScript errors, failed loads, `console.*`).
    pub async fn console(&self) -> Vec<(String, String)> {
        let entries = self
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        entries
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value of the cookie `name` for `host`, whatever its path (HttpOnly ones too):
    /// WebDriver's own cookie list holds only those of the page's path, so this asks
    /// Chromium through chromedriver's DevTools passthrough.
    pub async fn cookie(&self, host: &str, name: &str) -> Option<String> {
        let all = self
            .call(
                reqwest::Method::POST,
                "/goog/cdp/execute",
                Some(json!({ "cmd": "Network.getAllCookies", "params": {} })),
            )
            .await;
        all["cookies"].as_array()?.iter().find_map(|c| {
            (c["name"] == name && c["domain"] == host)
                .then(|| c["value"].as_str().unwrap_or_default().to_owned())
        })
    }

    /// Ends the session (closes the browser).
    pub async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}
