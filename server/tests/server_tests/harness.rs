//! A server on 127.0.0.1 over a temporary data directory with a published snapshot, on
//! either store ([`Backend`]), and a small HTTP client.

use crate::pg::PgCluster;
use matcher::{Indicator, IndicatorType, SnapshotBuilder, Tlp};
use server::config::ServerConfig;
use server::http::{now, App};
use server::intel::Intel;
use server::store::postgres::PgStore;
use server::store::sqlite::SqliteStore;
use server::store::{Store, StoreError};
use server::token::{Grant, Secret};
use std::sync::Arc;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A test run on each store: `on_both_stores! { fn name(backend) { ... } }` makes the tests
/// `name::sqlite` and `name::postgres`.
macro_rules! on_both_stores {
    ($(fn $name:ident($b:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($b: $crate::harness::Backend) $body
            #[test]
            fn sqlite() {
                run($crate::harness::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                run($crate::harness::Backend::Postgres)
            }
        }
    )*};
}
pub(crate) use on_both_stores;

/// An empty store of either kind, opened as often as a test likes.
pub struct Db {
    pub backend: Backend,
    /// The SQLite file (in a temporary directory), or the PostgreSQL URL.
    pub location: String,
    pub dir: tempfile::TempDir,
    pub cluster: Option<Arc<PgCluster>>,
}

impl Db {
    pub fn new(backend: Backend) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let (location, cluster) = match backend {
            Backend::Sqlite => (dir.path().join("server.db").display().to_string(), None),
            Backend::Postgres => {
                let c = PgCluster::shared();
                (c.create_database(), Some(c))
            }
        };
        Db {
            backend,
            location,
            dir,
            cluster,
        }
    }

    /// A new database on `cluster` (a test's own, to restart it).
    pub fn on(cluster: Arc<PgCluster>) -> Db {
        Db {
            backend: Backend::Postgres,
            location: cluster.create_database(),
            dir: tempfile::tempdir().unwrap(),
            cluster: Some(cluster),
        }
    }

    /// Open with the schema up to `migrations`.
    pub fn open_with(&self, migrations: &[&str]) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => Arc::new(SqliteStore::open_with(
                std::path::Path::new(&self.location),
                migrations,
            )?),
            Backend::Postgres => Arc::new(PgStore::open_with(&self.location, migrations)?),
        })
    }

    /// Open with the current schema.
    pub fn open(&self) -> Arc<dyn Store> {
        self.open_with(server::store::MIGRATIONS).unwrap()
    }
}

pub struct Server {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub app: Arc<App>,
    /// The store's location (open another handle on it, as another process would).
    pub db: Db,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

/// One indicator of the test snapshot.
pub fn ind(value: &str, itype: IndicatorType, tlp: Tlp, groups: &[&str]) -> Indicator {
    let mut i = Indicator::new(value, itype, "test-feed");
    i.tlp = tlp;
    i.confidence = 80;
    i.tags = vec!["malware".into()];
    i.groups = matcher::Groups::from_names(groups.iter().copied());
    i.reported = Some(now() - 60);
    i
}

/// The snapshot every API test searches: public, amber, private-group and red entries.
pub fn indicators() -> Vec<Indicator> {
    use IndicatorType as T;
    vec![
        ind("public.example", T::Fqdn, Tlp::Green, &["everyone"]),
        ind("amber-only.example", T::Fqdn, Tlp::Amber, &["everyone"]),
        ind("csirt-only.example", T::Fqdn, Tlp::Green, &["csirt"]),
        ind("red-only.example", T::Fqdn, Tlp::Red, &["everyone"]),
        // As a value listed by a public and a csirt feed merges: both groups.
        ind("mixed.example", T::Fqdn, Tlp::Green, &["csirt", "everyone"]),
        ind("198.51.100.0/24", T::Ipv4, Tlp::Green, &["everyone"]),
        ind("203.0.113.9", T::Ipv4, Tlp::Green, &["csirt"]),
        ind(
            "44d88612fea8a8f36de82e1278abb02f",
            T::Md5,
            Tlp::Green,
            &["everyone"],
        ),
    ]
}

impl Server {
    /// A server on SQLite.
    pub fn start(config: ServerConfig) -> Server {
        Server::start_on(Backend::Sqlite, config)
    }

    /// A server on a new store of `backend`.
    pub fn start_on(backend: Backend, config: ServerConfig) -> Server {
        Server::start_with(Db::new(backend), config)
    }

    /// A server on the store `db`.
    pub fn start_with(db: Db, config: ServerConfig) -> Server {
        Server::start_full(db, config, None)
    }

    /// A server on SQLite speaking HTTPS only, with this TLS configuration.
    pub fn start_tls(config: ServerConfig, tls: server::serve::TlsConfig) -> Server {
        Server::start_full(Db::new(Backend::Sqlite), config, Some(tls))
    }

    /// A server on the store `db`, served as `trawl serve` serves (its timeouts, TLS).
    fn start_full(db: Db, config: ServerConfig, tls: Option<server::serve::TlsConfig>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut b = SnapshotBuilder::new();
        for i in indicators() {
            b.insert(i);
        }
        b.publish(dir.path(), serde_json::Value::Null).unwrap();
        let store = db.open();
        let intel = Intel::open(dir.path(), store.clone(), now()).unwrap();
        let app = Arc::new(App::new(intel, config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let served = app.clone();
        rt.spawn(async move {
            let handle = axum_server::Handle::new();
            let _ = server::serve::serve_listener(listener, served, tls, handle).await;
        });
        Server {
            url: format!("{scheme}://{addr}"),
            store,
            app,
            db,
            _dir: dir,
            _rt: rt,
        }
    }

    /// A new token with this grant.
    pub fn token(&self, grant: Grant) -> String {
        let s = Secret::generate().unwrap();
        self.store.create_token(&s.hash(), &grant, now()).unwrap();
        s.expose().to_string()
    }

    /// A read token of `groups` seeing up to `max_tlp`.
    pub fn reader(&self, groups: &[&str], max_tlp: Tlp) -> String {
        self.token(grant("reader", groups, max_tlp))
    }
}

pub fn grant(user: &str, groups: &[&str], max_tlp: Tlp) -> Grant {
    Grant {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        read: true,
        write: false,
        admin: false,
        max_tlp,
        itypes: Vec::new(),
        expires: None,
    }
}

/// (status, parsed JSON body or Null, raw body).
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
    pub text: String,
    pub retry_after: Option<String>,
}

impl Answer {
    /// The `data` of the envelope as a list of indicator values (`indicator` or `value`).
    pub fn values(&self) -> Vec<String> {
        let mut v: Vec<String> = self.json["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r["indicator"].as_str().or(r["value"].as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport: {e}"),
    };
    let status = resp.status();
    let retry_after = resp.header("retry-after").map(str::to_string);
    let text = resp.into_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Answer {
        status,
        json,
        text,
        retry_after,
    }
}

/// The answer of a request made by hand.
pub fn answer_of(r: Result<ureq::Response, ureq::Error>) -> Answer {
    answer(r)
}

pub fn get(url: &str, token: Option<&str>) -> Answer {
    let mut r = ureq::get(url);
    if let Some(t) = token {
        r = r.set("Authorization", &format!("Token token={t}"));
    }
    answer(r.call())
}

pub fn send(method: &str, url: &str, token: &str, body: &[u8]) -> Answer {
    answer(
        ureq::request(method, url)
            .set("Authorization", &format!("Token token={token}"))
            .set("Content-Type", "application/json")
            .send_bytes(body),
    )
}
