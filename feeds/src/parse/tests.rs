use super::*;
use crate::config::{Column, FeedConfig, Format};
use matcher::IndicatorType as T;

fn feed(format: Format) -> FeedConfig {
    let mut f = FeedConfig::new("t", "t");
    f.format = format;
    f
}

fn vals(p: &ParsedFeed) -> Vec<&str> {
    p.records.iter().map(|r| r.value.as_str()).collect()
}

#[test]
fn plain_comments_trailing_comments_crlf_bom() {
    let input = b"\xEF\xBB\xBF# header\r\nevil.example # trailing\r\n; semi\r\n\r\n1.2.3.4;\r\n  http://x.example/a#frag\r\n";
    let p = parse_feed(input, &feed(Format::Plain));
    assert_eq!(
        vals(&p),
        vec!["evil.example", "1.2.3.4", "http://x.example/a"]
    );
    assert_eq!(p.records[0].line, 2);
    assert_eq!(p.records[2].line, 6);
    assert_eq!(detect_format(input), Format::Plain);
}

#[test]
fn invalid_utf8_and_nul_lines_are_rejected_with_line_numbers() {
    let input = b"good.example\nbad\xff\xfe.example\nnul\0.example\nlast.example";
    let p = parse_feed(input, &feed(Format::Auto));
    assert_eq!(p.rejected, 1);
    assert_eq!(p.rejects[0].line, 2);
    assert!(p.rejects[0].reason.contains("UTF-8"));
    // The NUL line parses as a raw value; normalisation rejects it later (update tests).
    assert_eq!(
        vals(&p),
        vec!["good.example", "nul\0.example", "last.example"]
    );
}

#[test]
fn ten_megabyte_single_line() {
    let mut big = vec![b'a'; 10 << 20];
    big.extend_from_slice(b".example\nok.example\n");
    for f in [
        Format::Auto,
        Format::Plain,
        Format::Csv,
        Format::Hosts,
        Format::Maltrail,
    ] {
        let p = parse_feed(&big, &feed(f));
        assert!(
            p.records.iter().all(|r| r.value.len() <= MAX_VALUE_LEN),
            "{f}"
        );
        assert!(p.rejected >= 1, "{f}");
        assert_eq!(p.rejects[0].line, 1, "{f}");
    }
    // One 10 MB JSON string value.
    let mut j = b"[{\"url\":\"".to_vec();
    j.extend(std::iter::repeat_n(b'x', 10 << 20));
    j.extend_from_slice(b"\"},{\"url\":\"http://a.example/\"}]");
    let p = parse_feed(&j, &feed(Format::Auto));
    assert_eq!(vals(&p), vec!["http://a.example/"]);
    assert_eq!(p.rejected, 1);
}

#[test]
fn deeply_nested_json_is_one_reject_not_a_stack_overflow() {
    for depth in [200usize, 100_000] {
        let mut j = "[".repeat(depth);
        j.push_str(&"]".repeat(depth));
        for f in [
            Format::Auto,
            Format::Json,
            Format::Stix2,
            Format::Misp,
            Format::Cif,
            Format::Jsonl,
        ] {
            let p = parse_feed(j.as_bytes(), &feed(f));
            assert!(p.records.is_empty(), "{f}");
            assert!(p.rejected >= 1, "{f} depth {depth}");
            assert!(
                p.rejects[0].reason.contains("recursion limit"),
                "{:?}",
                p.rejects[0]
            );
        }
        let nested_obj = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let p = parse_feed(nested_obj.as_bytes(), &feed(Format::Auto));
        assert!(p.records.is_empty() && p.rejected >= 1);
    }
}

#[test]
fn truncated_inputs() {
    let json = br#"[{"url": "http://a.example/"}, {"url": "http://b.exa"#;
    let p = parse_feed(json, &feed(Format::Auto));
    assert_eq!(p.format, Format::Json);
    assert!(p.records.is_empty());
    assert_eq!(p.rejected, 1);
    assert_eq!(p.rejects[0].line, 1);
    let csv = b"a,b\n\"1.2.3.4\",x\n\"5.6.7.8,y\n";
    let p = parse_feed(csv, &feed(Format::Csv));
    assert_eq!(vals(&p), vec!["1.2.3.4"]);
    assert_eq!(p.rejects[0].line, 3);
    assert!(p.rejects[0].reason.contains("unterminated"));
    let rss = b"<rss><channel><item><title>x</title><description>URL: a.example/x</description></item><item><title>tr";
    let p = parse_feed(rss, &feed(Format::Auto));
    assert_eq!(vals(&p), vec!["a.example/x"]);
    assert_eq!(p.rejected, 1);
}

