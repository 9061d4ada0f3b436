//! The transport as `trawl serve` runs it: slow clients (a request head sent byte by byte,
//! a body that never finishes) are cut off while other clients are served, and TLS from a
//! certificate made here with `openssl req`: HTTP/1.1 and HTTP/2 (ALPN) through `curl`, and
//! plain HTTP to the TLS port refused without harm.

use crate::harness::{get, Server};
use matcher::Tlp;
use server::config::ServerConfig;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../../../tests/common/certs.rs"]
mod certs;

fn secs(s: u64) -> Option<feeds::config::DurationSpec> {
    Some(feeds::config::DurationSpec(Duration::from_secs(s)))
}

fn addr(url: &str) -> String {
    url.split("://").nth(1).unwrap().to_string()
}

/// Send `bytes` one at a time, `gap` apart, until the server closes the connection; how
/// long that took, or `None` when every byte went out and the server still held on.
fn dribble(addr: &str, bytes: &[u8], gap: Duration) -> (Option<Duration>, Vec<u8>) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    for b in bytes {
        if c.write_all(&[*b]).is_err() {
            return (Some(started.elapsed()), got);
        }
        std::thread::sleep(gap);
        let mut buf = [0u8; 4096];
        match c.read(&mut buf) {
            Ok(0) => return (Some(started.elapsed()), got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (Some(started.elapsed()), got),
        }
    }
    (None, got)
}

#[test]
fn a_slow_request_head_is_cut_off_while_others_are_served() {
    let s = Server::start(ServerConfig {
        header_timeout: secs(1),
        ..ServerConfig::default()
    });
    let t = s.reader(&["everyone"], Tlp::Green);
    let head = format!(
        "GET /ping HTTP/1.1\r\nHost: x\r\nAuthorization: Token token={t}\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200)
    );
    let a = addr(&s.url);
    let slow = std::thread::spawn(move || dribble(&a, head.as_bytes(), Duration::from_millis(20)));
    // Meanwhile, ordinary requests are answered at once.
    let ping = format!("{}/ping", s.url);
    let mut served = 0;
    while !slow.is_finished() {
        let started = Instant::now();
        assert_eq!(get(&ping, Some(&t)).status, 200);
        assert!(started.elapsed() < Duration::from_millis(500));
        served += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    let (closed, answer) = slow.join().unwrap();
    let closed = closed.expect("the server kept a slow request head open");
    assert!(
        closed >= Duration::from_millis(900) && closed < Duration::from_secs(4),
        "closed after {closed:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains(" 200 "),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(served >= 5, "{served}");
}

#[test]
fn a_body_that_never_finishes_is_answered_408() {
    let s = Server::start(ServerConfig {
        timeout: secs(1),
        ..ServerConfig::default()
    });
    let t = s.reader(&["everyone"], Tlp::Green);
    let mut c = TcpStream::connect(addr(&s.url)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        c,
        "POST /indicators HTTP/1.1\r\nHost: x\r\nAuthorization: Token token={t}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n["
    )
    .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(get(&format!("{}/ping", s.url), Some(&t)).status, 200);
}

/// `curl` over HTTPS trusting `cert`: (exit code, body, HTTP version).
fn curl(url: &str, cert: &Path, token: &str, version: &str) -> (i32, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", version, "--cacert"])
        .arg(cert)
        .args(["-H", &format!("Authorization: Token token={token}")])
        .args(["-w", "\n%{http_version}", url])
        .output()
        .expect("curl (apt-get install curl)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, v) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (
        out.status.code().unwrap_or(-1),
        body.to_string(),
        v.to_string(),
    )
}

#[test]
fn tls_serves_http1_and_http2_and_refuses_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certs::self_signed(dir.path(), "cert", "127.0.0.1");
    let tls = server::serve::tls_from_pem(&cert, &key).unwrap();
    let config = ServerConfig {
        tls_cert: Some(cert.clone()),
        tls_key: Some(key.clone()),
        ..ServerConfig::default()
    };
    let s = Server::start_tls(config, tls);
    assert!(s.url.starts_with("https://"), "{}", s.url);
    let t = s.reader(&["everyone"], Tlp::Green);
    let search = format!("{}/search?q=public.example&nolog=1", s.url);
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (code, body, v) = curl(&search, &cert, &t, flag);
        assert_eq!(code, 0, "{flag}: {body}");
        assert_eq!(v, version, "{flag}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["data"][0]["indicator"], "public.example", "{body}");
    }
    // Without the token: 401 over TLS too.
    let (code, body, _) = curl(&search, &cert, "not-a-token", "--http2");
    assert_eq!(code, 0);
    assert!(body.contains("unauthorized"), "{body}");
    // Plain HTTP to the TLS port: no HTTP answer, the connection closed promptly...
    let plain = s.url.replacen("https://", "http://", 1);
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("{plain}/ping")])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut c = TcpStream::connect(addr(&s.url)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // ...and the server goes on serving HTTPS.
    let (code, _, v) = curl(&search, &cert, &t, "--http1.1");
    assert_eq!((code, v.as_str()), (0, "1.1"));
    // An unusable certificate is an error naming the file.
    let e = server::serve::tls_from_pem(&dir.path().join("missing.pem"), &key)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.pem"), "{e}");
}
