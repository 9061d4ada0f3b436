//! The client of a `trawl serve`: where it is and which token to present (flags,
//! environment, `[remote]`), and the one HTTP path `query`, `export` and `submit --remote`
//! share, with the server's refusals (401, 403, 413, 422, 429, 5xx) turned into errors that
//! say what to do next.

use crate::cli::RemoteArgs;
use anyhow::{anyhow, bail, Result};
use feeds::config::Config;
use serde_json::Value;
use std::io::Read;
use std::time::Duration;

/// Largest answer read from a server (a feed of the server's `max_results` rows fits).
const MAX_ANSWER: u64 = 1 << 30;

/// A server to ask.
#[derive(Debug, Clone)]
pub struct Remote {
    base: String,
    token: String,
}

/// A server's answer: the HTTP status, the body as JSON (`Null` when it is not JSON) and
/// `Retry-After`.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The parsed body.
    pub body: Value,
    /// `Retry-After`, in seconds, on a 429.
    pub retry_after: Option<String>,
    /// The endpoint asked (for messages).
    pub endpoint: String,
}

impl Answer {
    /// The envelope's `message`.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("no message")
    }

    /// The envelope's `data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// An error for a status every command treats alike: the token refused (401), a right
    /// missing (403), a body too large (413), the rate limit (429), or any other failure.
    pub fn refusal(&self) -> anyhow::Error {
        let (e, m) = (&self.endpoint, self.message());
        match self.status {
            401 | 403 if m.contains("lacks") => anyhow!(
                "{e}: this token may not do that ({m}); ask the server's admin for a token with \
                 that right (`trawl token create --read --write ...`)"
            ),
            401 => anyhow!(
                "{e}: the server refused the token ({m}); check --token, $TRAWL_TOKEN or the \
                 config's [remote] token (`trawl token create` on the server makes one)"
            ),
            403 => anyhow!("{e}: this token may not do that ({m})"),
            413 => {
                anyhow!("{e}: the server refused the request as too large ({m}); send less at once")
            }
            429 => anyhow!(
                "{e}: rate limited by the server ({m}); retry after {} s, or ask the server's \
                 operator for a higher [server] rate",
                self.retry_after.as_deref().unwrap_or("a few")
            ),
            code => anyhow!("{e}: HTTP {code}: {m}"),
        }
    }
}