#[test]
fn utf16_is_reported() {
    let p = parse_feed(b"\xFF\xFEa\0b\0", &feed(Format::Auto));
    assert!(p.records.is_empty());
    assert!(p.rejects[0].reason.contains("UTF-16"));
}

#[test]
fn hosts_files() {
    let input = b"127.0.0.1 localhost\n0.0.0.0 evil.example ads.example # c\n::1 ip6-localhost\nnot-an-ip x\n";
    assert_eq!(
        detect_format(b"0.0.0.0 a.example\n0.0.0.0 b.example\n"),
        Format::Hosts
    );
    let p = parse_feed(input, &feed(Format::Hosts));
    assert_eq!(vals(&p), vec!["evil.example", "ads.example"]);
    assert!(p.records.iter().all(|r| r.itype == Some(T::Fqdn)));
    assert_eq!(p.skipped, 2);
    assert_eq!(p.rejects[0].line, 4);
}

#[test]
fn csv_columns_by_name_index_and_map() {
    let input = b"# comment\nid,url,seen,conf,tags\n1,http://a.example/,2024-01-02,7,\"c2, botnet\"\n2,,2024-01-02,7,x\n";
    let mut f = feed(Format::Csv);
    f.column = Some(Column::Name("URL".into()));
    f.map.insert("first_seen".into(), "seen".into());
    f.map.insert("confidence".into(), "4".into());
    f.map.insert("tags".into(), "tags".into());
    f.confidence_scale = Some(10.0);
    let p = parse_feed(input, &f);
    assert_eq!(vals(&p), vec!["http://a.example/"]);
    let m = p.records[0].meta.as_ref().unwrap();
    assert_eq!(m.confidence, Some(70));
    assert_eq!(m.first_seen, Some(1_704_153_600));
    assert_eq!(m.tags, vec!["c2", "botnet"]);
    assert_eq!(p.rejects[0].line, 4);
    f.column = Some(Column::Index(2));
    assert_eq!(parse_feed(input, &f).records.len(), 1);
    f.column = Some(Column::Name("nope".into()));
    let p = parse_feed(input, &f);
    assert!(p.records.is_empty());
    assert!(p.rejects[0].reason.contains("nope"));
}

#[test]
fn tsv_and_custom_delimiter() {
    let mut f = feed(Format::Delimited);
    f.delimiter = Some("|".into());
    let p = parse_feed(b"x|evil.example|y\n", &f);
    assert_eq!(vals(&p), vec!["evil.example"]);
    let p = parse_feed(b"1.2.3.4\t10\n5.6.7.8\t3\n", &feed(Format::Tsv));
    assert_eq!(vals(&p), vec!["1.2.3.4", "5.6.7.8"]);
}

#[test]
fn misp_attribute_csv() {
    let input = b"uuid,event_id,category,type,value,comment,to_ids,date\n\
        u1,1,Network activity,ip-dst|port,198.51.100.7|443,,1,1\n\
        u2,1,Network activity,domain,evil.example,,0,1\n\
        u3,1,Payload delivery,filename|md5,a.exe|d41d8cd98f00b204e9800998ecf8427e,,1,1\n\
        u4,1,Other,text,hello,,1,1\n";
    let p = parse_feed(input, &feed(Format::Misp));
    assert_eq!(
        vals(&p),
        vec!["198.51.100.7", "d41d8cd98f00b204e9800998ecf8427e"]
    );
    assert_eq!(p.records[1].itype, Some(T::Md5));
    assert_eq!(p.skipped, 2);
}

#[test]
fn pattern_format() {
    let mut f = feed(Format::Pattern);
    f.pattern = Some(r"^(\S+) ; (\S+)".into());
    f.values = vec!["indicator".into(), "reference".into()];
    let p = parse_feed(b"1.2.3.0/24 ; SBL1\ngarbage\n", &f);
    assert_eq!(vals(&p), vec!["1.2.3.0/24"]);
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().reference.as_deref(),
        Some("SBL1")
    );
    assert_eq!(p.rejects[0].line, 2);
}

