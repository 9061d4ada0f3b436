//! The HTTP API against a real socket: CIF v3's envelope and scales, searches, feeds,
//! submissions, tokens, and every leak path: no/invalid/revoked/expired token, a token
//! without the group, a green token and amber data, an itypes restriction, the search log,
//! oversized bodies, injection strings in parameters, rate limits.

use crate::harness::{get, grant, indicators, on_both_stores, send, Backend, Db, Server};
use matcher::{IndicatorType, Tlp};
use server::config::ServerConfig;

fn server(backend: Backend) -> Server {
    Server::start_on(backend, ServerConfig::default())
}

#[test]
fn oversized_bodies_are_413_and_inflation_bombs_too() {
    use std::io::Write;
    let s = Server::start(ServerConfig {
        max_body: Some(feeds::config::ByteSize(4096)),
        ..ServerConfig::default()
    });
    let mut w = grant("writer", &["everyone"], Tlp::Green);
    w.write = true;
    let writer = s.token(w);
    let url = format!("{}/indicators", s.url);
    let big = vec![b' '; 10_000];
    assert_eq!(send("POST", &url, &writer, &big).status, 413);
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b' '; 1 << 20]).unwrap();
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 4096);
    let r = ureq::post(&url)
        .set("Authorization", &format!("Token token={writer}"))
        .set("Content-Encoding", "deflate")
        .send_bytes(&bomb);
    let status = match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(c, _)) => c,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(status, 413);
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let s = Server::start(ServerConfig {
        rate_limit: Some(1),
        ..ServerConfig::default()
    });
    let t = s.reader(&["everyone"], Tlp::Green);
    let url = format!("{}/ping", s.url);
    let statuses: Vec<u16> = (0..5).map(|_| get(&url, Some(&t)).status).collect();
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = get(&url, Some(&t));
    assert_eq!(r.status, 429);
    assert!(r.retry_after.is_some());
    // Another token is not held back by the first one's budget.
    let other = s.reader(&["everyone"], Tlp::Green);
    assert_eq!(get(&url, Some(&other)).status, 200);
}

#[test]
fn responses_are_deflated_when_asked_with_a_content_length() {
    let s = server(Backend::Sqlite);
    let t = s.reader(&["everyone"], Tlp::Red);
    let r = ureq::get(&format!("{}/feed?itype=fqdn", s.url))
        .set("Authorization", &format!("Token token={t}"))
        .set("Accept-Encoding", "deflate")
        .call()
        .unwrap();
    assert_eq!(r.header("content-encoding"), Some("deflate"));
    let len: usize = r.header("content-length").unwrap().parse().unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut raw).unwrap();
    assert_eq!(raw.len(), len);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::ZlibDecoder::new(&raw[..]), &mut text)
        .unwrap();
    assert!(text.contains("public.example"));
}

#[test]
fn a_restarted_postgresql_costs_no_request() {
    // A cluster of its own: restarting the shared one would cut other tests off.
    let cluster = std::sync::Arc::new(crate::pg::PgCluster::start());
    let s = Server::start_with(Db::on(cluster.clone()), ServerConfig::default());
    let mut w = grant("writer", &["everyone"], Tlp::Green);
    w.write = true;
    let writer = s.token(w);
    let ping = format!("{}/ping", s.url);
    assert_eq!(get(&ping, Some(&writer)).status, 200);
    cluster.restart();
    // The pooled connections died with the old server; the next request reconnects.
    assert_eq!(get(&ping, Some(&writer)).status, 200);
    let r = send(
        "POST",
        &format!("{}/indicators", s.url),
        &writer,
        br#"{"indicator": "after-restart.example"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = get(
        &format!("{}/v1/search?q=after-restart.example&nolog=1", s.url),
        Some(&writer),
    );
    assert_eq!(r.values(), vec!["after-restart.example"]);
    assert_eq!(s.store.submissions(0).unwrap().len(), 1, "stored once");
    // A write as the first call after a restart: run again on a new connection, once.
    cluster.restart();
    let ind = matcher::Indicator::new("second.example", IndicatorType::Fqdn, "writer");
    assert_eq!(s.store.add_submissions(&[ind], 0).unwrap().len(), 1);
    assert_eq!(s.store.submissions(0).unwrap().len(), 2, "stored once");
    // Down: 503, and the store's error names where and what to check.
    cluster.stop();
    let e = s.store.tokens().unwrap_err().to_string();
    assert!(e.contains("127.0.0.1") && e.contains("pg_isready"), "{e}");
    assert_eq!(get(&ping, Some(&writer)).status, 503);
}

