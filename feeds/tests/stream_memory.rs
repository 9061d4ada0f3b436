//! Large feeds are parsed in bounded memory (ARCHITECTURE.md §2.1.1): a STIX bundle, a
//! JSON array, the same wrapped in an object, CIF JSON, a MISP event, CSV and JSON lines, each of hundreds of thousands of entries, parsed by
//! `parse_feed_chunks` (what `trawl update` calls) with a peak of live heap far below
//! holding the document as a `serde_json::Value` tree, or every record at once, and with
//! exactly the records and counts of the whole parse.
//!
//! Its own test binary: the global allocator below counts live bytes, and the one test
//! runs the cases one after another so nothing else allocates meanwhile.

use feeds::config::{FeedConfig, Format};
use feeds::parse::{parse_feed, parse_feed_chunks, FeedRecord, ParsedFeed};

#[path = "common/heap.rs"]
mod heap;
use heap::peak_of;

/// Bytes of lines parsed at a time here (`trawl update` reads 16 MiB at a time).
const CHUNK: usize = 256 << 10;

fn feed(format: Format) -> FeedConfig {
    FeedConfig {
        name: "big".into(),
        source: "big".into(),
        format,
        ..FeedConfig::default()
    }
}

/// The chunked parse: records and counts gathered, the records kept only as values.
fn chunked(body: &[u8], feed: &FeedConfig) -> (Vec<FeedRecord>, ParsedFeed) {
    let mut records = Vec::new();
    let mut counts = ParsedFeed::default();
    parse_feed_chunks(body, feed, CHUNK, |p| {
        counts.format = p.format;
        counts.rejected += p.rejected;
        counts.skipped += p.skipped;
        counts.revoked += p.revoked;
        counts.rejects.extend(p.rejects);
        records.extend(p.records);
    });
    (records, counts)
}

/// Parse `body` chunked (peak measured while each batch is dropped at once) and whole;
/// the chunked peak must be below `1 / factor` of `baseline`'s, and the results equal.
fn check(
    name: &str,
    body: &[u8],
    format: Format,
    n: usize,
    baseline: impl FnOnce() -> usize,
) -> (Vec<FeedRecord>, ParsedFeed) {
    let feed = feed(format);
    let ((), streamed, _) = peak_of(|| {
        let mut seen = 0;
        parse_feed_chunks(body, &feed, CHUNK, |p| seen += p.records.len());
        assert_eq!(seen, n, "{name}: records");
    });
    let held = baseline();
    eprintln!(
        "{name}: {} bytes, peak {streamed} streamed, {held} held whole",
        body.len()
    );
    assert!(
        streamed * 4 < held,
        "{name}: streamed peak {streamed} is not far below {held}"
    );
    let (records, counts) = chunked(body, &feed);
    let whole = parse_feed(body, &feed);
    assert_eq!(records.len(), whole.records.len(), "{name}");
    assert!(records == whole.records, "{name}: records differ");
    assert_eq!(
        (
            counts.format,
            counts.rejected,
            counts.skipped,
            counts.revoked
        ),
        (whole.format, whole.rejected, whole.skipped, whole.revoked),
        "{name}"
    );
    assert_eq!(
        counts.rejects.get(..whole.rejects.len()),
        Some(&whole.rejects[..])
    );
    (records, counts)
}

fn value_tree(body: &[u8]) -> usize {
    peak_of(|| serde_json::from_slice::<serde_json::Value>(body).map(drop)).1
}

