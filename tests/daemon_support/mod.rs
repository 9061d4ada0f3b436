//! Helpers of the `trawl run` integration tests: start/stop the real daemon, poll its admin
//! endpoint and its alert files with deadlines.
#![allow(dead_code)]

mod config;
pub use config::{table, DaemonConfig};

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path as &str.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A running `trawl run`; killed when dropped.
pub struct Daemon(pub Child);

impl Daemon {
    /// `trawl run --config CONFIG` with extra environment variables; stderr goes to
    /// `CONFIG.stderr` beside the config (read it with [`Daemon::stderr`]).
    pub fn start_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let log = std::fs::File::create(config.with_extension("stderr")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trawl"));
        cmd.args(["run", "--config", p(config)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env_remove("TRAWL_DATA")
            .env_remove("TRAWL_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Daemon(cmd.spawn().expect("starting trawl run"))
    }

    /// `trawl run --config CONFIG`.
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_env(config, &[])
    }

    /// What the daemon wrote to stderr so far.
    pub fn stderr(config: &Path) -> String {
        std::fs::read_to_string(config.with_extension("stderr")).unwrap_or_default()
    }

    /// The exit status if the daemon has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().unwrap()
    }

    /// SIGTERM, then wait (at most 20 s) for the exit status.
    pub fn term(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(st) = self.0.try_wait().unwrap() {
                std::mem::forget(self);
                return st;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("trawl run did not stop on SIGTERM");
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
        std::mem::forget(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Poll `f` every 50 ms until it holds; panic with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// GET from the admin endpoint; empty while the daemon is not answering.
pub fn http_get(port: u16, path: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let mut out = String::new();
    if write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").is_err()
        || s.read_to_string(&mut out).is_err()
    {
        return String::new();
    }
    out
}

/// The value of the sample `name` (with its labels, e.g. `x_total{feed="a"}`) in /metrics;
/// None when absent or the daemon does not answer.
pub fn metric(port: u16, name: &str) -> Option<u64> {
    let body = http_get(port, "/metrics");
    body.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every JSON line of a file (none if it does not exist).
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Run `trawl` to completion and require success.
pub fn trawl_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .output()
        .expect("running trawl");
    assert!(
        out.status.success(),
        "trawl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}