// The tests that reach the store: each runs on SQLite and on PostgreSQL.
on_both_stores! {
    fn no_bad_revoked_or_expired_token_is_401(backend) {
        let s = server(backend);
        let url = format!("{}/search?q=public.example", s.url);
        assert_eq!(get(&url, None).status, 401);
        assert_eq!(get(&url, Some("not-a-token")).status, 401);
        let t = s.reader(&["everyone"], Tlp::Green);
        assert_eq!(get(&url, Some(&t)).status, 200);
        s.store
            .revoke_hash(&server::token::Secret::presented(&t).hash())
            .unwrap();
        let r = get(&url, Some(&t));
        assert_eq!(r.status, 401);
        assert!(r.text.contains("revoked"), "{}", r.text);
        let mut g = grant("old", &["everyone"], Tlp::Green);
        g.expires = Some(server::http::now() - 1);
        let expired = s.token(g);
        let r = get(&url, Some(&expired));
        assert_eq!(r.status, 401);
        assert!(r.text.contains("expired"));
        // /health needs no token and says nothing about the data.
        assert_eq!(get(&format!("{}/health", s.url), None).status, 200);
    }

    fn a_cached_token_revoked_elsewhere_fails_on_the_next_request(backend) {
        // The server caches tokens; another handle on the store (as `trawl token revoke` in
        // another process) revokes one between two requests.
        let s = server(backend);
        let url = format!("{}/search?q=public.example&nolog=1", s.url);
        let t = s.reader(&["everyone"], Tlp::Green);
        let other = s.reader(&["everyone"], Tlp::Green);
        for _ in 0..3 {
            assert_eq!(get(&url, Some(&t)).status, 200);
            assert_eq!(get(&url, Some(&other)).status, 200);
        }
        let elsewhere = s.db.open();
        assert_eq!(
            elsewhere
                .revoke_hash(&server::token::Secret::presented(&t).hash())
                .unwrap(),
            1
        );
        let r = get(&url, Some(&t));
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(r.text.contains("revoked"), "{}", r.text);
        assert_eq!(get(&url, Some(&other)).status, 200);
        // A token cached while valid stops at its expiry, with no store change in between.
        let mut g = grant("brief", &["everyone"], Tlp::Green);
        g.expires = Some(server::http::now() + 2);
        let brief = s.token(g);
        assert_eq!(get(&url, Some(&brief)).status, 200);
        std::thread::sleep(std::time::Duration::from_millis(3100));
        let r = get(&url, Some(&brief));
        assert_eq!(r.status, 401, "{}", r.text);
        assert!(r.text.contains("expired"), "{}", r.text);
    }

    fn ping_search_and_the_cif_envelope_and_scale(backend) {
        let s = server(backend);
        let t = s.reader(&["everyone"], Tlp::Green);
        let r = get(&format!("{}/ping", s.url), Some(&t));
        assert_eq!(
            (r.status, r.json["message"].as_str()),
            (200, Some("success"))
        );
        let r = get(
            &format!("{}/search?q=a.b.public.example&nolog=1", s.url),
            Some(&t),
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.values(), vec!["public.example"]);
        let row = &r.json["data"][0];
        assert_eq!(row["confidence"], 8.0);
        assert_eq!(row["matched"], "parent-domain");
        assert_eq!(row["group"], "everyone");
        // Native: trawl's names and 0-100.
        let r = get(
            &format!("{}/v1/search?q=198.51.100.7&nolog=1", s.url),
            Some(&t),
        );
        assert_eq!(r.values(), vec!["198.51.100.0/24"]);
        assert_eq!(r.json["data"][0]["confidence"], 80);
        assert_eq!(r.json["data"][0]["groups"], serde_json::json!(["everyone"]));
        // Confidence filters on each scale.
        let r = get(
            &format!("{}/search?q=public.example&confidence=9&nolog=1", s.url),
            Some(&t),
        );
        assert!(r.values().is_empty());
        let r = get(
            &format!("{}/v1/search?q=public.example&confidence=80&nolog=1", s.url),
            Some(&t),
        );
        assert_eq!(r.values(), vec!["public.example"]);
    }

    fn groups_tlp_and_itypes_hold_on_search_and_feed_in_every_format(backend) {
        let s = server(backend);
        let green = s.reader(&["everyone"], Tlp::Green);
        let amber = s.reader(&["everyone"], Tlp::Amber);
        let csirt = s.reader(&["csirt", "everyone"], Tlp::Red);
        let nogroup = s.reader(&[], Tlp::Red);
        let mut g = grant("ips", &["everyone", "csirt"], Tlp::Red);
        g.itypes = vec![IndicatorType::Ipv4];
        let ips_only = s.token(g);
        let search = |t: &str, q: &str| get(&format!("{}/search?q={q}&nolog=1", s.url), Some(t));
        assert!(search(&green, "amber-only.example").values().is_empty());
        assert!(search(&green, "red-only.example").values().is_empty());
        assert_eq!(
            search(&amber, "amber-only.example").values(),
            vec!["amber-only.example"]
        );
        assert!(search(&amber, "red-only.example").values().is_empty());
        assert!(search(&amber, "csirt-only.example").values().is_empty());
        assert_eq!(
            search(&csirt, "csirt-only.example").values(),
            vec!["csirt-only.example"]
        );
        assert!(search(&nogroup, "public.example").values().is_empty());
        assert!(search(&green, "mixed.example").values().is_empty());
        assert_eq!(
            search(&csirt, "mixed.example").values(),
            vec!["mixed.example"]
        );
        assert_eq!(search(&ips_only, "public.example").status, 403);
        assert_eq!(
            search(&ips_only, "203.0.113.9").values(),
            vec!["203.0.113.9"]
        );

        // Feeds: CIF JSON and every native format.
        let feed = |t: &str, q: &str| get(&format!("{}/feed?{q}", s.url), Some(t));
        let everything: Vec<String> = indicators().iter().map(|i| i.value.clone()).collect();
        for (t, itype, want) in [
            (&green, "fqdn", vec!["public.example"]),
            (&amber, "fqdn", vec!["amber-only.example", "public.example"]),
            (
                &csirt,
                "fqdn",
                vec![
                    "amber-only.example",
                    "csirt-only.example",
                    "mixed.example",
                    "public.example",
                    "red-only.example",
                ],
            ),
            (&nogroup, "fqdn", vec![]),
            (&green, "ipv4", vec!["198.51.100.0/24"]),
        ] {
            let r = feed(t, &format!("itype={itype}"));
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.values(), want, "{itype}");
            for format in [
                "snort", "suricata", "iptables", "ipset", "nftables", "zeek", "rpz", "csv", "jsonl",
                "json", "html",
            ] {
                let r = get(
                    &format!("{}/v1/feed?itype={itype}&format={format}", s.url),
                    Some(t),
                );
                assert_eq!(r.status, 200, "{format}: {}", r.text);
                for v in &everything {
                    let visible = want.iter().any(|w| w == v);
                    // An IP CIDR is written as is by every format; names may be spelled per
                    // format but always contain the value.
                    let probe = v.split('.').next().unwrap_or(v);
                    if !visible && v.ends_with(".example") {
                        assert!(
                            !r.text.contains(probe),
                            "{format} leaks {v} to a token that may not see it"
                        );
                    }
                    if !visible && v == "203.0.113.9" {
                        assert!(!r.text.contains(v), "{format} leaks {v}");
                    }
                }
            }
        }
        assert_eq!(feed(&green, "confidence=5").status, 400);
        assert_eq!(feed(&ips_only, "itype=fqdn").status, 403);
    }

    fn the_search_log_is_intel_visible_only_to_who_may_see_the_searcher(backend) {
        let s = server(backend);
        let red = s.token(grant("investigator", &["csirt", "everyone"], Tlp::Red));
        let clear = s.token(grant("consumer", &["everyone"], Tlp::Clear));
        let green = s.token(grant("analyst", &["everyone"], Tlp::Green));
        // Searches for a value that is in no feed.
        let q = "unknown-domain.example";
        assert_eq!(
            get(&format!("{}/search?q={q}", s.url), Some(&red)).status,
            200
        );
        assert_eq!(
            get(&format!("{}/search?q={q}", s.url), Some(&green)).status,
            200
        );
        assert_eq!(
            get(&format!("{}/search?q={q}&nolog=1", s.url), Some(&green)).status,
            200
        );
        s.app.intel.refresh(server::http::now()).unwrap();
        let logged = |t: &str| {
            get(&format!("{}/v1/search?q={q}&nolog=1", s.url), Some(t)).json["data"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        };
        let for_red = logged(&red);
        assert_eq!(for_red.len(), 2, "{for_red:?}");
        assert!(for_red
            .iter()
            .all(|r| r["tags"] == serde_json::json!(["search"])));
        let for_green = logged(&green);
        assert_eq!(for_green.len(), 1);
        assert_eq!(for_green[0]["provider"], "analyst");
        assert_eq!(for_green[0]["searched"], 1);
        assert!(logged(&clear).is_empty());
        // Feedable with the search tag, to the same people only.
        let feed = |t: &str| get(&format!("{}/feed?itype=fqdn&tags=search", s.url), Some(t)).values();
        assert_eq!(feed(&green), vec![q]);
        assert!(feed(&clear).is_empty());
    }

    fn the_in_memory_search_log_matches_the_store_across_refreshes(backend) {
        // A refresh after this process's own flush merges it in memory; one after another
        // process wrote to the log reads it back. Either way the counts are the store's.
        let s = server(backend);
        let t = s.token(grant("analyst", &["everyone"], Tlp::Green));
        let q = "counted.example";
        let searched = || {
            get(&format!("{}/v1/search?q={q}&nolog=1", s.url), Some(&t)).json["data"][0]
                ["searched"]
                .as_u64()
        };
        let search = |n: usize| {
            for _ in 0..n {
                assert_eq!(get(&format!("{}/search?q={q}", s.url), Some(&t)).status, 200);
            }
        };
        search(2);
        s.app.intel.refresh(server::http::now()).unwrap();
        assert_eq!(searched(), Some(2));
        search(3);
        s.app.intel.refresh(server::http::now()).unwrap();
        assert_eq!(searched(), Some(5));
        // Another handle (another replica) logs a search of the same value by the same user.
        let elsewhere = s.db.open();
        let mut other = server::intel::search_record(
            &s.store.tokens().unwrap()[0],
            matcher::IndicatorType::Fqdn,
            q,
            server::http::now(),
        );
        other.count = 10;
        elsewhere.log_searches(&[other]).unwrap();
        search(1);
        s.app.intel.refresh(server::http::now()).unwrap();
        assert_eq!(searched(), Some(16));
        let stored: u64 = s
            .store
            .searches()
            .unwrap()
            .iter()
            .filter(|l| l.value == q)
            .map(|l| l.count)
            .sum();
        assert_eq!(stored, 16);
    }

    fn submissions_are_searchable_at_once_within_the_writers_groups(backend) {
        let s = server(backend);
        let mut w = grant("writer", &["everyone"], Tlp::Amber);
        w.write = true;
        let writer = s.token(w);
        let reader = s.reader(&["everyone"], Tlp::Green);
        let csirt = s.reader(&["csirt", "everyone"], Tlp::Red);
        let url = format!("{}/indicators", s.url);
        let body = br#"[{"indicator": "new-bad.example", "confidence": 9, "tags": "phishing,c2", "provider": "someone-else",
                        "external_id": "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d"},
                       {"indicator": "hxxp://evil[.]example/x", "tlp": "amber"}]"#;
        let r = send("POST", &url, &writer, body);
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json["data"], 2);
        let r = get(
            &format!("{}/v1/search?q=new-bad.example&nolog=1", s.url),
            Some(&reader),
        );
        assert_eq!(r.values(), vec!["new-bad.example"]);
        assert_eq!(r.json["data"][0]["provider"], "writer", "no impersonation");
        assert_eq!(r.json["data"][0]["confidence"], 90);
        // The STIX id is stored (SQLite or PostgreSQL) and served, natively and as CIF.
        let id = "indicator--0d3b5b1c-2f3a-4b8e-9c1d-7e6f5a4b3c2d";
        assert_eq!(r.json["data"][0]["external_id"], id);
        let r = get(
            &format!("{}/search?q=new-bad.example&nolog=1", s.url),
            Some(&reader),
        );
        assert_eq!(r.json["data"][0]["external_id"], id, "{}", r.text);
        // amber submission hidden from a green reader
        let r = get(
            &format!("{}/search?q=http://evil.example/x&nolog=1", s.url),
            Some(&reader),
        );
        assert!(r.values().is_empty());
        // A group the writer is not in: 422, nothing stored (all or nothing).
        let body = br#"[{"indicator": "ok.example"}, {"indicator": "x.example", "group": "csirt"}]"#;
        let r = send("POST", &url, &writer, body);
        assert_eq!(r.status, 422, "{}", r.text);
        assert!(r.text.contains("item 1"), "{}", r.text);
        let r = get(
            &format!("{}/search?q=ok.example&nolog=1", s.url),
            Some(&csirt),
        );
        assert!(r.values().is_empty());
        // Bad values, broad values, readers writing.
        for bad in [
            &br#"{"indicator": "not a value at all"}"#[..],
            br#"{"indicator": "0.0.0.0/1"}"#,
            br#"{"indicator": "com"}"#,
            br#"{"indicator": "a.example", "confidence": 11}"#,
            br#"{"indicator": "a.example", "external_id": "indicator--../x"}"#,
            br#"{"nothing": 1}"#,
            b"not json",
        ] {
            assert_eq!(
                send("POST", &url, &writer, bad).status,
                422,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            send("POST", &url, &reader, br#"{"indicator": "a.example"}"#).status,
            401
        );
        // Delete: admins only.
        assert_eq!(
            send(
                "DELETE",
                &url,
                &writer,
                br#"{"indicator": "new-bad.example"}"#
            )
            .status,
            401
        );
        let mut a = grant("root", &[], Tlp::Red);
        a.admin = true;
        let admin = s.token(a);
        let r = send(
            "DELETE",
            &url,
            &admin,
            br#"{"indicator": "new-bad.example"}"#,
        );
        assert_eq!(
            (r.status, r.json["data"].as_u64()),
            (200, Some(1)),
            "{}",
            r.text
        );
        let r = get(
            &format!("{}/search?q=new-bad.example&nolog=1", s.url),
            Some(&reader),
        );
        assert!(r.values().is_empty());
    }

    fn deflated_submissions_like_cifsdk_sends_them(backend) {
        use std::io::Write;
        let s = server(backend);
        let mut w = grant("writer", &["everyone"], Tlp::Green);
        w.write = true;
        let writer = s.token(w);
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(br#"{"indicator": "zipped.example", "tags": ["x"]}"#)
            .unwrap();
        let body = e.finish().unwrap();
        let r = ureq::post(&format!("{}/indicators", s.url))
            .set("Authorization", &format!("Token token={writer}"))
            .set("Content-Encoding", "deflate")
            .send_bytes(&body);
        assert_eq!(r.map(|r| r.status()).unwrap_or(0), 201);
    }

    fn injection_strings_in_every_parameter_are_refused_or_inert(backend) {
        // Some 300 requests in a row: no rate limit here (it has a test of its own).
        let s = Server::start_on(backend, ServerConfig {
            rate_limit: Some(0),
            rate_limit_per_address: Some(0),
            ..ServerConfig::default()
        });
        let t = s.reader(&["everyone"], Tlp::Green);
        let hostile = [
            "' OR 1=1 --",
            "\"; DROP TABLE tokens; --",
            "%00",
            "%0d%0aSet-Cookie:x=1",
            "<script>alert(1)</script>",
            "../../etc/passwd",
            "*",
            "%ff%fe",
            "${jndi:ldap://x}",
        ];
        for p in [
            "q",
            "itype",
            "confidence",
            "tags",
            "provider",
            "limit",
            "nolog",
            "days",
            "hours",
            "reporttime",
            "groups",
            "tlp",
        ] {
            for h in hostile {
                for path in ["/search", "/feed", "/v1/search"] {
                    let url = format!("{}{path}?{p}={h}&itype=fqdn", s.url);
                    let r = get(&url, Some(&t));
                    assert!(
                        [200, 400].contains(&r.status),
                        "{path} {p}={h}: {} {}",
                        r.status,
                        r.text
                    );
                    // Nothing outside what the token may see comes back.
                    for v in r.values() {
                        assert!(
                            [
                                "public.example",
                                "198.51.100.0/24",
                                "44d88612fea8a8f36de82e1278abb02f"
                            ]
                            .contains(&v.as_str()),
                            "{path} {p}={h} leaked {v}"
                        );
                    }
                    assert!(
                        !r.text.contains("<script>"),
                        "{path} {p}={h} reflects markup"
                    );
                }
            }
        }
        // The store still works (nothing was dropped).
        assert_eq!(get(&format!("{}/ping", s.url), Some(&t)).status, 200);
        let bad = get(&format!("{}/search?q=x&asn=1", s.url), Some(&t));
        assert_eq!(bad.status, 400);
    }

    fn tokens_endpoint_is_for_admins(backend) {
        let s = server(backend);
        let reader = s.reader(&["everyone"], Tlp::Green);
        let mut a = grant("root", &[], Tlp::Red);
        a.admin = true;
        let admin = s.token(a);
        let url = format!("{}/tokens", s.url);
        assert_eq!(get(&url, Some(&reader)).status, 401);
        let r = get(&url, Some(&admin));
        assert_eq!(r.status, 200);
        assert_eq!(r.json["data"].as_array().map(Vec::len), Some(2));
        assert!(!r.text.contains(&reader), "a listing shows no secret");
        let r = send(
            "POST",
            &url,
            &admin,
            br#"{"username": "carol", "groups": "everyone,csirt", "max_tlp": "amber"}"#,
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let carol = r.json["data"]["token"].as_str().unwrap().to_string();
        assert_eq!(carol.len(), 64);
        assert_eq!(get(&format!("{}/ping", s.url), Some(&carol)).status, 200);
        let r = send("DELETE", &url, &admin, br#"{"username": "carol"}"#);
        assert_eq!(r.json["data"], 1);
        assert_eq!(get(&format!("{}/ping", s.url), Some(&carol)).status, 401);
    }
}