#[test]
fn zeek_intel() {
    let input = b"#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n\
        evil.example\tIntel::DOMAIN\tsrc\tbad\t-\n\
        198.51.100.1\tIntel::ADDR\tsrc\t-\t-\n\
        bob\tIntel::USER_NAME\tsrc\t-\t-\n\
        a.example/x\tIntel::URL\tsrc\t-\thttp://ref\n";
    assert_eq!(detect_format(input), Format::ZeekIntel);
    let p = parse_feed(input, &feed(Format::Auto));
    assert_eq!(
        vals(&p),
        vec!["evil.example", "198.51.100.1", "a.example/x"]
    );
    assert_eq!(p.records[0].itype, Some(T::Fqdn));
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().provider.as_deref(),
        Some("src")
    );
    assert_eq!(p.skipped, 1);
}

#[test]
fn cif_json_scales_confidence() {
    let input = br#"[{"indicator":"evil.example","itype":"fqdn","confidence":8,"tags":["botnet","c2"],"tlp":"amber","provider":"csirtg.io","reporttime":"2016-03-23T20:35:01Z","expires":"2030-01-01T00:00:00Z"},
                     {"indicator":"192.0.2.1","itype":"ipv4","confidence":"7.5","tags":"scanner"},
                     {"itype":"fqdn"}]"#;
    assert_eq!(detect_format(input), Format::Cif);
    let p = parse_feed(input, &feed(Format::Auto));
    assert_eq!(vals(&p), vec!["evil.example", "192.0.2.1"]);
    let m = p.records[0].meta.as_ref().unwrap();
    assert_eq!(m.confidence, Some(80));
    assert_eq!(m.tlp, Some(matcher::Tlp::Amber));
    assert_eq!(m.expires, Some(1_893_456_000));
    assert_eq!(p.records[1].meta.as_ref().unwrap().confidence, Some(75));
    assert_eq!(p.rejects[0].line, 3);
    // csirtg.io CSV through `cif`, defanged values kept raw for normalisation.
    let csv = b"# id,indicator,itype\n1,hxxp://evil[.]example/x,url\n";
    let p = parse_feed(csv, &feed(Format::Cif));
    assert_eq!(vals(&p), vec!["hxxp://evil[.]example/x"]);
    assert_eq!(p.records[0].itype, Some(T::Url));
}

#[test]
fn jsonl_with_field_and_map() {
    let input = b"{\"ioc\":{\"v\":\"evil.example\",\"d\":\"x\"}}\n{\"ioc\":{\"v\":\"b.example\"}}\nnot json\n{\"other\":1}\n";
    assert_eq!(detect_format(input), Format::Jsonl);
    let mut f = feed(Format::Auto);
    f.field = Some("ioc.v".into());
    f.map.insert("description".into(), "d".into());
    let p = parse_feed(input, &f);
    assert_eq!(vals(&p), vec!["evil.example", "b.example"]);
    assert_eq!(
        p.records[0].meta.as_ref().unwrap().description.as_deref(),
        Some("x")
    );
    assert_eq!(
        p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![3, 4]
    );
}

