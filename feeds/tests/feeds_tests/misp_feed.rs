//! `format = "misp-feed"`: a real public MISP feed sample (DigitalSide's OSINT feed, from the
//! corpus) served by Python's `http.server` on 127.0.0.1, pulled incrementally and checked
//! against the corpus's hand-checked truth.

use feeds::config::Config;
use feeds::update::{update, FeedStatus, UpdateOptions, UpdateReport};
use feeds::NoProgress;
use matcher::{Indicator, Snapshot, Tlp};
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FIRST: &str = "5ecea68b-9bc0-493b-9c23-7555c0a80102";
const SECOND: &str = "6b1f53f8-296c-4c09-9556-6a2045024452";

/// `python3 -m http.server` over a directory, killed when dropped; its log is a file.
pub(crate) struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT/feed`.
    pub(crate) url: String,
    log: std::path::PathBuf,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl HttpServer {
    /// Serve `root` (its `feed` directory at [`HttpServer::url`]), logging to `log`.
    pub(crate) fn start(root: &Path, log: &Path) -> HttpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer {
            child,
            url: format!("http://127.0.0.1:{port}/feed"),
            log: log.to_path_buf(),
        }
    }

    /// Paths of the GET requests so far.
    fn gets(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split("\"GET ").nth(1))
            .filter_map(|r| r.split(' ').next())
            .map(str::to_string)
            .collect()
    }
}

/// The corpus's two DigitalSide events and their manifest in `dir/www/feed`, served over
/// HTTP, and a `misp-feed` config pulling them; the feed directory.
fn serve_digitalside(src: &Path, dir: &Path) -> (HttpServer, Config, std::path::PathBuf) {
    let root = dir.join("www");
    let feed_dir = root.join("feed");
    std::fs::create_dir_all(&feed_dir).unwrap();
    for f in [
        "manifest.json",
        &format!("{FIRST}.json"),
        &format!("{SECOND}.json"),
    ] {
        std::fs::copy(src.join(f), feed_dir.join(f)).unwrap();
    }
    let server = HttpServer::start(&root, &dir.join("http.log"));
    let cfg = Config::from_toml_str(&format!(
        "[[feed]]\nname = \"digitalside\"\nsource = \"{}\"\nformat = \"misp-feed\"\nretries = 0\n",
        server.url
    ))
    .unwrap();
    (server, cfg, feed_dir)
}

fn run(config: &Config, dir: &Path) -> UpdateReport {
    let opts = UpdateOptions {
        force: true,
        now: None,
        allow_empty: false,
    };
    update(config, dir, &dir.join("data"), &opts, &NoProgress).unwrap()
}

/// Update with `cfg`: the pull made `counts` (requests, events received) and asked the
/// server for the manifest, hashes.csv and the events `fetched` (by uuid), nothing else.
fn pull_asking(
    server: &HttpServer,
    cfg: &Config,
    dir: &Path,
    counts: (usize, usize),
    fetched: &[&str],
) -> UpdateReport {
    let before = server.gets().len();
    let r = run(cfg, dir);
    let pull = r.feeds[0].pull.unwrap();
    assert_eq!(
        (pull.requests, pull.received),
        counts,
        "{}",
        r.render_text()
    );
    let mut want = vec!["/feed/manifest.json".to_string(), "/feed/hashes.csv".into()];
    want.extend(fetched.iter().map(|u| format!("/feed/{u}.json")));
    assert_eq!(server.gets()[before..], want);
    r
}

fn values(dir: &Path) -> Vec<Indicator> {
    let mut v: Vec<Indicator> = Snapshot::open_current(&dir.join("data"))
        .unwrap()
        .iter()
        .filter(|i| !i.allowlist && !i.derived)
        .collect();
    v.sort_by(|a, b| a.value.cmp(&b.value));
    v
}

#[test]
fn misp_feed_pulled_incrementally_matches_its_truth() {
    let Some(corpus) = crate::corpus_dir::corpus_dir() else {
        return;
    };
    let src = corpus.join("intel/misp-feed/digitalside");
    let Ok(truth) =
        std::fs::read_to_string(corpus.join("truth/intel/misp-feed_digitalside.truth.tsv"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, cfg, feed_dir) = serve_digitalside(&src, dir.path());

    // The truth: every attribute MISP flags to_ids with a type a sensor matches on.
    let mut expected: Vec<(String, String, String)> = truth
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|c| c[7] == "true" && c[8] != "-")
        .map(|c| (c[6].to_string(), c[2].to_string(), c[0].to_string()))
        .collect();
    expected.sort();
    assert_eq!(expected.len(), 42);

    let r = run(&cfg, dir.path());
    let f = &r.feeds[0];
    assert_eq!(f.status, FeedStatus::Fetched, "{}", r.render_text());
    let pull = f.pull.unwrap();
    // The manifest, `hashes.csv` (absent here: a 404, not an error) and both events.
    assert_eq!((pull.requests, pull.received), (4, 2));
    let got = values(dir.path());
    let got_values: Vec<&str> = got.iter().map(|i| i.value.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(v, _, _)| v.as_str()).collect();
    assert_eq!(got_values, want);
    // Each keeps its MISP attribute uuid as its external id (a derived host carries none,
    // so an address that is also a listed URL's host keeps its own).
    for (i, (_, uuid, _)) in got.iter().zip(&expected) {
        assert_eq!(i.external_id.as_deref(), Some(uuid.as_str()), "{}", i.value);
    }
    for i in &got {
        assert_eq!(i.tlp, Tlp::Clear, "tlp:white");
        assert!(i.tags.iter().any(|t| t == "type:osint"), "{:?}", i.tags);
        assert!(i.tags.iter().any(|t| t == "source:digitalside.it"));
    }
    assert_eq!(server.gets().len(), 4);
    assert_eq!(server.gets()[1], "/feed/hashes.csv");

    // Nothing changed: only the manifest (and the absent hashes.csv) is asked for.
    pull_asking(&server, &cfg, dir.path(), (2, 0), &[]);
    assert_eq!(values(dir.path()).len(), 42);

    // The second event changes (a new timestamp) and the first leaves the manifest.
    let manifest_path = feed_dir.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let m = manifest.as_object_mut().unwrap();
    m.remove(FIRST);
    m[SECOND]["timestamp"] = Value::from("1700000000");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let mut cfg2 = cfg.clone();
    cfg2.feeds[0].min_ratio = Some(0.0);
    pull_asking(&server, &cfg2, dir.path(), (3, 1), &[SECOND]);
    let left: Vec<String> = values(dir.path()).into_iter().map(|i| i.value).collect();
    let want: Vec<String> = expected
        .iter()
        .filter(|(_, _, ev)| ev == SECOND)
        .map(|(v, _, _)| v.clone())
        .collect();
    assert_eq!(left, want);
}

/// `hashes.csv` as PyMISP's feed generator writes it (`MISPEvent.to_feed(with_meta=True)`'s
/// `_hashes`, one `md5,event_uuid` a line) for the event files given.
fn pymisp_hashes(dir: &Path, out: &Path, events: &[std::path::PathBuf]) {
    let script = dir.join("gen_hashes.py");
    std::fs::write(
        &script,
        r#"import sys
from pymisp import MISPEvent
lines = []
for path in sys.argv[2:]:
    ev = MISPEvent()
    ev.load_file(path)
    feed = ev.to_feed(with_meta=True)
    feed = feed.get("Event", feed)
    lines += ["{},{}".format(h, ev.uuid) for h in feed["_hashes"]]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
"#,
    )
    .unwrap();
    let st = Command::new("python3")
        .arg(&script)
        .arg(out)
        .args(events)
        .status()
        .expect("python3 with pymisp (pip install pymisp; `make deps` does)");
    assert!(st.success(), "PyMISP's feed hashes");
}

#[test]
fn hashes_csv_refetches_an_event_whose_values_changed_under_the_same_timestamp() {
    let Some(corpus) = crate::corpus_dir::corpus_dir() else {
        return;
    };
    let src = corpus.join("intel/misp-feed/digitalside");
    let dir = tempfile::tempdir().unwrap();
    let (server, cfg, feed_dir) = serve_digitalside(&src, dir.path());
    let events = [
        feed_dir.join(format!("{FIRST}.json")),
        feed_dir.join(format!("{SECOND}.json")),
    ];
    let hashes = feed_dir.join("hashes.csv");
    pymisp_hashes(dir.path(), &hashes, &events);
    let r = run(&cfg, dir.path());
    assert_eq!(
        r.feeds[0].status,
        FeedStatus::Fetched,
        "{}",
        r.render_text()
    );
    let pull = r.feeds[0].pull.unwrap();
    assert_eq!((pull.requests, pull.received), (4, 2));
    // Attributes the parser skips (not to_ids, types a sensor does not match on).
    let skipped = r.feeds[0].skipped;

    // Nothing changed: the MD5s of every stored value (composite parts and object
    // attributes included) are PyMISP's, so no event is fetched again.
    pull_asking(&server, &cfg, dir.path(), (2, 0), &[]);

    // The feed is regenerated with a changed address but the same timestamps (event and
    // manifest): the manifest alone would keep the stale event; hashes.csv tells.
    let second = &events[1];
    let text = std::fs::read_to_string(second).unwrap();
    assert!(text.contains("\"2.57.122.167\""));
    std::fs::write(second, text.replace("\"2.57.122.167\"", "\"2.57.122.168\"")).unwrap();
    pymisp_hashes(dir.path(), &hashes, &events);
    pull_asking(&server, &cfg, dir.path(), (3, 1), &[SECOND]);
    let now: Vec<String> = values(dir.path()).into_iter().map(|i| i.value).collect();
    assert!(now.iter().any(|v| v == "2.57.122.168"), "{now:?}");
    assert!(!now.iter().any(|v| v == "2.57.122.167"), "{now:?}");

    // Lines that are not `md5,uuid` are skipped and counted; the rest still serve.
    let mut csv = std::fs::read_to_string(&hashes).unwrap();
    csv.push_str("not-a-hash,../../etc/passwd\nzz,\n");
    std::fs::write(&hashes, csv).unwrap();
    let r = pull_asking(&server, &cfg, dir.path(), (2, 0), &[]);
    assert_eq!(r.feeds[0].skipped, skipped + 2, "{}", r.render_text());
}

/// The merge needs a store in uuid order, which every store trawl writes is: one that is not
/// (hand-edited, or not trawl's) is set aside and every event fetched afresh, into a store in
/// uuid order that the next pull merges with.
#[test]
fn a_store_out_of_uuid_order_fetches_every_event_afresh() {
    let Some(corpus) = crate::corpus_dir::corpus_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, cfg, _) =
        serve_digitalside(&corpus.join("intel/misp-feed/digitalside"), dir.path());
    pull_asking(&server, &cfg, dir.path(), (4, 2), &[FIRST, SECOND]);
    let want = values(dir.path()).len();
    let store = feeds::misp_feed::store_path(&dir.path().join("data"), "digitalside");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    doc["response"].as_array_mut().unwrap().reverse();
    std::fs::write(&store, doc.to_string()).unwrap();
    pull_asking(&server, &cfg, dir.path(), (4, 2), &[FIRST, SECOND]);
    assert_eq!(values(dir.path()).len(), want);
    let doc: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    let uuids: Vec<&str> = doc["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Event"]["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(uuids, [FIRST, SECOND]);
    pull_asking(&server, &cfg, dir.path(), (2, 0), &[]);
}
