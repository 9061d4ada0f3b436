//! The admin endpoint: `/metrics` (Prometheus text) and `/healthz`.
//!
//! It cannot hold up detection: at most [`MAX_CONNECTIONS`] connections are served at once
//! (beyond that new ones wait in the listen queue), a request head must arrive within
//! [`REQUEST_TIMEOUT`] and the answer be taken within [`REQUEST_TIMEOUT`] (idle and slowloris
//! connections are closed), and a failing `accept` (file descriptors exhausted) is retried
//! after a pause instead of spinning.

use super::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Connections served at once at most.
pub const MAX_CONNECTIONS: usize = 64;
/// Time for a client to send its request head, and again to take the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve until the runtime ends. Panics of a connection are caught (tokio tasks), counted
/// as `admin` worker panics and logged.
pub async fn serve(listener: Arc<TcpListener>, metrics: Arc<Metrics>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(done) = conns.join_next(), if !conns.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        let msg = matcher::panics::panic_text(e.into_panic().as_ref()).to_string();
                        tracing::error!("admin endpoint connection panicked: {msg}");
                        Metrics::bump(&metrics.worker_panics, "admin");
                    }
                }
            }
            accepted = listener.accept(), if conns.len() < MAX_CONNECTIONS => match accepted {
                Ok((sock, _)) => {
                    conns.spawn(answer(sock, metrics.clone()));
                }
                Err(e) => {
                    // EMFILE/ENFILE leave the listener readable: pause rather than spin.
                    tracing::warn!("admin endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// `/healthz`: `200 ok` when every source, sink, feed and worker works; otherwise `503` and
/// one `component: reason` line per degraded one.
pub fn healthz(metrics: &Metrics) -> (&'static str, String) {
    let mut degraded = metrics.health.report();
    degraded.extend(metrics.upstream_health());
    if degraded.is_empty() {
        ("200 OK", "ok\n".to_string())
    } else {
        (
            "503 Service Unavailable",
            format!("degraded\n{}\n", degraded.join("\n")),
        )
    }
}

async fn answer(mut sock: TcpStream, metrics: Arc<Metrics>) {
    // Read the whole request head (it may arrive in several segments): closing with unread
    // bytes would make the kernel reset the connection under the response.
    let mut buf = [0u8; 4096];
    let mut n = 0;
    let head = async {
        while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            match sock.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => return false,
                Ok(k) => n += k,
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(REQUEST_TIMEOUT, head).await, Ok(true)) {
        return;
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let path = req.split_whitespace().nth(1).unwrap_or("/");
    let (status, ctype, body) = match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        "/healthz" => {
            let (status, body) = healthz(&metrics);
            (status, "text/plain", body)
        }
        _ => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /healthz\n".to_string(),
        ),
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, sock.write_all(resp.as_bytes())).await;
}