#[test]
fn stix_patterns() {
    let ok = stix_pattern::parse(
        "[ipv4-addr:value = '198.51.100.1' OR domain-name:value = 'evil.example'] OR [file:hashes.'SHA-256' = 'ab\\'c']",
    )
    .unwrap()
    .comparisons;
    assert_eq!(ok.len(), 3);
    assert_eq!(ok[1], (Some(T::Fqdn), "evil.example".to_string()));
    assert_eq!(ok[2].1, "ab'c");
    for bad in [
        "[url:value MATCHES '^http']",
        "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.b']",
        "[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.b']",
        "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
        "[ipv4-addr:value != '1.2.3.4']",
        "[process:name = 'x']",
        "[ipv4-addr:value = '1.2.3.4",
        "",
    ] {
        assert!(stix_pattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn stix_markings_confidence_valid_until() {
    let bundle = br#"{"type":"bundle","id":"bundle--1","objects":[
      {"type":"marking-definition","id":"marking-definition--x","definition_type":"tlp","definition":{"tlp":"red"}},
      {"type":"identity","id":"identity--1","name":"ACME CERT"},
      {"type":"indicator","spec_version":"2.1","id":"indicator--1","pattern":"[url:value = 'http://evil.example/a']",
       "pattern_type":"stix","confidence":85,"valid_from":"2020-01-01T00:00:00Z","valid_until":"2031-01-01T00:00:00Z",
       "indicator_types":["malicious-activity"],"created_by_ref":"identity--1",
       "object_marking_refs":["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82","marking-definition--x"]},
      {"type":"domain-name","id":"domain-name--1","value":"sco.example"},
      {"type":"indicator","id":"indicator--2","pattern":"x","pattern_type":"sigma"}]}"#;
    let p = parse_feed(bundle, &feed(Format::Auto));
    assert_eq!(p.format, Format::Stix2);
    assert_eq!(vals(&p), vec!["http://evil.example/a", "sco.example"]);
    let m = p.records[0].meta.as_ref().unwrap();
    assert_eq!(m.confidence, Some(85));
    assert_eq!(m.tlp, Some(matcher::Tlp::Red));
    assert_eq!(m.expires, Some(1_924_992_000));
    assert_eq!(m.provider.as_deref(), Some("ACME CERT"));
    assert_eq!(m.tags, vec!["malicious-activity"]);
    // A STIX file keeps the id as a TAXII pull does; `reference` is for external references.
    assert_eq!(m.external_id.as_deref(), Some("indicator--1"));
    assert_eq!(m.reference, None);
    assert_eq!(p.rejected, 1);
    assert!(p.rejects[0].reason.contains("sigma"));
}

#[test]
fn guess_itype_table() {
    for (v, t) in [
        ("1.2.3.4", Some(T::Ipv4)),
        ("1.2.3.0/24", Some(T::Ipv4)),
        ("1.2.3.0/33", None),
        ("2001:db8::/32", Some(T::Ipv6)),
        ("evil.example", Some(T::Fqdn)),
        ("evil[.]example", Some(T::Fqdn)),
        ("hxxp://x", Some(T::Url)),
        ("a.example/p", Some(T::Url)),
        ("d41d8cd98f00b204e9800998ecf8427e", Some(T::Md5)),
        ("a@b.example", Some(T::Email)),
        ("2024-01-01 00:00:00", None),
        ("12345", None),
        ("COGENT-174", None),
        ("", None),
    ] {
        assert_eq!(guess_itype(v), t, "{v}");
    }
}

#[test]
fn spamhaus_line_starting_with_a_multibyte_character_is_rejected_not_a_panic() {
    // Found by the proptest below: `value[..2]` split the 3-byte U+0800.
    let p = parse_feed(&[224, 160, 128, 0], &feed(Format::SpamhausDrop));
    assert_eq!(p.records.len() + p.rejected, 1);
    let p = parse_feed(
        b"AS12345 ; SBL1\n1.2.3.0/24 ; SBL2\n",
        &feed(Format::SpamhausDrop),
    );
    assert_eq!((p.records.len(), p.rejected), (1, 1));
    assert!(p.rejects[0].reason.contains("AS number"), "{:?}", p.rejects);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
    /// The fuzz body: arbitrary bytes under every format never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        for f in [Format::Auto, Format::Plain, Format::Csv, Format::Delimited, Format::Hosts,
                  Format::SpamhausDrop, Format::Dshield, Format::Maltrail, Format::ZeekIntel,
                  Format::Json, Format::Jsonl, Format::Stix2, Format::Misp, Format::Cif, Format::Rss] {
            let _ = parse_feed(&bytes, &feed(f));
        }
        let _ = detect_format(&bytes);
    }

    /// Structured-ish inputs (feed-like characters) exercise deeper paths.
    #[test]
    fn feedlike_text_never_panics(s in "[a-z0-9.,;:#|/\\[\\]{}\"' \\t\\n<>=-]{0,300}") {
        for f in [Format::Auto, Format::Csv, Format::Stix2, Format::Rss, Format::Maltrail] {
            let _ = parse_feed(s.as_bytes(), &feed(f));
        }
        let _ = stix_pattern::parse(&s);
    }
}