impl Remote {
    /// The server the flags, environment or config name, if any: `--remote`/$TRAWL_REMOTE
    /// (clap reads both), else `[remote] url`. The token likewise, else `[remote] token` or
    /// `token_env`; a server without a token is a usage error.
    pub fn resolve(args: &RemoteArgs, config: Option<&Config>) -> Result<Option<Remote>> {
        let table = config.and_then(|c| c.remote.as_ref());
        let Some(url) = args
            .remote
            .clone()
            .or_else(|| table.and_then(|t| t.url.clone()))
        else {
            return Ok(None);
        };
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!(crate::exit::Usage(format!(
                "--remote {url:?}: expected http(s)://host:port, the address `trawl serve` \
                 listens on"
            )));
        }
        let token = match &args.token {
            Some(t) => Some(t.clone()),
            None => match table {
                Some(t) => t.token().map_err(crate::exit::Usage)?,
                None => None,
            },
        };
        let Some(token) = token.filter(|t| !t.trim().is_empty()) else {
            bail!(crate::exit::Usage(format!(
                "{url} needs a token: --token T, $TRAWL_TOKEN or [remote] token/token_env in the \
                 config (`trawl token create` on the server)"
            )));
        };
        Ok(Some(Remote {
            base: url,
            token: token.trim().to_string(),
        }))
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET path?params`.
    pub fn get(&self, path: &str, params: &[(&str, String)], timeout: Duration) -> Result<Answer> {
        let endpoint = format!("{}{path}", self.base);
        let mut req = self.request("GET", &endpoint, timeout);
        for (k, v) in params {
            req = req.query(k, v);
        }
        Self::answer(endpoint, req.call())
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &Value, timeout: Duration) -> Result<Answer> {
        let endpoint = format!("{}{path}", self.base);
        let req = self
            .request("POST", &endpoint, timeout)
            .set("Content-Type", "application/json");
        Self::answer(endpoint, req.send_string(&body.to_string()))
    }

    fn request(&self, method: &str, endpoint: &str, timeout: Duration) -> ureq::Request {
        ureq::request(method, endpoint)
            .timeout(timeout)
            .set("Authorization", &format!("Token token={}", self.token))
    }

    fn answer(endpoint: String, r: Result<ureq::Response, ureq::Error>) -> Result<Answer> {
        let resp = match r {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => bail!("asking {endpoint}: {e} (is `trawl serve` running there?)"),
        };
        let status = resp.status();
        let retry_after = resp.header("Retry-After").map(str::to_string);
        let mut text = Vec::new();
        resp.into_reader()
            .take(MAX_ANSWER)
            .read_to_end(&mut text)
            .map_err(|e| anyhow!("reading the answer of {endpoint}: {e}"))?;
        let body = serde_json::from_slice(&text).unwrap_or_default();
        Ok(Answer {
            status,
            body,
            retry_after,
            endpoint,
        })
    }
}

/// Timeout of a search or submission.
pub const ASK_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one feed download.
pub const FEED_TIMEOUT: Duration = Duration::from_secs(600);

/// What `trawl export --remote` exports: the server's indicators of the wanted types (every
/// type when none) above `min_confidence`, as an in-memory snapshot (so they come out in the
/// order, and through the exporter, of a local export), with the server's snapshot version
/// and creation time for the formats' headers.
pub struct RemoteFeed {
    /// The indicators.
    pub snapshot: matcher::Snapshot,
    /// The server's snapshot version (0: none).
    pub version: u64,
    /// When the server's snapshot was built.
    pub created: i64,
}

/// Most rows asked for in one feed (the server caps it at its `[server] max_results`).
const FEED_ASK: usize = 10_000_000;

impl Remote {
    /// `GET /v1/feed` for each wanted type (the token's forbidden types skipped when no type
    /// was asked for), rebuilt into a snapshot.
    pub fn feed(
        &self,
        types: &[matcher::IndicatorType],
        min_confidence: u8,
        quiet: bool,
    ) -> Result<RemoteFeed> {
        let health = self.get("/v1/health", &[], ASK_TIMEOUT)?;
        if health.status != 200 {
            return Err(health.refusal());
        }
        let version = health.data()["snapshot_version"].as_u64().unwrap_or(0);
        let created = health.data()["snapshot_created"].as_i64().unwrap_or(0);
        let all = types.is_empty();
        let types = if all {
            matcher::IndicatorType::ALL.to_vec()
        } else {
            types.to_vec()
        };
        let mut b = matcher::SnapshotBuilder::new();
        for t in types {
            let params = [
                ("itype", t.as_str().to_string()),
                ("confidence", min_confidence.to_string()),
                ("limit", FEED_ASK.to_string()),
            ];
            let a = self.get("/v1/feed", &params, FEED_TIMEOUT)?;
            match a.status {
                200 => {}
                403 if all => {
                    if !quiet {
                        eprintln!("trawl: {}: skipped ({})", t.as_str(), a.message());
                    }
                    continue;
                }
                _ => return Err(a.refusal()),
            }
            let rows = a.data().as_array().map(Vec::as_slice).unwrap_or_default();
            for (n, row) in rows.iter().enumerate() {
                let ind = indicator_of(row).map_err(|e| {
                    anyhow!("{}: row {n} of the {} feed: {e}", a.endpoint, t.as_str())
                })?;
                b.insert(ind);
            }
        }
        let snapshot = b
            .build()
            .map_err(|e| anyhow!("indexing the server's indicators: {e}"))?;
        Ok(RemoteFeed {
            snapshot,
            version,
            created,
        })
    }
}

/// An indicator from a native `/v1` row (`matcher::query::row_json`'s fields, plus
/// `exact_only` and `reported`).
fn indicator_of(row: &Value) -> Result<matcher::Indicator> {
    use matcher::{Indicator, IndicatorType};
    let text = |k: &str| row[k].as_str().map(str::to_string);
    let list = |k: &str| -> Vec<String> {
        row[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let value = text("value").ok_or_else(|| anyhow!("no value"))?;
    let itype: IndicatorType = row["itype"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow!("itype: {e}"))?;
    let mut ind = Indicator::new(value, itype, "");
    ind.sources = list("sources");
    ind.confidence = row["confidence"]
        .as_u64()
        .and_then(|c| u8::try_from(c).ok())
        .filter(|c| *c <= 100)
        .ok_or_else(|| anyhow!("confidence: expected 0-100"))?;
    ind.severity = row["severity"]
        .as_str()
        .unwrap_or("medium")
        .parse()
        .map_err(|e| anyhow!("severity: {e}"))?;
    ind.tlp = row["tlp"]
        .as_str()
        .unwrap_or("clear")
        .parse()
        .map_err(|e| anyhow!("tlp: {e}"))?;
    ind.tags = list("tags");
    ind.groups = matcher::Groups::from_names(list("groups"));
    ind.provider = text("provider");
    ind.description = text("description");
    ind.reference = text("reference");
    ind.external_id = text("external_id").filter(|id| matcher::model::is_external_id(id));
    ind.first_seen = row["first_seen"].as_i64();
    ind.last_seen = row["last_seen"].as_i64();
    ind.reported = row["reported"].as_i64();
    ind.expires = row["expires"].as_i64();
    ind.derived = row["derived"].as_bool().unwrap_or(false);
    ind.exact_only = row["exact_only"].as_bool().unwrap_or(false);
    ind.allowlisted_by = text("allowlisted_by");
    Ok(ind)
}

/// What `trawl submit` sends for each value: the fields given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// `--type`.
    pub itype: Option<matcher::IndicatorType>,
    /// `-c`.
    pub confidence: Option<u8>,
    /// `-s`.
    pub severity: Option<matcher::Severity>,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--tlp`.
    pub tlp: Option<matcher::Tlp>,
    /// `--group`.
    pub group: Option<String>,
    /// `--expires`, resolved to a time.
    pub expires: Option<i64>,
    /// `--description`.
    pub description: Option<String>,
    /// `--reference`.
    pub reference: Option<String>,
    /// `--external-id`: the STIX id or MISP uuid.
    pub external_id: Option<String>,
}

