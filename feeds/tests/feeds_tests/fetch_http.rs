//! Fetching over real HTTP from a local server: conditional GET, errors and retries,
//! gzip, auth header from the environment.

use crate::common::{gzip, Server};
use feeds::config::FeedConfig;
use feeds::fetch::{fetch, FetchError, Fetched, Validators};
use feeds::NoProgress;

fn feed(url: &str) -> FeedConfig {
    let mut f = FeedConfig::new("http-feed", url);
    f.retries = Some(0);
    f
}

#[test]
fn conditional_get_gives_not_modified() {
    let srv = Server::start("/drop.txt");
    srv.serve(b"1.2.3.0/24 ; SBL1\n", "\"v1\"");
    let f = feed(&srv.url);
    let loc = f.location(std::path::Path::new("."));
    let Fetched::Body { bytes, validators } = fetch(&f, &loc, None, &NoProgress).unwrap() else {
        panic!("expected a body")
    };
    assert_eq!(bytes, b"1.2.3.0/24 ; SBL1\n");
    assert_eq!(validators.etag.as_deref(), Some("\"v1\""));
    assert!(validators.last_modified.is_some());
    let again = fetch(&f, &loc, Some(&validators), &NoProgress).unwrap();
    assert!(matches!(again, Fetched::NotModified));
    let reqs = srv.requests();
    assert!(
        reqs[1].iter().any(|h| h == "if-none-match: \"v1\""),
        "{:?}",
        reqs[1]
    );
    assert!(reqs[1].iter().any(|h| h.starts_with("if-modified-since: ")));
    // A changed body is fetched again.
    srv.serve(b"5.6.7.0/24 ; SBL2\n", "\"v2\"");
    let Fetched::Body { bytes, .. } = fetch(&f, &loc, Some(&validators), &NoProgress).unwrap()
    else {
        panic!("expected a body")
    };
    assert_eq!(bytes, b"5.6.7.0/24 ; SBL2\n");
}

#[test]
fn server_errors_retry_then_fail() {
    let srv = Server::start("/x");
    srv.serve(b"a", "\"e\"");
    srv.fail_with(503);
    let mut f = feed(&srv.url);
    f.retries = Some(2);
    let loc = f.location(std::path::Path::new("."));
    let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
    assert!(
        matches!(err, FetchError::Status { status: 503, .. }),
        "{err}"
    );
    assert_eq!(srv.requests().len(), 3, "first attempt + 2 retries");
    // 404 is not retried.
    srv.fail_with(404);
    let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
    assert!(matches!(err, FetchError::Status { status: 404, .. }));
    assert_eq!(srv.requests().len(), 4);
}

#[test]
fn connection_refused_is_a_transport_error() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = feed(&format!("http://127.0.0.1:{port}/feed"));
    let loc = f.location(std::path::Path::new("."));
    let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
    assert!(matches!(err, FetchError::Transport { .. }), "{err}");
}

#[test]
fn gzip_bodies_and_auth_header() {
    let srv = Server::start("/feed.gz");
    srv.serve(&gzip(b"evil.example\n"), "\"g\"");
    std::env::set_var("TRAWL_TEST_TOKEN", "s3cret");
    let mut f = feed(&srv.url);
    f.auth_header = Some("Authorization: Bearer ${TRAWL_TEST_TOKEN}".into());
    let loc = f.location(std::path::Path::new("."));
    let Fetched::Body { bytes, .. } =
        fetch(&f, &loc, Some(&Validators::default()), &NoProgress).unwrap()
    else {
        panic!()
    };
    assert_eq!(bytes, b"evil.example\n");
    assert!(srv.requests()[0]
        .iter()
        .any(|h| h == "authorization: bearer s3cret"));
    f.auth_header = Some("X-Key: ${TRAWL_TEST_UNSET_VAR}".into());
    let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("TRAWL_TEST_UNSET_VAR"));
}

