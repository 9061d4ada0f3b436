//! A large fetched body goes to a spool file in `DATA/tmp` and is parsed mapped, never
//! held in memory (ARCHITECTURE.md §2.1.1), over real HTTP from 127.0.0.1: plain and
//! gzip bodies, conditional GET, `max_bytes` and the spool's disk bound still hold.
//!
//! Its own test binary: the global allocator below counts live bytes, and the one test
//! runs the cases one after another so nothing else allocates meanwhile.

use feeds::config::FeedConfig;
use feeds::fetch::{fetch_spooled, FetchError, Fetched, Spool};
use feeds::NoProgress;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;

#[path = "common/heap.rs"]
mod heap;
use heap::peak_of;

/// An HTTP/1.1 server on 127.0.0.1 answering every GET with `body` (sent from the shared
/// buffer, never copied: the peak measured is the client's), `ETag: "big"` and 304 to
/// `If-None-Match: "big"`; gzip-encoded bodies say so. It stops with the test process.
fn serve(body: Arc<Vec<u8>>, gzip: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/big.txt", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut line = String::with_capacity(1024);
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let Ok(read) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read);
            let mut not_modified = false;
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end().is_empty() {
                    break;
                }
                not_modified |= line.to_ascii_lowercase().trim_end() == "if-none-match: \"big\"";
            }
            let head = if not_modified {
                "HTTP/1.1 304 Not Modified\r\nETag: \"big\"\r\nConnection: close\r\n\r\n"
                    .to_string()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nETag: \"big\"\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                    body.len(),
                    if gzip { "Content-Encoding: gzip\r\n" } else { "" }
                )
            };
            let _ = stream.write_all(head.as_bytes());
            if !not_modified {
                let _ = stream.write_all(&body);
            }
            let _ = stream.flush();
        }
    });
    url
}

fn feed(url: &str, max_bytes: u64) -> FeedConfig {
    let mut f = FeedConfig::new("big", url);
    f.retries = Some(0);
    f.max_bytes = Some(feeds::config::ByteSize(max_bytes));
    f
}

/// Entries in the spool directory: none, ever (its files are unnamed).
fn entries(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn large_bodies_are_spooled_to_disk_and_parsed_mapped() {
    let lines = 1_500_000;
    let mut text = Vec::with_capacity(lines * 24);
    for i in 0..lines {
        writeln!(text, "h{i}.spooled.example").unwrap();
    }
    let size = text.len();
    let text = Arc::new(text);
    let data = tempfile::tempdir().unwrap();
    let tmp = data.path().join("tmp");
    // Bodies over 1 MiB go to the file (the default is 8 MiB): the peak is that
    // threshold's (the buffer before the switch), whatever the body's size.
    let spool = Spool {
        threshold: 1 << 20,
        ..Spool::in_dir(tmp.clone())
    };

    // A plain body of 30 MB: in the spool file, not in memory.
    let url = serve(text.clone(), false);
    let f = feed(&url, 64 << 20);
    let loc = f.location(std::path::Path::new("."));
    let (fetched, peak, _) = peak_of(|| fetch_spooled(&f, &loc, None, &spool, &NoProgress));
    let Ok(Fetched::Body { bytes, validators }) = fetched else {
        panic!("expected a body")
    };
    eprintln!("plain: {size} bytes, peak {peak} live heap while fetching");
    assert!(bytes.is_spooled());
    assert!(peak < 4 << 20, "fetching held {peak} bytes of heap");
    assert!(bytes[..] == text[..], "the spooled body is the served one");
    assert_eq!(entries(&tmp), 0, "spool files are unnamed");
    // Parsed from the mapping, a chunk at a time, every line.
    let mut seen = 0;
    feeds::parse::parse_feed_chunks(&bytes, &f, 1 << 20, |p| seen += p.records.len());
    assert_eq!(seen, lines);
    drop(bytes);

    // Conditional GET still answers 304.
    let again = fetch_spooled(&f, &loc, Some(&validators), &spool, &NoProgress).unwrap();
    assert!(matches!(again, Fetched::NotModified));
    assert_eq!(validators.etag.as_deref(), Some("\"big\""));

    // gzip: decompressed into the spool file as it arrives.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&text).unwrap();
    let gz = Arc::new(gz.finish().unwrap());
    let gz_url = serve(gz.clone(), true);
    let f = feed(&gz_url, 64 << 20);
    let loc = f.location(std::path::Path::new("."));
    let (fetched, peak, _) = peak_of(|| fetch_spooled(&f, &loc, None, &spool, &NoProgress));
    let Ok(Fetched::Body { bytes, .. }) = fetched else {
        panic!("expected a body")
    };
    eprintln!("gzip: {} bytes in, {size} out, peak {peak}", gz.len());
    assert!(bytes.is_spooled());
    assert!(peak < 4 << 20, "fetching held {peak} bytes of heap");
    assert!(bytes[..] == text[..]);
    drop(bytes);

    // max_bytes holds on the decompressed body, spooled or not.
    let f = feed(&gz_url, 10 << 20);
    let err = fetch_spooled(&f, &loc, None, &spool, &NoProgress).unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");

    // The disk bound: past it, a clear error naming the directory and what to do.
    let small = Spool {
        disk: 4 << 20,
        ..spool.clone()
    };
    let f = feed(&url, 64 << 20);
    let err = fetch_spooled(&f, &loc, None, &small, &NoProgress).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::Spool { .. }), "{text}");
    assert!(
        text.contains(&tmp.display().to_string()) && text.contains("max_bytes"),
        "{text}"
    );
    // The refused body's bytes were given back: a fetch within the bound works.
    let ok = Spool {
        disk: 40 << 20,
        ..spool.clone()
    };
    let fetched = fetch_spooled(&f, &loc, None, &ok, &NoProgress).unwrap();
    assert!(matches!(fetched, Fetched::Body { ref bytes, .. } if bytes.is_spooled()));

    // A small body stays in memory.
    let small_url = serve(Arc::new(b"one.example\n".to_vec()), false);
    let f = feed(&small_url, 64 << 20);
    let loc = f.location(std::path::Path::new("."));
    let Fetched::Body { bytes, .. } = fetch_spooled(&f, &loc, None, &spool, &NoProgress).unwrap()
    else {
        panic!("expected a body")
    };
    assert!(!bytes.is_spooled());
    assert_eq!(&bytes[..], b"one.example\n");
}
