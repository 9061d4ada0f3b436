//! `format = "taxii"` against medallion, the OASIS TAXII 2.1 server (PyPI `medallion`),
//! started here with its memory backend on 127.0.0.1: paging (a page size of 2), basic auth,
//! revoked and expired indicators, an AND pattern, incremental pulls and what they merge.

use feeds::config::Config;
use feeds::update::{update, FeedStatus, UpdateOptions, UpdateReport};
use feeds::NoProgress;
use matcher::{Indicator, IndicatorType, Snapshot};
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;

const COLLECTION: &str = "91a7b528-80eb-42ed-a74d-c6fbd5a26116";
/// `u:p` in base64, the user the server's config holds.
const BASIC: &str = "dTpw";

/// A medallion (`tests/common/medallion.rs`) and the objects URL of its collection.
struct Medallion {
    _server: crate::medallion::Medallion,
    objects_url: String,
}

fn indicator(id: u32, pattern: &str, extra: Value) -> Value {
    let mut o = json!({
        "type": "indicator",
        "spec_version": "2.1",
        "id": format!("indicator--00000000-0000-4000-8000-{id:012}"),
        "created": "2024-01-01T00:00:00.000Z",
        "modified": "2024-01-01T00:00:00.000Z",
        "name": format!("test indicator {id}"),
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        "confidence": 80,
    });
    if let (Value::Object(o), Value::Object(e)) = (&mut o, extra) {
        o.extend(e);
    }
    o
}

fn start(dir: &Path, objects: &[Value]) -> Medallion {
    let data = crate::medallion::api_root(vec![crate::medallion::collection(
        COLLECTION,
        true,
        objects.to_vec(),
    )]);
    let server = crate::medallion::start(dir, &data, &[("u", "p")], 2, None);
    Medallion {
        objects_url: server.url(&format!("/api1/collections/{COLLECTION}/objects/")),
        _server: server,
    }
}

/// Add objects the way a producer does: POST an envelope to the collection at
/// `objects_url` (all must land).
pub(crate) fn post(objects_url: &str, objects: &[Value]) {
    let resp = ureq::post(objects_url)
        .set("Authorization", &format!("Basic {BASIC}"))
        .set("Accept", "application/taxii+json;version=2.1")
        .set("Content-Type", "application/taxii+json;version=2.1")
        .send_string(&json!({ "objects": objects }).to_string())
        .unwrap();
    let status: Value = serde_json::from_reader(resp.into_reader()).unwrap();
    assert_eq!(status["success_count"], objects.len(), "{status}");
}

fn config(url: &str, auth: &str) -> Config {
    Config::from_toml_str(&format!(
        "[[feed]]\nname = \"taxii-test\"\nsource = \"{url}\"\nformat = \"taxii\"\n\
         auth_header = \"Authorization: Basic {auth}\"\nretries = 0\nmin_ratio = 0\n"
    ))
    .unwrap()
}

pub(crate) fn run(config: &Config, dir: &Path) -> UpdateReport {
    let opts = UpdateOptions {
        force: true,
        now: None,
        allow_empty: true,
    };
    update(config, dir, &dir.join("data"), &opts, &NoProgress).unwrap()
}

fn entries(dir: &Path) -> Vec<Indicator> {
    Snapshot::open_current(&dir.join("data"))
        .unwrap()
        .iter()
        .filter(|i| !i.allowlist)
        .collect()
}

fn find<'a>(e: &'a [Indicator], v: &str) -> Option<&'a Indicator> {
    e.iter().find(|i| i.value == v)
}