#[test]
fn big_documents_parse_in_bounded_memory_with_the_whole_parses_result() {
    let n = 40_000;
    // STIX: the markings and the identity after the objects that use them; a few
    // revoked and broken indicators.
    let mut stix = String::from(r#"{"type":"bundle","id":"bundle--1","objects":["#);
    let mut want = 0;
    for i in 0..n {
        let revoked = i % 1000 == 7;
        let broken = i % 1000 == 8;
        want += usize::from(!revoked && !broken);
        stix.push_str(&format!(
            r#"{{"type":"indicator","spec_version":"2.1","id":"indicator--{i:08}","created":"2026-01-01T00:00:00Z","modified":"2026-01-01T00:00:00Z","name":"bad host {i}","pattern":"{}","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z","revoked":{revoked},"labels":["c2","malware"],"created_by_ref":"identity--a","object_marking_refs":["marking-definition--x"]}},"#,
            if broken { "[nonsense".to_string() } else { format!("[domain-name:value = 'h{i}.example.com']") }
        ));
    }
    stix.push_str(r#"{"type":"identity","id":"identity--a","name":"Acme CERT"},"#);
    stix.push_str(
        r#"{"type":"marking-definition","id":"marking-definition--x","name":"TLP:AMBER"}]}"#,
    );
    let body = stix.into_bytes();
    let (records, counts) = check("stix", &body, Format::Stix2, want, || value_tree(&body));
    assert_eq!((counts.revoked, counts.rejected), (n / 1000, n / 1000));
    assert_eq!(records[0].value, "h0.example.com");
    let meta = records[0].meta.as_deref().cloned().unwrap_or_default();
    assert_eq!(meta.provider.as_deref(), Some("Acme CERT"));
    assert_eq!(meta.tlp, Some(matcher::Tlp::Amber));

    // A JSON array of objects (the field found on the first).
    let mut arr = String::from("[");
    for i in 0..n {
        if i > 0 {
            arr.push(',');
        }
        arr.push_str(&format!(
            r#"{{"indicator":"198.51.{}.{}","type":"IPv4","first_seen":"2026-01-02","tags":["scan"],"comment":"entry {i}"}}"#,
            i / 256 % 256,
            i % 256
        ));
    }
    arr.push(']');
    let body = arr.into_bytes();
    check("json array", &body, Format::Json, n, || value_tree(&body));

    // The same list wrapped in an object, and as CIF JSON.
    let wrapped = format!(
        r#"{{"count":{n},"data":{}}}"#,
        String::from_utf8_lossy(&body)
    );
    let wrapped = wrapped.into_bytes();
    check("json wrapper", &wrapped, Format::Json, n, || {
        value_tree(&wrapped)
    });
    let mut cif = String::from(r#"{"status":"success","data":["#);
    for i in 0..n {
        if i > 0 {
            cif.push(',');
        }
        cif.push_str(&format!(
            r#"{{"indicator":"c{i}.example.net","itype":"fqdn","confidence":7,"tags":["phishing"],"provider":"cif.example","reporttime":"2026-01-02T00:00:00Z","tlp":"green"}}"#
        ));
    }
    cif.push_str("]}");
    let cif = cif.into_bytes();
    check("cif", &cif, Format::Cif, n, || value_tree(&cif));

    // One MISP event of many attributes (half in objects), its tags after them.
    let mut misp =
        String::from(r#"{"Event":{"info":"big event","threat_level_id":"2","Attribute":["#);
    for i in 0..n / 2 {
        if i > 0 {
            misp.push(',');
        }
        misp.push_str(&format!(
            r#"{{"type":"domain","category":"Network activity","to_ids":true,"uuid":"5f0c{i:08}-0000-4000-8000-000000000000","timestamp":"1767225600","value":"m{i}.example.com","comment":"seen"}}"#
        ));
    }
    misp.push_str(r#"],"Object":["#);
    for i in 0..n / 2 {
        if i > 0 {
            misp.push(',');
        }
        misp.push_str(&format!(
            r#"{{"name":"url","Attribute":[{{"type":"url","to_ids":true,"uuid":"6f0c{i:08}-0000-4000-8000-000000000000","value":"http://o{i}.example.org/x"}}]}}"#
        ));
    }
    misp.push_str(r#"],"Tag":[{"name":"tlp:amber"},{"name":"malware"}]}}"#);
    let misp = misp.into_bytes();
    let (records, _) = check("misp", &misp, Format::Misp, n, || value_tree(&misp));
    let meta = records[n - 1].meta.as_deref().cloned().unwrap_or_default();
    assert_eq!(meta.tlp, Some(matcher::Tlp::Amber));
    assert_eq!(meta.tags, vec!["malware".to_string()]);

    // CSV with a header and JSON lines: against every record held at once.
    let mut csv = String::from("# a comment\nfirst_seen,url,threat,tags\n");
    let mut jsonl = String::new();
    for i in 0..n {
        csv.push_str(&format!(
            "2026-01-01 00:00:00,http://h{i}.example.net/p/{i},malware_download,\"exe,x\"\n"
        ));
        jsonl.push_str(&format!(r#"{{"ioc":"h{i}.example.org","tags":"a"}}"#));
        jsonl.push('\n');
    }
    csv.push_str("2026-01-01,\"broken\n");
    let csv = csv.into_bytes();
    check("csv", &csv, Format::Csv, n, || {
        peak_of(|| parse_feed(&csv, &feed(Format::Csv)).records.len()).1
    });
    let jsonl = jsonl.into_bytes();
    check("json lines", &jsonl, Format::Jsonl, n, || {
        peak_of(|| parse_feed(&jsonl, &feed(Format::Jsonl)).records.len()).1
    });
}
