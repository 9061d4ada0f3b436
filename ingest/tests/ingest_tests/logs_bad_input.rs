//! Bad input is normal input: garbage, huge lines, invalid UTF-8, NULs, truncated and
//! concatenated compressed streams. Plus the proptest that covers every `log_*` fuzz target.

use ingest::logs::{fuzz_logformat, fuzz_parse, open_input, parser_for, LogFormat};
use proptest::prelude::*;
use std::borrow::Cow;
use std::io::{Read, Write};

const SQUID: &[u8] = b"1157689320.327   2864 10.105.21.199 TCP_MISS/200 10182 GET http://www.goonernews.com/x badeyek DIRECT/175.16.199.61 text/html\n";

fn zeek_head() -> Vec<u8> {
    b"#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n#fields\tts\tid.orig_h\tquery\tanswers\n#types\ttime\taddr\tstring\tvector[string]\n".to_vec()
}

#[test]
fn garbage_lines_are_errors_not_panics() {
    let garbage: [&[u8]; 6] = [
        b"\x00\x01\x02\xff\xfe binary \x00 junk",
        b"{{{{{{{{",
        b"[[[[ \"\"\" ]]]]",
        b"client #",
        b"1.2 3 4 5",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ];
    let head = zeek_head();
    for f in LogFormat::ALL {
        let p = parser_for(f, &head, None).unwrap();
        for g in garbage {
            // Must not panic; most are errors (Raw accepts everything).
            let _ = p.parse(g);
        }
    }
    let squid = parser_for(LogFormat::Squid, b"", None).unwrap();
    assert_eq!(squid.parse(garbage[0]).unwrap_err().reason, "bad timestamp");
    let eve = parser_for(LogFormat::SuricataEve, b"", None).unwrap();
    assert_eq!(eve.parse(garbage[1]).unwrap_err().reason, "invalid json");
    let bind = parser_for(LogFormat::Bind, b"", None).unwrap();
    assert_eq!(
        bind.parse(garbage[3]).unwrap_err().reason,
        "bad client address"
    );
    assert_eq!(
        bind.parse(garbage[0]).unwrap_err().reason,
        "unrecognised line"
    );
    let clf = parser_for(LogFormat::Combined, b"", None).unwrap();
    assert_eq!(clf.parse(garbage[0]).unwrap_err().reason, "no timestamp");
}

#[test]
fn one_megabyte_lines() {
    let head = zeek_head();
    let mut long_url = SQUID[..SQUID.len() - 1].to_vec();
    let pos = long_url.windows(3).position(|w| w == b"/x ").unwrap() + 2;
    long_url.splice(pos..pos, std::iter::repeat_n(b'a', 1 << 20));
    let blob = vec![b'A'; 1 << 20];
    for f in LogFormat::ALL {
        let p = parser_for(f, &head, None).unwrap();
        let _ = p.parse(&blob);
        let _ = p.parse(&long_url);
    }
    let p = parser_for(LogFormat::Squid, b"", None).unwrap();
    let o = p.parse(&long_url).unwrap().unwrap();
    assert_eq!(
        o.url_full.as_ref().unwrap().len(),
        "http://www.goonernews.com/x".len() + (1 << 20)
    );
    assert!(
        matches!(o.url_full, Some(Cow::Borrowed(_))),
        "no copy of a long field"
    );
}

/// Decision: invalid UTF-8 does not reject a line. Each field is decoded on its own,
/// borrowed when valid, lossy (U+FFFD, owned) when not; the caller keeps the raw bytes.
#[test]
fn invalid_utf8_fields_are_lossy() {
    let line = b"1157689320.327 1 10.0.0.1 TCP_MISS/200 1 GET http://ex.com/\xff\xfe badeyek DIRECT/1.2.3.4 -";
    let p = parser_for(LogFormat::Squid, b"", None).unwrap();
    let o = p.parse(line).unwrap().unwrap();
    assert_eq!(
        o.url_full.as_deref(),
        Some("http://ex.com/\u{fffd}\u{fffd}")
    );
    assert!(matches!(o.url_full, Some(Cow::Owned(_))));
    assert!(
        matches!(o.http_method, Some(Cow::Borrowed("GET"))),
        "valid fields still borrow"
    );
    assert_eq!(o.url_domain.as_deref(), Some("ex.com"));
    let clf = parser_for(LogFormat::Combined, b"", None).unwrap();
    let o = clf
        .parse(b"1.2.3.4 - - [04/Jan/2020:07:25:02 +0000] \"GET /\xc3\x28 HTTP/1.1\" 200 1 \"-\" \"ua\xff\"")
        .unwrap()
        .unwrap();
    assert_eq!(o.user_agent.as_deref(), Some("ua\u{fffd}"));
    // JSON formats require valid UTF-8 (serde_json): the line is an error, counted.
    let eve = parser_for(LogFormat::SuricataEve, b"", None).unwrap();
    assert_eq!(
        eve.parse(b"{\"event_type\":\"dns\xff\"}")
            .unwrap_err()
            .reason,
        "invalid json"
    );
}

