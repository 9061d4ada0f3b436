//! medallion, the OASIS TAXII 2.1 server (PyPI `medallion`), as the tests start it: its own
//! Flask app with the memory backend, run by a small Python launcher that binds port 0 on
//! 127.0.0.1 (so parallel tests never race for a port) and writes the port it got to a file,
//! over TLS requiring client certificates when asked. The one home of the medallion start of
//! `feeds/tests` and the root `tests`.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The launcher: medallion's `scripts/run.py` `main()`, but with werkzeug's server made
/// first (port 0, optional `ssl.SSLContext` with `CERT_REQUIRED`), `{PORT}` in the data file
/// replaced by the bound port before the backend loads it, and the port written to a file.
const LAUNCHER: &str = r#"import json, os, ssl, sys
from werkzeug.serving import make_server
from medallion import application_instance as app, register_blueprints, set_config

config_path, port_file = sys.argv[1], sys.argv[2]
with open(config_path) as f:
    config = json.load(f)
tls = config.pop("x_test_tls", None)
context = None
if tls:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls["cert"], tls["key"])
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(tls["client_ca"])
server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
port = server.server_port
data_path = config["backend"]["filename"]
with open(data_path) as f:
    data = f.read().replace("{PORT}", str(port))
with open(data_path, "w") as f:
    f.write(data)
for key in ("users", "taxii", "backend"):
    set_config(app, key, config)
register_blueprints(app)
with open(port_file + ".tmp", "w") as f:
    f.write(str(port))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

/// A running medallion, killed when dropped.
pub struct Medallion {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    tls: bool,
}

impl Drop for Medallion {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Medallion {
    /// `http(s)://127.0.0.1:PORT` followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

/// The server side of TLS: its certificate and key, and the CA client certificates must be
/// signed by (required).
pub struct ServerTls {
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// The CA of the client certificates it accepts (PEM).
    pub client_ca: PathBuf,
}

/// Start medallion in `dir` serving `data` (the memory backend's document; `{PORT}` in it
/// becomes the bound port) to `users` (name, password), `page` objects a page at most.
pub fn start(
    dir: &Path,
    data: &Value,
    users: &[(&str, &str)],
    page: usize,
    tls: Option<&ServerTls>,
) -> Medallion {
    let data_path = dir.join("medallion-data.json");
    std::fs::write(&data_path, data.to_string()).unwrap();
    let users: serde_json::Map<String, Value> = users
        .iter()
        .map(|(u, p)| (u.to_string(), json!(p)))
        .collect();
    let mut config = json!({
        "backend": {"module": "medallion.backends.memory_backend",
                    "module_class": "MemoryBackend", "filename": data_path},
        "users": users,
        "taxii": {"max_page_size": page},
    });
    if let Some(t) = tls {
        config["x_test_tls"] = json!({"cert": t.cert, "key": t.key, "client_ca": t.client_ca});
    }
    let config_path = dir.join("medallion.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let launcher = dir.join("medallion_launcher.py");
    std::fs::write(&launcher, LAUNCHER).unwrap();
    let port_file = dir.join("medallion.port");
    let _ = std::fs::remove_file(&port_file);
    let log = dir.join("medallion.log");
    let child = Command::new("python3")
        .arg(&launcher)
        .arg(&config_path)
        .arg(&port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("python3 must be on PATH");
    let mut server = Medallion {
        child,
        port: 0,
        tls: tls.is_some(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
        {
            server.port = port;
            return server;
        }
        if server.child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            panic!(
                "medallion did not start (pip install medallion; `make deps` does it): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A collection of `objects` for the memory backend's data, its manifest entries added the
/// day after one another from 2024-02-01.
pub fn collection(id: &str, writable: bool, objects: Vec<Value>) -> Value {
    let manifest: Vec<Value> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "id": o["id"],
                "date_added": format!("2024-02-{:02}T00:00:00.000000Z", i + 1),
                "version": o["modified"],
                "media_type": "application/stix+json;version=2.1",
            })
        })
        .collect();
    json!({"id": id, "title": id, "can_read": true, "can_write": writable,
           "media_types": ["application/stix+json;version=2.1"],
           "objects": objects, "manifest": manifest})
}

/// The memory backend's document: one API root `api1` holding `collections`.
pub fn api_root(collections: Vec<Value>) -> Value {
    json!({
        "/discovery": {"title": "trawl test", "default": "http://127.0.0.1:{PORT}/api1/",
                       "api_roots": ["http://127.0.0.1:{PORT}/api1/"]},
        "api1": {
            "information": {"title": "api1", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 10_000_000},
            "status": [],
            "collections": collections,
        },
    })
}