/// Parsing a line-by-line feed a chunk at a time gives the records, rejects and counts of
/// parsing it whole, line numbers included.
#[test]
fn chunked_parse_equals_whole_parse() {
    let mut body = String::from("\u{feff}# a comment\n");
    for i in 0..300 {
        match i % 7 {
            0 => body.push_str(&format!("d{i}.example ; with a note\n")),
            1 => body.push_str("\r\n"),
            2 => body.push_str(&format!("0.0.0.0 h{i}.example\n")),
            3 => body.push_str(" ; no value\n"),
            4 => body.push_str(&format!("198.51.{}.0/24\r\n", i % 250)),
            5 => body.push_str("\u{e9}t\u{e9}.example\n"),
            _ => body.push_str(&format!("http://u{i}.example/p\n")),
        }
    }
    body.push_str("last.example");
    for format in [
        Format::Plain,
        Format::Auto,
        Format::Hosts,
        Format::SpamhausDrop,
    ] {
        let mut feed = FeedConfig::new("t", "t");
        feed.format = format;
        let whole = parse_feed(body.as_bytes(), &feed);
        for chunk in [1, 10, 97, 4096] {
            let mut parts = Vec::new();
            parse_feed_chunks(body.as_bytes(), &feed, chunk, |p| parts.push(p));
            let records: Vec<(usize, String)> = parts
                .iter()
                .flat_map(|p| p.records.iter().map(|r| (r.line, r.value.clone())))
                .collect();
            let want: Vec<(usize, String)> = whole
                .records
                .iter()
                .map(|r| (r.line, r.value.clone()))
                .collect();
            assert_eq!(records, want, "{format:?} in chunks of {chunk}");
            // Each part keeps its first MAX_KEPT_REJECTS: the first of them all are the same.
            let rejects: Vec<(usize, String)> = parts
                .iter()
                .flat_map(|p| p.rejects.iter().map(|r| (r.line, r.reason.clone())))
                .take(MAX_KEPT_REJECTS)
                .collect();
            let want: Vec<(usize, String)> = whole
                .rejects
                .iter()
                .map(|r| (r.line, r.reason.clone()))
                .collect();
            assert_eq!(rejects, want, "{format:?} in chunks of {chunk}");
            let rejected: usize = parts.iter().map(|p| p.rejected).sum();
            assert_eq!(rejected, whole.rejected);
            assert!(parts.iter().all(|p| p.format == whole.format));
            assert_eq!(parts.len() > 1, chunk < body.len());
        }
    }
}