impl Submission {
    /// The `/v1/indicators` object for `value`.
    pub fn object(&self, value: &str) -> Value {
        let mut o = serde_json::Map::new();
        o.insert("indicator".into(), Value::from(value));
        if let Some(t) = self.itype {
            o.insert("itype".into(), Value::from(t.as_str()));
        }
        if let Some(c) = self.confidence {
            o.insert("confidence".into(), Value::from(c));
        }
        if let Some(s) = self.severity {
            o.insert("severity".into(), Value::from(s.as_str()));
        }
        if !self.tags.is_empty() {
            o.insert("tags".into(), Value::from(self.tags.clone()));
        }
        if let Some(t) = self.tlp {
            o.insert("tlp".into(), Value::from(t.as_str()));
        }
        if let Some(g) = &self.group {
            o.insert("group".into(), Value::from(g.as_str()));
        }
        if let Some(e) = self.expires.and_then(server::query::format_time) {
            o.insert("expires".into(), Value::from(e));
        }
        if let Some(d) = &self.description {
            o.insert("description".into(), Value::from(d.as_str()));
        }
        if let Some(r) = &self.reference {
            o.insert("reference".into(), Value::from(r.as_str()));
        }
        if let Some(id) = &self.external_id {
            o.insert("external_id".into(), Value::from(id.as_str()));
        }
        Value::Object(o)
    }

    /// The indicator the server stores for `value` (it normalises and defaults exactly so:
    /// `server::cif::parse_submission`), for printing what was stored.
    pub fn stored(&self, value: &str, now: i64) -> Result<matcher::Indicator> {
        let n = matcher::normalize(value, self.itype).map_err(|e| anyhow!("{value}: {e}"))?;
        let mut i = matcher::Indicator::new(n.value, n.itype, server::intel::SUBMISSIONS_SOURCE);
        i.exact_only = n.exact_only;
        if let Some(c) = self.confidence {
            i.confidence = c;
        }
        if let Some(s) = self.severity {
            i.severity = s;
        }
        i.tags.clone_from(&self.tags);
        if let Some(t) = self.tlp {
            i.tlp = t;
        }
        if let Some(g) = &self.group {
            i.groups = matcher::Groups::one(g);
        }
        i.expires = self.expires;
        i.description.clone_from(&self.description);
        i.reference.clone_from(&self.reference);
        i.external_id.clone_from(&self.external_id);
        i.first_seen = Some(now);
        i.last_seen = Some(now);
        i.tidy();
        Ok(i)
    }
}