#[test]
fn zip_and_gzip_files() {
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("f.txt.gz");
    std::fs::write(&gz, gzip(b"1.2.3.4\n")).unwrap();
    assert_eq!(
        feeds::fetch::read_file(&gz, "f", 1 << 20, &NoProgress).unwrap(),
        b"1.2.3.4\n"
    );
    let zp = dir.path().join("f.zip");
    {
        let file = std::fs::File::create(&zp).unwrap();
        let mut z = zip::ZipWriter::new(file);
        z.start_file::<_, ()>("a.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"a.example").unwrap();
        z.start_file::<_, ()>("b.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut z, b"b.example\n").unwrap();
        z.finish().unwrap();
    }
    assert_eq!(
        feeds::fetch::read_file(&zp, "f", 1 << 20, &NoProgress).unwrap(),
        b"a.example\nb.example\n"
    );
    // A damaged gzip is an error, not a panic.
    std::fs::write(&gz, &gzip(b"1.2.3.4\n")[..10]).unwrap();
    assert!(feeds::fetch::read_file(&gz, "f", 1 << 20, &NoProgress).is_err());
}

#[test]
fn redirects_only_to_http_and_bounded() {
    // A good redirect (absolute, to another server) is followed.
    let real = Server::start("/real.txt");
    real.serve(b"evil.example\n", "\"r\"");
    let hop = Server::start("/feed");
    hop.redirect_to(&real.url);
    let f = feed(&hop.url);
    let loc = f.location(std::path::Path::new("."));
    let Fetched::Body { bytes, .. } = fetch(&f, &loc, None, &NoProgress).unwrap() else {
        panic!("expected a body")
    };
    assert_eq!(bytes, b"evil.example\n");
    // Anything but http(s), and loops, are this feed's failure, never a panic.
    for target in [
        "file:///etc/passwd".to_string(),
        "data:text/plain,evil.example".to_string(),
        "gopher://127.0.0.1/x".to_string(),
        "nosuchscheme:whatever".to_string(),
        "http://[::1".to_string(),
        hop.url.clone(),
    ] {
        hop.redirect_to(&target);
        let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
        assert!(
            matches!(err, FetchError::Redirect { .. }),
            "{target}: {err}"
        );
        assert!(err.to_string().contains("redirect"), "{target}: {err}");
    }
    // The loop stopped after a bounded number of hops.
    let before = hop.requests().len();
    let _ = fetch(&f, &loc, None, &NoProgress);
    let hops = hop.requests().len() - before;
    assert!(
        hops as u32 == feeds::fetch::MAX_REDIRECTS + 1,
        "{hops} requests"
    );
}

#[test]
fn bombs_and_oversized_bodies_fail_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 1 << 20;
    let zeros = vec![0u8; 8 << 20];
    let gz = dir.path().join("bomb.gz");
    std::fs::write(&gz, gzip(&zeros)).unwrap();
    let zp = dir.path().join("bomb.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file::<_, ()>("a.txt", opts).unwrap();
        std::io::Write::write_all(&mut z, &zeros).unwrap();
        z.finish().unwrap();
    }
    let plain = dir.path().join("big.txt");
    std::fs::write(&plain, &zeros[..cap as usize + 1]).unwrap();
    for p in [&gz, &zp, &plain] {
        let err = feeds::fetch::read_file(p, "f", cap, &NoProgress).unwrap_err();
        assert!(
            matches!(err, FetchError::TooLarge { limit, .. } if limit == cap),
            "{}: {err}",
            p.display()
        );
    }
    // Exactly at the cap is fine.
    std::fs::write(&plain, &zeros[..cap as usize]).unwrap();
    assert_eq!(
        feeds::fetch::read_file(&plain, "f", cap, &NoProgress)
            .unwrap()
            .len() as u64,
        cap
    );
    let err = feeds::fetch::read_file(std::path::Path::new("/dev/zero"), "f", cap, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, FetchError::NotAFile { .. }), "{err}");
    let err = feeds::fetch::read_file(dir.path(), "f", cap, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("a directory"), "{err}");
    // Over HTTP, with and without a Content-Length announcing it.
    let srv = Server::start("/big.gz");
    srv.serve(&gzip(&zeros), "\"b\"");
    let mut f = feed(&srv.url);
    f.max_bytes = Some(feeds::config::ByteSize(cap));
    let loc = f.location(std::path::Path::new("."));
    let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
    srv.serve(&zeros[..cap as usize + 10], "\"c\"");
    let err = fetch(&f, &loc, None, &NoProgress).unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// The body of the `feed_body` fuzz target: any body, plain or with a gzip or zip magic,
    /// decodes to at most the cap or fails, never panics.
    #[test]
    fn decode_body_never_panics_nor_exceeds_the_cap(
        magic in proptest::sample::select(vec![&b""[..], b"\x1f\x8b\x08\x00", b"PK\x03\x04"]),
        rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
    ) {
        let body = [magic, &rest[..]].concat();
        if let Ok(out) = feeds::fetch::decode_body(&body, 256) {
            proptest::prop_assert!(out.len() <= 256);
        }
    }
}