#[test]
fn taxii_collection_pulled_in_pages_incrementally_with_revocation_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let objects = vec![
        indicator(1, "[domain-name:value = 'evil.example']", json!({})),
        indicator(
            2,
            "[ipv4-addr:value ISSUBSET '45.76.10.0/24'] OR [url:value = 'http://bad.example/x']",
            json!({}),
        ),
        indicator(
            3,
            "[ipv4-addr:value = '45.76.11.9' AND domain-name:value = 'and.example']",
            json!({}),
        ),
        indicator(
            4,
            "[domain-name:value = 'expired.example']",
            json!({"valid_until": "2020-01-01T00:00:00Z"}),
        ),
        indicator(
            5,
            "[domain-name:value = 'revoked.example']",
            json!({"revoked": true}),
        ),
        indicator(
            6,
            "[file:hashes.'SHA-256' = 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855']",
            json!({"valid_until": "2099-01-01T00:00:00Z"}),
        ),
        json!({"type": "malware", "spec_version": "2.1", "id": "malware--00000000-0000-4000-8000-000000000001",
               "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
               "name": "x", "is_family": false}),
    ];
    let server = start(dir.path(), &objects);

    // Wrong credentials: the feed fails with the server's status, nothing is published.
    let bad = config(&server.objects_url, "dTp3cm9uZw==");
    let opts = UpdateOptions {
        force: true,
        now: None,
        allow_empty: false,
    };
    let err = update(
        &bad,
        dir.path(),
        &dir.path().join("data"),
        &opts,
        &NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("HTTP 401"), "{err}");

    // First pull: six indicators in three pages of two (the malware object is not asked for).
    let cfg = config(&server.objects_url, BASIC);
    let r = run(&cfg, dir.path());
    let f = &r.feeds[0];
    assert_eq!(f.status, FeedStatus::Fetched, "{}", r.render_text());
    let pull = f.pull.unwrap();
    assert_eq!((pull.requests, pull.received), (3, 6));
    assert_eq!(f.revoked, 1);
    assert_eq!(f.expired, 1);
    assert_eq!(f.rejected, 1, "{:?}", f.reject_samples);
    let why = &f.reject_samples[0].reason;
    assert!(
        why.contains("indicator--00000000-0000-4000-8000-000000000003") && why.contains("AND"),
        "{why}"
    );
    let e = entries(dir.path());
    let evil = find(&e, "evil.example").expect("evil.example");
    assert_eq!(
        evil.external_id.as_deref(),
        Some("indicator--00000000-0000-4000-8000-000000000001"),
        "the STIX id is kept"
    );
    assert_eq!(
        evil.reference, None,
        "reference is for a URL or an identifier"
    );
    assert_eq!(evil.confidence, 80);
    assert_eq!(evil.description.as_deref(), Some("test indicator 1"));
    let net = find(&e, "45.76.10.0/24").expect("ISSUBSET gives the network");
    assert_eq!(net.itype, IndicatorType::Ipv4);
    assert!(find(&e, "http://bad.example/x").is_some());
    assert!(find(
        &e,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    .is_some());
    for gone in [
        "revoked.example",
        "expired.example",
        "and.example",
        "45.76.11.9",
    ] {
        assert!(find(&e, gone).is_none(), "{gone}");
    }
    let store = feeds::taxii::store_path(&dir.path().join("data"), "taxii-test");
    let kept: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    assert_eq!(
        kept["x_trawl_added_after"], "2024-02-06T00:00:00.000000Z",
        "the cursor is the last page's X-TAXII-Date-Added-Last"
    );

    // A quiet pull brings nothing and keeps every entry.
    let r = run(&cfg, dir.path());
    let pull = r.feeds[0].pull.unwrap();
    assert_eq!((pull.requests, pull.received), (1, 0));
    assert_eq!(entries(dir.path()).len(), e.len());

    // A producer revokes indicator 1 and adds a new one: only those two come, and merge.
    let mut revoked = objects[0].clone();
    revoked["modified"] = json!("2024-03-01T00:00:00.000Z");
    revoked["revoked"] = json!(true);
    post(
        &server.objects_url,
        &[
            revoked,
            indicator(7, "[email-addr:value = 'phish@bad.example']", json!({})),
        ],
    );
    let r = run(&cfg, dir.path());
    let pull = r.feeds[0].pull.unwrap();
    assert_eq!(pull.received, 2, "{}", r.render_text());
    let e = entries(dir.path());
    assert!(
        find(&e, "evil.example").is_none(),
        "revoked by a newer version"
    );
    assert!(find(&e, "phish@bad.example").is_some());
    assert!(
        find(&e, "45.76.10.0/24").is_some(),
        "kept from earlier pulls"
    );
}