#[test]
fn nuls_and_crlf() {
    let p = parser_for(LogFormat::Squid, b"", None).unwrap();
    let mut crlf = SQUID[..SQUID.len() - 1].to_vec();
    crlf.extend_from_slice(b"\r\n");
    let a = p.parse(&crlf).unwrap().unwrap();
    let b = p.parse(SQUID).unwrap().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.http_status, Some(200));
    let nul = b"1157689320.327\x00 1 10.0.0.1 TCP_MISS/200 1 GET http://ex.com/ - DIRECT/- -";
    assert_eq!(p.parse(nul).unwrap_err().reason, "bad timestamp");
    let z = parser_for(LogFormat::ZeekTsv, &zeek_head(), None).unwrap();
    let o = z.parse(b"1.5\t10.0.0.1\tev\x00il.com\t-").unwrap().unwrap();
    assert_eq!(o.dns_question_name.as_deref(), Some("ev\0il.com"));
    assert_eq!(
        z.parse(b"1.5\t10.0.0.1").unwrap_err().reason,
        "too few fields"
    );
    assert_eq!(
        z.parse(b"x\t10.0.0.1\ta\t-").unwrap_err().reason,
        "bad timestamp"
    );
    // Zeek escapes: \x2c is a comma inside a set element.
    let o = z
        .parse(b"1.5\t10.0.0.1\ta.b\ta\\x2cb.c,1.2.3.4")
        .unwrap()
        .unwrap();
    assert_eq!(o.dns_answers.len(), 2);
    assert_eq!(o.dns_answers[0].data, "a,b.c");
}