/// Feed-like bodies of every streamed format: lines of values, CSV with a header, JSON
/// lines, a JSON array, a STIX bundle (some entries broken), a `{"data": [...]}` wrapper,
/// MISP events (tags after the attributes, objects, a `response` list) and CIF JSON.
fn streamed_body() -> impl proptest::strategy::Strategy<Value = (Format, Vec<u8>)> {
    use proptest::prelude::*;
    let value = "[a-z0-9]{1,6}(\\.[a-z]{2,3}|/x|\\.1\\.2\\.3)?";
    (0usize..9, proptest::collection::vec((value, 0u8..8), 0..40)).prop_map(|(k, rows)| {
        let mut out = String::new();
        let bad = |b: u8| b == 7;
        match k {
            0 => {
                for (v, b) in &rows {
                    out += &format!("{}{v}\n", if *b == 6 { "# " } else { "" });
                }
                (Format::Plain, out.into_bytes())
            }
            1 => {
                out += "# comment\nurl,tags\n";
                for (v, b) in &rows {
                    out += &if bad(*b) { format!("\"{v}\n") } else { format!("{v},\"t{b},x\"\n") };
                }
                (Format::Csv, out.into_bytes())
            }
            2 => {
                for (v, b) in &rows {
                    out += &if bad(*b) { format!("{{\"ioc\":\"{v}\"\n") } else { format!("{{\"ioc\":\"{v}\",\"t\":{b}}}\n") };
                }
                (Format::Jsonl, out.into_bytes())
            }
            3 | 4 => {
                let items: Vec<String> = rows
                    .iter()
                    .map(|(v, b)| match (k, *b) {
                        (3, 6) => format!("{{\"other\":\"{v}\"}}"),
                        (3, _) => format!("{{\"domain\":\"{v}\",\"type\":\"domain\"}}"),
                        (_, 6) => format!("{{\"type\":\"indicator\",\"id\":\"indicator--{v}\",\"revoked\":true,\"pattern\":\"[domain-name:value = '{v}']\"}}"),
                        (_, 7) => format!("{{\"type\":\"indicator\",\"pattern\":\"[nonsense {v}\"}}"),
                        _ => format!("{{\"type\":\"domain-name\",\"value\":\"{v}\",\"object_marking_refs\":[\"m\"],\"created_by_ref\":\"i\"}}"),
                    })
                    .collect();
                if k == 3 {
                    (Format::Json, format!("[{}]", items.join(",\n")).into_bytes())
                } else {
                    let context = "{\"type\":\"marking-definition\",\"id\":\"m\",\"name\":\"TLP:RED\"},{\"type\":\"identity\",\"id\":\"i\",\"name\":\"Org\"}";
                    let mut objects = items;
                    objects.push(context.to_string());
                    (Format::Stix2, format!("{{\"type\":\"bundle\",\"objects\":[{}]}}", objects.join(",\n")).into_bytes())
                }
            }
            5 => {
                let items: Vec<String> = rows
                    .iter()
                    .map(|(v, b)| if *b == 6 { format!("{{\"x\":{b}}}") } else { format!("{{\"url\":\"{v}\",\"n\":{b}}}") })
                    .collect();
                (Format::Json, format!("{{\"count\":{},\"data\":[{}],\"more\":false}}", items.len(), items.join(",")).into_bytes())
            }
            6 => {
                // Events of a `response` list, an attribute in an object, tags last.
                let mut events = Vec::new();
                for (i, pair) in rows.chunks(3).enumerate() {
                    let attrs: Vec<String> = pair
                        .iter()
                        .map(|(v, b)| match b {
                            6 => format!("{{\"type\":\"domain\",\"to_ids\":false,\"value\":\"{v}\"}}"),
                            7 => "{\"type\":\"domain\",\"to_ids\":true}".to_string(),
                            _ => format!("{{\"type\":\"domain\",\"to_ids\":true,\"value\":\"{v}\",\"uuid\":\"u-{v}\",\"Tag\":[{{\"name\":\"t{b}\"}}]}}"),
                        })
                        .collect();
                    let (own, objs) = attrs.split_at(attrs.len() / 2);
                    events.push(format!(
                        "{{\"Event\":{{\"info\":\"event {i}\",\"Attribute\":[{}],\"Object\":[{{\"name\":\"o\",\"Attribute\":[{}]}}],\"threat_level_id\":\"{}\",\"Tag\":[{{\"name\":\"tlp:amber\"}}]}}}}",
                        own.join(","),
                        objs.join(","),
                        i % 4 + 1
                    ));
                }
                (Format::Misp, format!("{{\"response\":[{}]}}", events.join(",\n")).into_bytes())
            }
            7 => {
                let items: Vec<String> = rows
                    .iter()
                    .map(|(v, b)| if *b == 7 { "{\"itype\":\"fqdn\"}".to_string() } else { format!("{{\"indicator\":\"{v}\",\"itype\":\"fqdn\",\"confidence\":{b},\"tags\":[\"x\"]}}") })
                    .collect();
                (Format::Cif, format!("[{}]", items.join(",\n")).into_bytes())
            }
            _ => {
                for (v, b) in &rows {
                    out += &format!("{v}\t{b}\n");
                }
                (Format::Tsv, out.into_bytes())
            }
        }
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// What `trawl update` parses a piece at a time is what the whole parse gives.
    #[test]
    fn chunked_parse_of_every_streamed_format_equals_the_whole_parse((format, body) in streamed_body(), chunk in 1usize..200) {
        let f = feed(format);
        let whole = parse_feed(&body, &f);
        let mut got = ParsedFeed::new(whole.format);
        let mut calls = 0;
        parse_feed_chunks(&body, &f, chunk, |p| {
            calls += 1;
            got.format = p.format;
            got.records.extend(p.records);
            got.rejects.extend(p.rejects);
            got.rejected += p.rejected;
            got.skipped += p.skipped;
            got.revoked += p.revoked;
        });
        proptest::prop_assert!(calls >= 1);
        proptest::prop_assert_eq!(got.format, whole.format);
        proptest::prop_assert_eq!(&got.records, &whole.records);
        proptest::prop_assert_eq!(&got.rejects, &whole.rejects);
        proptest::prop_assert_eq!(
            (got.rejected, got.skipped, got.revoked),
            (whole.rejected, whole.skipped, whole.revoked)
        );
    }
}

/// MISP event JSON walked an attribute at a time keeps the Value tree's meaning: an event's
/// tags and threat level written after its attributes still apply to them, attributes of
/// objects count, `{"Event": ...}` and `response` lists nest, and a wrapper's own
/// `Attribute` is not an event's.
#[test]
fn misp_events_streamed_keep_their_late_fields() {
    let doc = br#"{"Attribute":[{"type":"domain","to_ids":true,"value":"wrapper.example"}],
      "response":[
        {"Event":{"info":"first","Attribute":[
            {"type":"domain","to_ids":true,"value":"a.example","uuid":"u-a"},
            {"type":"domain","to_ids":false,"value":"quiet.example"},
            {"type":"ip-dst|port","to_ids":true,"value":"198.51.100.7|443"}],
          "Object":[{"name":"file","Attribute":[{"type":"sha256","to_ids":true,
            "value":"0000000000000000000000000000000000000000000000000000000000000001"}]}],
          "threat_level_id":"1","Orgc":{"name":"CIRCL"},
          "Tag":[{"name":"tlp:amber"},{"name":"phishing"}]}},
        [{"info":"second","Tag":[{"name":"tlp:clear"}],
          "Attribute":[{"type":"url","to_ids":"1","value":"http://b.example/x","deleted":false}]}]
      ]}"#;
    let p = parse_feed(doc, &feed(Format::Misp));
    assert_eq!(
        vals(&p),
        vec![
            "a.example",
            "198.51.100.7",
            "0000000000000000000000000000000000000000000000000000000000000001",
            "http://b.example/x"
        ]
    );
    assert_eq!(p.skipped, 1);
    let first = p.records[0].meta.as_deref().cloned().unwrap_or_default();
    assert_eq!(first.tlp, Some(matcher::Tlp::Amber));
    assert_eq!(first.severity, Some(matcher::Severity::High));
    assert_eq!(first.provider.as_deref(), Some("CIRCL"));
    assert_eq!(first.tags, vec!["phishing".to_string()]);
    assert_eq!(first.external_id.as_deref(), Some("u-a"));
    let hash = p.records[2].meta.as_deref().cloned().unwrap_or_default();
    assert_eq!(hash.description.as_deref(), Some("first"));
    let last = p.records[3].meta.as_deref().cloned().unwrap_or_default();
    assert_eq!(
        (last.tlp, last.description.as_deref()),
        (Some(matcher::Tlp::Clear), Some("second"))
    );
    // A broken document is one reject with its line, and no records.
    let broken = parse_feed(
        b"{\"Event\":{\"Attribute\":[\n{\"value\":}]}}",
        &feed(Format::Misp),
    );
    assert!(broken.records.is_empty());
    assert_eq!(broken.rejects.first().map(|r| r.line), Some(2));
}

/// A JSON object wrapping its list: the first of the known wrapper members that is an
/// array (of objects, when the field is given), in that priority, not document order; an
/// object naming the field's first step is its own single item.
#[test]
fn json_wrappers_pick_the_list_the_value_tree_rule_picks() {
    let doc = br#"{"objects":[{"domain":"late.example"}],"meta":{"n":2},"data":[{"domain":"a.example"},{"domain":"b.example"}]}"#;
    assert_eq!(
        vals(&parse_feed(doc, &feed(Format::Json))),
        vec!["a.example", "b.example"]
    );
    let mut f = feed(Format::Json);
    f.field = Some("host.name".into());
    let doc = br#"{"data":["not","objects"],"results":[{"host":{"name":"r.example"}}]}"#;
    assert_eq!(vals(&parse_feed(doc, &f)), vec!["r.example"]);
    f.field = Some("data.host".into());
    let doc = br#"{"data":[{"host":"x.example"},{"host":"y.example"}]}"#;
    let p = parse_feed(doc, &f);
    assert_eq!(vals(&p), vec!["x.example", "y.example"]);
    assert!(p.records.iter().all(|r| r.line == 1));
    let cif =
        br#"{"status":"success","data":[{"indicator":"c.example","itype":"fqdn","confidence":8}]}"#;
    let p = parse_feed(cif, &feed(Format::Cif));
    assert_eq!(vals(&p), vec!["c.example"]);
    assert_eq!(
        p.records[0].meta.as_deref().and_then(|m| m.confidence),
        Some(80)
    );
}