/// The corpus's medallion data (21 real indicators from OpenCTI, MISP, Elastic and OASIS
/// exports) served in pages of 5: what the snapshot holds is what the hand-checked truth file
/// says a value list can hold, less revoked and expired indicators.
#[test]
fn corpus_collection_matches_its_truth() {
    let Some(corpus) = crate::corpus_dir::corpus_dir() else {
        return;
    };
    let data = corpus.join("intel/medallion/data.json");
    let truth = corpus.join("truth/intel/medallion_data.json.truth.tsv");
    let (Ok(doc), Ok(truth)) = (std::fs::read(&data), std::fs::read_to_string(&truth)) else {
        return;
    };
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    let collection = doc["intel"]["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["can_write"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let server =
        crate::medallion::start(dir.path(), &doc, &[("trawl", "trawl-test-only")], 5, None);
    let server = Medallion {
        objects_url: server.url(&format!("/intel/collections/{collection}/objects/")),
        _server: server,
    };

    // The truth: rows with status ok (or partial: an AND, which we refuse whole).
    let now = time_now();
    let mut expected = Vec::new();
    let (mut revoked, mut expired) = (0, 0);
    // Ids whose indicator is refused (or partly: OR terms left out), each one reject.
    let mut refused: Vec<String> = Vec::new();
    let held = [
        "ipv4",
        "ipv6",
        "fqdn",
        "url",
        "email",
        "md5",
        "sha1",
        "sha256",
        "x509-sha1",
        // Held as a `sha256` (feeds::parse::stix_pattern::x509_hash_type).
        "x509-sha256",
    ];
    // Where trawl reads more than the truth's value list: a message's sender address is an
    // e-mail indicator (feeds::parse::stix_pattern), which the truth calls unsupported.
    let sender = "[email-message:from_ref.value = '";
    for line in truth.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let col: Vec<&str> = line.split('\t').collect();
        let (id, pattern, status, values) = (col[0], col[2], col[3], col[4]);
        let (is_revoked, valid_until) = (col[5], col[6]);
        if is_revoked == "true" {
            revoked += 1;
            continue;
        }
        let mut values: Vec<(String, String)> = serde_json::from_str(values).unwrap();
        if let Some(addr) = pattern
            .strip_prefix(sender)
            .and_then(|r| r.strip_suffix("']"))
        {
            values = vec![("email".into(), addr.into())];
        } else if status != "ok" {
            refused.push(id.into());
            continue;
        }
        if values.iter().any(|(t, _)| !held.contains(&t.as_str())) {
            refused.push(id.into());
        }
        let until = feeds::parse::time::parse_time(valid_until);
        if until.is_some_and(|t| t <= now) {
            // Expiry is counted per held value (an OR of two hashes is two entries).
            expired += values
                .iter()
                .filter(|(t, _)| held.contains(&t.as_str()))
                .count();
            continue;
        }
        for (itype, v) in values {
            if held.contains(&itype.as_str()) {
                let v = if itype.contains("sha") || itype == "md5" {
                    v.to_ascii_lowercase()
                } else {
                    v
                };
                expected.push(v);
            }
        }
    }
    expected.sort();
    assert!(expected.len() >= 5, "{expected:?}");

    let cfg = Config::from_toml_str(&format!(
        "[[feed]]\nname = \"corpus-taxii\"\nsource = \"{}\"\nformat = \"taxii\"\n\
         auth_header = \"Authorization: Basic dHJhd2w6dHJhd2wtdGVzdC1vbmx5\"\nretries = 0\n",
        server.objects_url
    ))
    .unwrap();
    let r = run(&cfg, dir.path());
    let f = &r.feeds[0];
    assert_eq!(f.status, FeedStatus::Fetched, "{}", r.render_text());
    let pull = f.pull.unwrap();
    assert_eq!((pull.requests, pull.received), (5, 21));
    assert_eq!(f.revoked, revoked);
    assert_eq!(f.expired, expired);
    assert_eq!(f.rejected, refused.len(), "{:?}", f.reject_samples);
    for r in &f.reject_samples {
        assert!(
            refused.iter().any(|id| r.reason.starts_with(id.as_str())),
            "{r:?}"
        );
    }
    let mut got: Vec<String> = entries(dir.path())
        .into_iter()
        .filter(|i| !i.derived)
        .map(|i| i.value)
        .collect();
    got.sort();
    assert_eq!(got, expected);
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A TAXII server of our own for what medallion never does: `more` without `next` (paging
/// by `X-TAXII-Date-Added-Last`), and answers a server must not give. `answer` maps the
/// request's query to (status, `X-TAXII-Date-Added-Last`, body).
fn scripted_server(
    answer: impl Fn(&str) -> (u16, Option<&'static str>, String) + Send + 'static,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api1/collections/c/objects/",
        listener.local_addr().unwrap()
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
            }
            let query = request
                .split(' ')
                .nth(1)
                .and_then(|p| p.split_once('?'))
                .map(|(_, q)| q.to_string())
                .unwrap_or_default();
            log.lock().unwrap().push(query.clone());
            let (status, last, body) = answer(&query);
            let header = last.map_or(String::new(), |l| {
                format!("X-TAXII-Date-Added-Last: {l}\r\n")
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/taxii+json;version=2.1\r\n\
                 {header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

#[test]
fn paging_without_next_follows_the_date_added_header() {
    let dir = tempfile::tempdir().unwrap();
    let page = |more: bool, o: Value| json!({"more": more, "objects": [o]}).to_string();
    let (url, seen) = scripted_server(move |q| {
        if q.contains("added_after=2024-02-01") {
            let o = indicator(2, "[domain-name:value = 'second.example']", json!({}));
            (200, Some("2024-02-02T00:00:00.000Z"), page(false, o))
        } else {
            let o = indicator(1, "[domain-name:value = 'first.example']", json!({}));
            (200, Some("2024-02-01T00:00:00.000Z"), page(true, o))
        }
    });
    let r = run(&config(&url, BASIC), dir.path());
    assert_eq!(r.feeds[0].pull.unwrap().requests, 2, "{}", r.render_text());
    let e = entries(dir.path());
    assert!(find(&e, "first.example").is_some() && find(&e, "second.example").is_some());
    let seen = seen.lock().unwrap();
    assert!(
        seen[1].contains("added_after=2024-02-01T00%3A00%3A00.000Z"),
        "{seen:?}"
    );
}

#[test]
fn a_server_that_misbehaves_fails_the_feed_and_keeps_its_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mode = std::sync::Arc::new(std::sync::Mutex::new(0u8));
    let m = mode.clone();
    let (url, _) = scripted_server(move |_| {
        let o = indicator(1, "[domain-name:value = 'kept.example']", json!({}));
        match *m.lock().unwrap() {
            0 => (
                200,
                None,
                json!({"more": false, "objects": [o]}).to_string(),
            ),
            // `more` with neither `next` nor the header: no way to go on.
            1 => (200, None, json!({"more": true, "objects": []}).to_string()),
            // The same date again: paging would never end.
            2 => (
                200,
                Some("2024-01-01T00:00:00.000Z"),
                json!({"more": true}).to_string(),
            ),
            3 => (200, None, "<html>maintenance</html>".to_string()),
            _ => (200, None, json!({"objects": {"not": "a list"}}).to_string()),
        }
    });
    let cfg = config(&url, BASIC);
    run(&cfg, dir.path());
    for (n, says) in [
        (1u8, "neither `next` nor X-TAXII-Date-Added-Last"),
        (2, "does not advance"),
        (3, "not a TAXII 2.1 envelope"),
        (4, "`objects` is not an array"),
    ] {
        *mode.lock().unwrap() = n;
        let r = run(&cfg, dir.path());
        let FeedStatus::Failed { reason } = &r.feeds[0].status else {
            panic!("{n}: {:?}", r.feeds[0].status)
        };
        assert!(reason.contains(says), "{n}: {reason}");
        assert!(
            find(&entries(dir.path()), "kept.example").is_some(),
            "{n}: the last good entries stay"
        );
    }
}

/// The merge needs a store in id order, which every store trawl writes is: one that is not
/// (hand-edited, or not trawl's) is set aside and the collection pulled afresh, without the
/// cursor, into a store in id order; one that is not JSON fails the feed, naming the file.
#[test]
fn a_store_out_of_id_order_is_pulled_afresh_and_a_damaged_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = scripted_server(move |_| {
        let objects = [
            indicator(3, "[domain-name:value = 'three.example']", json!({})),
            indicator(1, "[domain-name:value = 'one.example']", json!({})),
        ];
        let body = json!({"more": false, "objects": objects}).to_string();
        (200, Some("2024-02-01T00:00:00.000Z"), body)
    });
    let store = feeds::taxii::store_path(&dir.path().join("data"), "taxii-test");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    let unsorted = json!({"x_trawl_source": url, "x_trawl_added_after": "2024-01-15T00:00:00Z",
    "objects": [
        indicator(9, "[domain-name:value = 'nine.example']", json!({})),
        indicator(2, "[domain-name:value = 'two.example']", json!({})),
    ]});
    std::fs::write(&store, unsorted.to_string()).unwrap();
    let r = run(&config(&url, BASIC), dir.path());
    assert_eq!(
        r.feeds[0].status,
        FeedStatus::Fetched,
        "{}",
        r.render_text()
    );
    assert!(
        !seen.lock().unwrap()[0].contains("added_after"),
        "pulled afresh: {seen:?}"
    );
    let e = entries(dir.path());
    assert!(find(&e, "one.example").is_some() && find(&e, "three.example").is_some());
    assert!(
        find(&e, "nine.example").is_none(),
        "the set-aside store is gone"
    );
    let kept: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    let ids: Vec<&str> = kept["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "indicator--00000000-0000-4000-8000-000000000001",
            "indicator--00000000-0000-4000-8000-000000000003"
        ]
    );
    assert_eq!(kept["x_trawl_added_after"], "2024-02-01T00:00:00.000Z");
    // The next pull merges with it from the cursor.
    run(&config(&url, BASIC), dir.path());
    assert!(seen.lock().unwrap()[1].contains("added_after=2024-02-01"));

    std::fs::write(&store, br#"{"objects":[{"id":"indicator--1"},"#).unwrap();
    let r = run(&config(&url, BASIC), dir.path());
    let FeedStatus::Failed { reason } = &r.feeds[0].status else {
        panic!("{:?}", r.feeds[0].status)
    };
    assert!(
        reason.contains(&store.display().to_string()) && reason.contains("pull afresh"),
        "{reason}"
    );
    assert!(find(&entries(dir.path()), "one.example").is_some());
}

/// An indicator without an `id` has nothing to merge by: counted as skipped, its
/// neighbours on the page kept.
#[test]
fn an_indicator_without_an_id_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = crate::common::Server::start("/api1/collections/c/objects/");
    let indicator = |i: usize| {
        json!({
            "type": "indicator", "spec_version": "2.1",
            "id": format!("indicator--00000000-0000-4000-8000-{i:012}"),
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "pattern": format!("[domain-name:value = 'host-{i}.bad.example']"),
            "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
        })
    };
    let mut no_id = indicator(1);
    no_id.as_object_mut().unwrap().remove("id");
    let page = json!({"more": false, "objects": [indicator(0), no_id, indicator(2)]});
    server.serve(&serde_json::to_vec(&page).unwrap(), "\"p\"");
    let mut feed = feeds::config::FeedConfig::new("no-id", &server.url);
    feed.format = feeds::config::Format::Taxii;
    feed.retries = Some(0);
    let sorter = feeds::runs::Sorter::new(4 << 20, Some(&data.join("tmp")));
    let pulled = feeds::taxii::pull(&feed, &data, sorter, &NoProgress).unwrap();
    assert_eq!((pulled.received, pulled.skipped), (3, 1));
    let store: Value = serde_json::from_slice(pulled.bytes.as_ref()).unwrap();
    let ids: Vec<&str> = store["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}