#[test]
fn zeek_tsv_without_header_is_a_setup_error() {
    assert!(parser_for(LogFormat::ZeekTsv, b"1.5\tx\n", None).is_err());
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn write_tmp(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn read_all(p: &std::path::Path) -> (Vec<u8>, Option<std::io::Error>) {
    let mut r = open_input(p).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

fn sample(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{i} line of text {}\n", i * 7919).into_bytes())
        .collect()
}

#[test]
fn compressed_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(20_000);
    // plain
    let p = write_tmp(&dir, "plain.log", &data);
    assert_eq!(read_all(&p).0, data);
    // gzip, named without .gz: detected by magic bytes
    let p = write_tmp(&dir, "noext", &gzip(&data));
    assert_eq!(read_all(&p).0, data);
    // multi-member gzip (cat a.gz b.gz)
    let (a, b) = data.split_at(data.len() / 3);
    let mut mm = gzip(a);
    mm.extend(gzip(b));
    let p = write_tmp(&dir, "multi.gz", &mm);
    assert_eq!(read_all(&p).0, data);
    // zstd, and two frames concatenated
    let z = ruzstd::encoding::compress_to_vec(a, ruzstd::encoding::CompressionLevel::Fastest);
    let z2 = ruzstd::encoding::compress_to_vec(b, ruzstd::encoding::CompressionLevel::Fastest);
    let p = write_tmp(&dir, "one.zst", &z);
    assert_eq!(read_all(&p).0, a);
    let mut both = z.clone();
    both.extend(&z2);
    let p = write_tmp(&dir, "two.log", &both);
    let (got, err) = read_all(&p);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(got, data);
    // tiny and empty files
    let p = write_tmp(&dir, "tiny", b"ab");
    assert_eq!(read_all(&p).0, b"ab");
    let p = write_tmp(&dir, "empty", b"");
    assert_eq!(read_all(&p).0, b"");
    assert!(open_input(&dir.path().join("missing")).is_err());
}

#[test]
fn truncated_gzip_gives_the_data_then_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(50_000);
    let gz = gzip(&data);
    let cut = &gz[..gz.len() * 2 / 3];
    let p = write_tmp(&dir, "cut.gz", cut);
    let (got, err) = read_all(&p);
    assert!(err.is_some(), "truncation is reported");
    assert!(!got.is_empty() && got.len() < data.len());
    assert_eq!(
        &data[..got.len()],
        &got[..],
        "what was read is a correct prefix"
    );
    // truncated zstd too
    let z =
        ruzstd::encoding::compress_to_vec(&data[..], ruzstd::encoding::CompressionLevel::Fastest);
    let p = write_tmp(&dir, "cut.zst", &z[..z.len() / 2]);
    let (got, err) = read_all(&p);
    assert!(err.is_some(), "zstd truncation is reported");
    assert_eq!(&data[..got.len()], &got[..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The body of every `log_*` fuzz target, on arbitrary bytes.
    #[test]
    fn any_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        for f in LogFormat::ALL {
            fuzz_parse(f, &data);
        }
        fuzz_logformat(&data);
    }

    /// The body of the `log_logformat` fuzz target on format strings and lines built from
    /// the pieces they are made of.
    #[test]
    fn format_plans_never_panic(
        format in proptest::collection::vec(prop_oneof![
            Just("%ts"), Just("."), Just("%03tu"), Just(" "), Just("%6tr"), Just("%>a"), Just("%>p"),
            Just(":"), Just("%rm"), Just("%ru"), Just("%ssl::>sni"), Just("\""), Just("%{User-Agent}>h"),
            Just("$remote_addr"), Just("$request"), Just("[$time_local]"), Just("$status"), Just("%h"),
            Just("%t"), Just("%r"), Just("%U%q"), Just("%{Host}i"), Just("%zz"), Just("$msec"), Just("%Ss/%03>Hs"),
        ], 0..12),
        line in proptest::collection::vec(prop_oneof![
            Just(&b"1157689320.327 "[..]), Just(&b"10.0.0.1"[..]), Just(&b" "[..]), Just(&b"\""[..]),
            Just(&b"GET"[..]), Just(&b"http://evil.example/a?b"[..]), Just(&b"evil.example:443"[..]),
            Just(&b"[10/Oct/2000:13:55:36 -0700]"[..]), Just(&b"200"[..]), Just(&b"TCP_MISS/200"[..]),
            Just(&b":"[..]), Just(&b"-"[..]), Just(&b"\xff"[..]), Just(&b"."[..]), Just(&b"\\\""[..]),
        ], 0..20),
    ) {
        let mut data = format.concat().into_bytes();
        data.push(b'\n');
        data.extend_from_slice(&line.concat());
        fuzz_logformat(&data);
    }

    /// Lines built from format-ish pieces reach deeper into the parsers.
    #[test]
    fn structured_noise_never_panics(parts in proptest::collection::vec(
        prop_oneof![
            Just(&b"client "[..]), Just(&b"@0x7f "[..]), Just(&b"1.2.3.4#53"[..]), Just(&b" (x.y): "[..]),
            Just(&b"query: "[..]), Just(&b"'a/b/c'"[..]), Just(&b" response: "[..]), Just(&b";"[..]),
            Just(&b"["[..]), Just(&b"]"[..]), Just(&b"\""[..]), Just(&b"04/Jan/2020:07:25:02 +0000"[..]),
            Just(&b"19-Oct-2022 05:34:02.425 "[..]), Just(&b"http://"[..]), Just(&b"[::1]:"[..]),
            Just(&b"1157689320.327 "[..]), Just(&b"TCP_MISS/200 "[..]), Just(&b"{\"ts\":"[..]),
            Just(&b"\"event_type\":\"dns\","[..]), Just(&b"\t"[..]), Just(&b"\\x"[..]), Just(&b"dnsmasq[1]: "[..]),
            Just(&b"reply "[..]), Just(&b" is "[..]), Just(&b"query[A] "[..]), Just(&b", client: "[..]),
            Just(&b"\xff"[..]), Just(&b" "[..]), Just(&b"2021/12/01 13:53:33 "[..]), Just(&b"[Thu Oct 13 12:24:49.880562 2022] "[..]),
        ], 0..24)) {
        let line: Vec<u8> = parts.concat();
        let mut data = b"#separator \\x09\n#fields\tts\tquery\tanswers\n".to_vec();
        data.extend_from_slice(&line);
        for f in LogFormat::ALL {
            fuzz_parse(f, &data);
            fuzz_parse(f, &line);
        }
    }
}
