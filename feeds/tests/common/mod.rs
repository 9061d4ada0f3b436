//! A real HTTP/1.1 server on 127.0.0.1 for fetch tests (std only, one thread, no mocks of
//! the client): serves a configurable body with an ETag, answers conditional GETs with
//! 304, can be told to fail with a status, and records every request's headers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the server answers.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub body: Vec<u8>,
    pub etag: String,
    pub status: Option<u16>,
    pub gzip_encoding: bool,
    /// Answer `302 Found` with this `Location` instead of the body.
    pub location: Option<String>,
}

/// Shared state: what to serve and the requests seen (lower-cased header lines).
#[derive(Debug, Default)]
pub struct State {
    pub served: Served,
    pub requests: Vec<Vec<String>>,
}

pub struct Server {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start(path: &str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}{path}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end().to_string();
                    if l.is_empty() {
                        break;
                    }
                    headers.push(l.to_ascii_lowercase());
                }
                let mut s = st.lock().unwrap();
                let inm = headers
                    .iter()
                    .find_map(|h| h.strip_prefix("if-none-match: ").map(str::to_string));
                s.requests.push(headers);
                let served = s.served.clone();
                drop(s);
                let resp = if let Some(loc) = &served.location {
                    format!("HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes()
                } else if let Some(code) = served.status {
                    format!("HTTP/1.1 {code} Oops\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops").into_bytes()
                } else if inm.as_deref() == Some(served.etag.to_ascii_lowercase().as_str()) {
                    format!(
                        "HTTP/1.1 304 Not Modified\r\nETag: {}\r\nConnection: close\r\n\r\n",
                        served.etag
                    )
                    .into_bytes()
                } else {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nETag: {}\r\nLast-Modified: Sat, 28 Nov 2026 05:00:00 GMT\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                        served.etag,
                        served.body.len(),
                        if served.gzip_encoding { "Content-Encoding: gzip\r\n" } else { "" }
                    )
                    .into_bytes();
                    r.extend_from_slice(&served.body);
                    r
                };
                let _ = stream.write_all(&resp);
                let _ = stream.flush();
            }
        });
        Server { url, state }
    }

    pub fn serve(&self, body: &[u8], etag: &str) {
        let mut s = self.state.lock().unwrap();
        s.served = Served {
            body: body.to_vec(),
            etag: etag.to_string(),
            status: None,
            gzip_encoding: false,
            location: None,
        };
    }

    /// Answer every request with a redirect to `location`.
    pub fn redirect_to(&self, location: &str) {
        self.state.lock().unwrap().served.location = Some(location.to_string());
    }

    pub fn fail_with(&self, status: u16) {
        self.state.lock().unwrap().served.status = Some(status);
    }

    pub fn requests(&self) -> Vec<Vec<String>> {
        self.state.lock().unwrap().requests.clone()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An HTTP/1.1 server on 127.0.0.1 answering a GET of a path ending in one of `pages`'
/// names with its body, anything else 404 (a MISP feed's files, a TAXII collection's
/// pages); its URL, `http://ADDR/feed/`. It stops with the test process.
pub fn serve_paths(pages: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/feed/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut line = String::new();
            let mut path = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                    break;
                }
                if path.is_empty() {
                    path = line.split(' ').nth(1).unwrap_or("").to_string();
                }
            }
            let path = path.split('?').next().unwrap_or("");
            let page = pages.iter().find(|(name, _)| path.ends_with(name));
            let (status, body) = match page {
                Some((_, body)) => ("200 OK", body.as_slice()),
                None => ("404 Not Found", &b"not found"[..]),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
            let _ = stream.flush();
        }
    });
    url
}
