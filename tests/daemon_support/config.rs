//! `trawl run` configs of the daemon tests, built as TOML tables: the `[sensor]` table and
//! the `bad` feed every test shares are written here once, so a test states only its own
//! keys, sources and sinks.

use super::{p, trawl_ok};
use std::path::Path;
use toml::{Table, Value};

/// A TOML table of `(key, value)` pairs: `table([("kind", "jsonl".into())])`.
pub fn table<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Table {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// A `trawl run` config: `[sensor]`, the `bad` feed, and the sources and sinks added.
pub struct DaemonConfig(Table);

impl DaemonConfig {
    /// `[sensor]` named `name` with its data in `data` and its admin endpoint on
    /// 127.0.0.1:`port`, and the feed `bad` (`bad.txt` beside the config, plain FQDNs at
    /// confidence 90, severity high).
    pub fn new(name: &str, data: &Path, port: u16) -> DaemonConfig {
        let sensor = table([
            ("name", name.into()),
            ("data", p(data).into()),
            ("metrics", format!("127.0.0.1:{port}").into()),
        ]);
        let feed = table([
            ("name", "bad".into()),
            ("source", "bad.txt".into()),
            ("format", "plain".into()),
            ("itype", "fqdn".into()),
            ("confidence", 90.into()),
            ("severity", "high".into()),
        ]);
        DaemonConfig(table([
            ("sensor", sensor.into()),
            ("feed", vec![feed].into()),
        ]))
    }

    /// One more `[sensor]` key.
    pub fn sensor(mut self, key: &str, value: impl Into<Value>) -> DaemonConfig {
        if let Some(Value::Table(t)) = self.0.get_mut("sensor") {
            t.insert(key.to_string(), value.into());
        }
        self
    }

    /// A `[[source]]` of `kind` with `keys`.
    pub fn source(self, kind: &str, keys: Table) -> DaemonConfig {
        self.push("source", kind, keys)
    }

    /// A `[[sink]]` of `kind` with `keys`.
    pub fn sink(self, kind: &str, keys: Table) -> DaemonConfig {
        self.push("sink", kind, keys)
    }

    fn push(mut self, array: &str, kind: &str, keys: Table) -> DaemonConfig {
        let mut t = table([("kind", kind.into())]);
        t.extend(keys);
        self.append(array, t);
        self
    }

    fn append(&mut self, array: &str, t: Table) {
        match self.0.get_mut(array) {
            Some(Value::Array(a)) => a.push(t.into()),
            _ => {
                self.0.insert(array.to_string(), vec![t].into());
            }
        }
    }

    /// The `[[source]]` and `[[sink]]` tables of a TOML text (a shipped sample's), appended.
    pub fn tables(mut self, text: &str) -> DaemonConfig {
        let parsed: Table = text.parse().expect("TOML tables");
        for (k, v) in parsed {
            match v {
                Value::Array(items) => {
                    for item in items {
                        let Value::Table(t) = item else {
                            panic!("{k}: not an array of tables")
                        };
                        self.append(&k, t);
                    }
                }
                _ => panic!("{k}: only [[source]] and [[sink]] tables are appended"),
            }
        }
        self
    }

    /// Write the config to `path` and compile the feed into its data directory (`trawl
    /// update`); `bad.txt` must be beside `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, toml::to_string(&self.0).expect("a TOML config")).unwrap();
        trawl_ok(&["-q", "update", "--config", p(path)]);
    }
}
