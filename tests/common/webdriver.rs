//! A real headless Chromium driven over the WebDriver protocol (chromedriver on a free
//! loopback port, plain HTTP with ureq), shared by the server's web test and the CLI's
//! report test. Chromium and chromedriver are Debian's `chromium` and `chromium-driver`
//! (`make deps`); without them a test using this fails saying so.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C WebDriver key of an element reference.
pub const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver and its browser, in their own process group, killed on drop (panics too).
pub struct Driver {
    child: Child,
    url: String,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            let _ = ureq::delete(&format!("{}/session/{id}", self.url))
                .timeout(Duration::from_secs(10))
                .call();
        }
        // The whole group: chromedriver and any Chromium it left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One WebDriver command: its `value`, or the error it answered.
pub fn try_call(method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
    let r = ureq::request(method, url).timeout(Duration::from_secs(90));
    let r = match body {
        Some(b) => r
            .set("Content-Type", "application/json")
            .send_string(&b.to_string()),
        None => r.call(),
    };
    match r {
        Ok(r) => {
            let text = r.into_string().unwrap_or_default();
            Ok(serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)["value"].take())
        }
        Err(ureq::Error::Status(code, r)) => Err(format!(
            "{code} {}",
            r.into_string()
                .unwrap_or_default()
                .chars()
                .take(400)
                .collect::<String>()
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    try_call(method, url, body).unwrap_or_else(|e| panic!("webdriver {method} {url}: {e}"))
}

impl Driver {
    pub fn start() -> Driver {
        for (p, what) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(p).exists(),
                "{p} is missing: run `make deps` (Debian package {what}) to run the browser test"
            );
        }
        let port = free_port();
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let mut d = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            session: None,
            _profile: profile,
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = ureq::get(&format!("{}/status", d.url))
                .timeout(Duration::from_secs(2))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < until, "chromedriver not ready in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--no-proxy-server",
            format!("--user-data-dir={}", d._profile.path().display()),
        ]);
        let v = call(
            "POST",
            &format!("{}/session", d.url),
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            }}})),
        );
        d.session = Some(
            v["sessionId"]
                .as_str()
                .expect("a WebDriver session")
                .to_string(),
        );
        call(
            "POST",
            &d.at("/timeouts"),
            Some(json!({"implicit": 20_000, "pageLoad": 60_000})),
        );
        d
    }

    pub fn at(&self, rest: &str) -> String {
        format!(
            "{}/session/{}{rest}",
            self.url,
            self.session.as_deref().unwrap_or_default()
        )
    }

    pub fn open(&self, url: &str) {
        call("POST", &self.at("/url"), Some(json!({"url": url})));
    }

    /// The element `css` selects, waiting for it (the session's implicit wait).
    pub fn find(&self, css: &str) -> String {
        let v = try_call(
            "POST",
            &self.at("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        match v.as_ref().ok().and_then(|v| v[ELEMENT].as_str()) {
            Some(e) => e.to_string(),
            None => panic!(
                "no element {css} ({v:?}) on {}:\n{}",
                call("GET", &self.at("/url"), None),
                call("GET", &self.at("/source"), None)
            ),
        }
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        call("GET", &self.at("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn count(&self, css: &str) -> usize {
        call(
            "POST",
            &self.at("/elements"),
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        call(
            "POST",
            &self.at(&format!("/element/{e}/value")),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let e = self.find(css);
        call(
            "POST",
            &self.at(&format!("/element/{e}/click")),
            Some(json!({})),
        );
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.find(css);
        call("GET", &self.at(&format!("/element/{e}/text")), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the page as the browser drew it.
    pub fn screenshot_png_base64(&self) -> String {
        call("GET", &self.at("/screenshot"), None)
            .as_str()
            .expect("a screenshot")
            .to_string()
    }
}
