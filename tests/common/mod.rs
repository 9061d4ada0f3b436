//! Helpers shared by the CLI integration tests: run the real `trawl` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The repository root (the tests' working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `trawl` with the given arguments, run from the repository root.
pub fn trawl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trawl"))
        .args(args)
        .current_dir(root())
        .env_remove("TRAWL_DATA")
        .env_remove("TRAWL_CONFIG")
        .output()
        .expect("running trawl")
}

/// Run and require success; returns stdout.
pub fn trawl_ok(args: &[&str]) -> String {
    let out = trawl(args);
    assert!(
        out.status.success(),
        "trawl {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A data directory with the samples' snapshot compiled into it.
pub fn sample_snapshot() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8 path");
    trawl_ok(&[
        "-q",
        "update",
        "--config",
        "samples/trawl.toml",
        "--data",
        data,
    ]);
    dir
}

/// Compare `actual` with the golden file `tests/golden/NAME`; `TRAWL_BLESS=1` rewrites it.
pub fn golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("TRAWL_BLESS").is_some() {
        std::fs::write(&path, actual).expect("writing golden file");
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with TRAWL_BLESS=1 to create it)",
            path.display()
        )
    });
    if want != actual {
        let diff: Vec<String> = want
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(3)
            .map(|(i, (a, b))| format!("line {}:\n  want {a}\n  got  {b}", i + 1))
            .collect();
        panic!(
            "{} differs ({} vs {} lines):\n{}\n(re-bless with TRAWL_BLESS=1 after checking)",
            path.display(),
            want.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

pub mod corpus;
pub mod crafted;

/// The corpus directory, or None with a loud note.
pub fn corpus() -> Option<PathBuf> {
    corpus::corpus_dir()
}

/// Parse JSON lines.
pub fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l}: {e}")))
        .collect()
}

/// A path as &str.
pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// `python3 -m http.server` over a directory (a static web server as a CDN would be), killed
/// on drop.
pub struct StaticServer {
    child: Child,
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serve `dir` on 127.0.0.1:`port` (0: a free one), the access log into `log`.
pub fn static_server(dir: &Path, port: u16, log: &Path) -> StaticServer {
    let child = Command::new("python3")
        .args(["-u", "-m", "http.server", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("server log"))
        .spawn()
        .expect("starting python3 -m http.server");
    let mut s = StaticServer {
        child,
        url: String::new(),
    };
    let out = s.child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .expect("server banner");
    // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
    let port = line
        .split_whitespace()
        .skip_while(|w| *w != "port")
        .nth(1)
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    s.url = format!("http://127.0.0.1:{port}/");
    s
}
