use super::*;
use proptest::prelude::*;

fn ok(raw: &str, hint: Option<IndicatorType>) -> (IndicatorType, String) {
    match normalize(raw, hint) {
        Ok(n) => (n.itype, n.value),
        Err(e) => panic!("{raw:?} ({hint:?}) rejected: {e}"),
    }
}

fn bad(raw: &str, hint: Option<IndicatorType>) -> String {
    match normalize(raw, hint) {
        Ok(n) => panic!("{raw:?} ({hint:?}) accepted as {n:?}"),
        Err(e) => e.to_string(),
    }
}

use IndicatorType as T;

#[test]
fn prefix_range_edges() {
    assert_eq!(
        prefix_range(0x0a01_0203, 8, true),
        (0x0a00_0000, 0x0aff_ffff)
    );
    assert_eq!(
        prefix_range(0x0a01_0203, 32, true),
        (0x0a01_0203, 0x0a01_0203)
    );
    assert_eq!(
        prefix_range(0x0a01_0203, 40, true),
        (0x0a01_0203, 0x0a01_0203)
    );
    assert_eq!(
        prefix_range(0x0a01_0203, 0, true),
        (0, u128::from(u32::MAX))
    );
    assert_eq!(prefix_range(7, 0, false), (0, u128::MAX));
    assert_eq!(prefix_range(7, 128, false), (7, 7));
    assert_eq!(
        prefix_range(u128::MAX, 127, false),
        (u128::MAX - 1, u128::MAX)
    );
}

#[test]
fn domains() {
    assert_eq!(ok("Evil.EXAMPLE.", None), (T::Fqdn, "evil.example".into()));
    assert_eq!(ok("*.evil.example", None), (T::Fqdn, "evil.example".into()));
    assert_eq!(ok(".evil.example", None), (T::Fqdn, "evil.example".into()));
    assert_eq!(ok("evil[.]example", None), (T::Fqdn, "evil.example".into()));
    assert_eq!(ok("evil(.)example", None), (T::Fqdn, "evil.example".into()));
    assert_eq!(ok("evil{.}example", None), (T::Fqdn, "evil.example".into()));
    assert_eq!(
        ok("evil[dot]example", None),
        (T::Fqdn, "evil.example".into())
    );
    assert_eq!(
        ok("_dmarc.a-b.example", None),
        (T::Fqdn, "_dmarc.a-b.example".into())
    );
    // IDN → punycode (checked against Python's `"bücher.de".encode("idna")` = b"xn--bcher-kva.de").
    assert_eq!(ok("Bücher.de", None), (T::Fqdn, "xn--bcher-kva.de".into()));
    assert_eq!(
        ok("xn--bcher-kva.de", None),
        (T::Fqdn, "xn--bcher-kva.de".into())
    );
    assert_eq!(
        ok("localhost", Some(T::Fqdn)),
        (T::Fqdn, "localhost".into())
    );
    assert!(bad("localhost", None).contains("single label"));
    assert!(bad("evil..example", None).contains("empty label"));
    assert!(bad("ev il.example", None).contains("not allowed"));
    assert!(bad(&format!("{}.example", "a".repeat(64)), None).contains("63"));
    let long = vec!["abcdefghi"; 26].join(".");
    assert!(long.len() > 253);
    assert!(bad(&long, Some(T::Fqdn)).contains("253"));
    assert!(bad("1.2.3.999", None).contains("all digits"));
    assert!(bad("", None).contains("empty"));
    assert!(normalize("evil.example", None).map(|n| n.exact_only) == Ok(false));
}

#[test]
fn ips() {
    assert_eq!(ok("192.0.2.1", None), (T::Ipv4, "192.0.2.1".into()));
    assert_eq!(ok("192.0.2[.]1", None), (T::Ipv4, "192.0.2.1".into()));
    assert_eq!(ok("192.0.2.1:443", None), (T::Ipv4, "192.0.2.1".into()));
    assert_eq!(
        ok("192.0.2.1:443", Some(T::Ipv4)),
        (T::Ipv4, "192.0.2.1".into())
    );
    assert_eq!(ok("192.0.2.77/24", None), (T::Ipv4, "192.0.2.0/24".into()));
    assert_eq!(ok("192.0.2.77/32", None), (T::Ipv4, "192.0.2.77".into()));
    assert_eq!(ok("10.1.2.3/0", None), (T::Ipv4, "0.0.0.0/0".into()));
    assert!(bad("010.1.1.1", Some(T::Ipv4)).contains("not an IP"));
    assert!(bad("1.2.3.4/33", None).contains("33"));
    assert!(bad("1.2.3.4/", Some(T::Ipv4)).contains("prefix"));
    assert!(bad("1.2.3.4:99999", Some(T::Ipv4)).contains("not an IP"));
    assert!(bad("1.2.3.4:80/24", Some(T::Ipv4)).contains("not an IP"));
    // RFC 5952: lower case, longest zero run compressed, leading zeros dropped.
    assert_eq!(
        ok("2001:DB8:0:0:0:0:0:1", None),
        (T::Ipv6, "2001:db8::1".into())
    );
    assert_eq!(
        ok("2001:0db8:0000:0001:0:0:0:1", None),
        (T::Ipv6, "2001:db8:0:1::1".into())
    );
    assert_eq!(
        ok("[2001:db8::1]:443", None),
        (T::Ipv6, "2001:db8::1".into())
    );
    assert_eq!(
        ok("[2001:db8::1]", Some(T::Ipv6)),
        (T::Ipv6, "2001:db8::1".into())
    );
    assert_eq!(
        ok("2001:db8::1/32", None),
        (T::Ipv6, "2001:db8::/32".into())
    );
    assert_eq!(ok("2001:db8::1/128", None), (T::Ipv6, "2001:db8::1".into()));
    // An "ip" column may mix families: the hint accepts both and reports the real one.
    assert_eq!(
        ok("2001:db8::1", Some(T::Ipv4)),
        (T::Ipv6, "2001:db8::1".into())
    );
    assert!(bad("2001:db8::1/129", None).contains("129"));
    assert!(bad("fe80::1%eth0", Some(T::Ipv6)).contains("not an IP"));
    assert!(bad("evil.example", Some(T::Ipv4)).contains("IP"));
}

#[test]
fn urls() {
    let u = |s: &str| ok(s, None);
    assert_eq!(
        u("HTTP://Evil.Example/Path"),
        (T::Url, "http://evil.example/Path".into())
    );
    assert_eq!(
        u("http://evil.example"),
        (T::Url, "http://evil.example/".into())
    );
    assert_eq!(
        u("http://evil.example:80/a"),
        (T::Url, "http://evil.example/a".into())
    );
    assert_eq!(
        u("https://evil.example:443/a"),
        (T::Url, "https://evil.example/a".into())
    );
    assert_eq!(
        u("https://evil.example:8443/a"),
        (T::Url, "https://evil.example:8443/a".into())
    );
    assert_eq!(
        u("http://evil.example/a#frag"),
        (T::Url, "http://evil.example/a".into())
    );
    assert_eq!(
        u("http://evil.example./a"),
        (T::Url, "http://evil.example/a".into())
    );
    assert_eq!(
        u("http://evil.example/%7Euser/%61%2f%2F"),
        (T::Url, "http://evil.example/~user/a%2F%2F".into())
    );
    assert_eq!(
        u("http://evil.example/100%"),
        (T::Url, "http://evil.example/100%25".into())
    );
    assert_eq!(
        u("http://evil.example/caf\u{e9}"),
        (T::Url, "http://evil.example/caf%C3%A9".into())
    );
    assert_eq!(
        u("evil.example/gate.php"),
        (T::Url, "http://evil.example/gate.php".into())
    );
    assert_eq!(
        u("evil.example:8080/x"),
        (T::Url, "http://evil.example:8080/x".into())
    );
    assert_eq!(
        u("hxxp://evil[.]example/a"),
        (T::Url, "http://evil.example/a".into())
    );
    assert_eq!(
        u("hXXps[:]//evil[.]example/a"),
        (T::Url, "https://evil.example/a".into())
    );
    assert_eq!(
        u("hxxp[://]evil.example/a"),
        (T::Url, "http://evil.example/a".into())
    );
    assert_eq!(
        u("meow://evil.example/a"),
        (T::Url, "http://evil.example/a".into())
    );
    assert_eq!(
        u("http://evil.example?q=1"),
        (T::Url, "http://evil.example/?q=1".into())
    );
    assert_eq!(
        u("http://u:p@evil.example/"),
        (T::Url, "http://u:p@evil.example/".into())
    );
    assert_eq!(
        u("http://[2001:DB8::1]:80/x"),
        (T::Url, "http://[2001:db8::1]/x".into())
    );
    assert_eq!(
        u("http://192.0.2.1:8080/x"),
        (T::Url, "http://192.0.2.1:8080/x".into())
    );
    assert_eq!(
        u("http://b\u{fc}cher.de/"),
        (T::Url, "http://xn--bcher-kva.de/".into())
    );
    assert_eq!(
        ok("evil.example", Some(T::Url)),
        (T::Url, "http://evil.example/".into())
    );
    assert!(bad("http://evil example/", None).contains("whitespace"));
    assert!(bad("http:///x", None).contains("no host"));
    assert!(bad("http://evil.example:99999/", None).contains("port"));
    assert!(bad("http://ev!l.example/", None).contains("not allowed"));
    // CIDRs are not scheme-less URLs.
    assert_eq!(u("10.0.0.0/8"), (T::Ipv4, "10.0.0.0/8".into()));
}

#[test]
fn emails_hashes_patterns() {
    assert_eq!(
        ok("Bad.Guy@Evil.EXAMPLE", None),
        (T::Email, "bad.guy@evil.example".into())
    );
    assert_eq!(
        ok("bad[@]evil[.]example", None),
        (T::Email, "bad@evil.example".into())
    );
    assert_eq!(
        ok("bad[at]evil.example", None),
        (T::Email, "bad@evil.example".into())
    );
    assert!(bad("@evil.example", None).contains("local part"));
    assert!(bad("a b@evil.example", Some(T::Email)).contains("not allowed"));
    let md5 = "D41D8CD98F00B204E9800998ECF8427E";
    assert_eq!(ok(md5, None), (T::Md5, md5.to_ascii_lowercase()));
    assert_eq!(ok(md5, Some(T::Ja3)), (T::Ja3, md5.to_ascii_lowercase()));
    let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
    assert_eq!(ok(sha1, None), (T::Sha1, sha1.into()));
    let colons: Vec<String> = sha1
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
        .collect();
    assert_eq!(
        ok(&colons.join(":"), Some(T::X509Sha1)),
        (T::X509Sha1, sha1.into())
    );
    let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(ok(sha256, None), (T::Sha256, sha256.into()));
    let sha512 = "cf83".repeat(32);
    assert_eq!(ok(&sha512, None), (T::Sha512, sha512.clone()));
    assert!(bad(sha1, Some(T::Md5)).contains("expected 32"));
    assert!(bad(&md5.replace('D', "G"), Some(T::Md5)).contains("not hex"));
    let ja4 = "t13d1516h2_8daaf6152771_b186095e22b6";
    assert_eq!(ok(ja4, None), (T::Ja4, ja4.into()));
    assert_eq!(
        ok(&ja4.to_ascii_uppercase(), Some(T::Ja4)),
        (T::Ja4, ja4.into())
    );
    assert!(bad("x13d1516h2_8daaf6152771_b186095e22b6", Some(T::Ja4)).contains("protocol"));
    assert!(bad("t13d1516h2_8daaf615277_b186095e22b6", Some(T::Ja4)).contains("12 hex"));
    // JA4S (FoxIO's example in JA4S.md) is of the same family: inferred and hinted alike.
    let ja4s = "t120400_c030_4e8089b08790";
    assert_eq!(ok(ja4s, None), (T::Ja4, ja4s.into()));
    assert_eq!(
        ok(&ja4s.to_ascii_uppercase(), Some(T::Ja4)),
        (T::Ja4, ja4s.into())
    );
    assert!(bad("t1204000_c030_4e8089b08790", Some(T::Ja4)).contains("7 (JA4S)"));
    assert!(bad("t120400_c03_4e8089b08790", Some(T::Ja4)).contains("4 hex"));
    assert!(bad("t12x400_c030_4e8089b08790", Some(T::Ja4)).contains("digits"));
    assert_eq!(
        ok(" /Gate.PHP[.] ", Some(T::Pattern)),
        (T::Pattern, " /Gate.PHP[.] ".into())
    );
    assert!(bad("", Some(T::Pattern)).contains("empty"));
    assert!(bad(&"x".repeat(1025), Some(T::Pattern)).contains("1024"));
}

#[test]
fn refang_table() {
    for (raw, want) in [
        ("hxxp://a[.]b", "http://a.b"),
        ("HXXPS://a(.)b", "https://a.b"),
        ("fxp://a{.}b", "ftp://a.b"),
        ("a[[.]]b", "a.b"),
        ("plain.example", "plain.example"),
        ("hxxpfoo.example", "hxxpfoo.example"),
        ("  x[:]80 ", "x:80"),
    ] {
        assert_eq!(refang(raw), want, "{raw}");
    }
}

#[test]
fn inference_rejects_garbage_with_reason() {
    let e = bad("not a thing!", None);
    assert!(e.contains("indicator"), "{e}");
    assert!(e.contains("domain"), "{e}");
}

// ---- properties ----

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9_-]{0,10}[a-z0-9]"
}

fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..4), "[a-z]{2,6}")
        .prop_map(|(ls, tld)| format!("{}.{}", ls.join("."), tld))
}

fn mixed_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn check_idempotent(raw: &str, hint: Option<IndicatorType>) -> Result<(), TestCaseError> {
    if let Ok(n) = normalize(raw, hint) {
        let again = normalize(&n.value, hint);
        prop_assert_eq!(again.as_ref(), Ok(&n), "raw {:?}", raw);
        // Without the hint too, unless the hint widened what is accepted (single labels,
        // hinted hash types, patterns).
        if hint.is_none() {
            prop_assert_eq!(normalize(&n.value, None), Ok(n.clone()));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn idempotent_on_arbitrary_text(s in "\\PC{0,40}") {
        check_idempotent(&s, None)?;
        for h in IndicatorType::ALL {
            check_idempotent(&s, Some(h))?;
        }
    }

    #[test]
    fn idempotent_on_url_like_text(
        scheme in prop::sample::select(vec!["", "http://", "HTTPS://", "hxxp://", "ftp://", "//"]),
        host in domain(),
        port in prop::option::of(0u16..=65535),
        path in "[a-zA-Z0-9/%._~?=&#:@!$'()*+,;\\[\\]-]{0,30}",
    ) {
        let p = port.map(|p| format!(":{p}")).unwrap_or_default();
        let raw = format!("{scheme}{host}{p}/{path}");
        check_idempotent(&raw, None)?;
        check_idempotent(&raw, Some(IndicatorType::Url))?;
    }

    #[test]
    fn domain_spellings_agree(d in domain(), mask in any::<u64>(), variant in 0u8..6) {
        let want = normalize(&d, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(want.itype, IndicatorType::Fqdn);
        let spelled = match variant {
            0 => mixed_case(&d, mask),
            1 => format!("{}.", mixed_case(&d, mask)),
            2 => format!("*.{d}"),
            3 => format!(".{d}"),
            4 => d.replace('.', "[.]"),
            _ => format!("  {}  ", d.replacen('.', "(.)", 1)),
        };
        prop_assert_eq!(normalize(&spelled, None), Ok(want.clone()));
        prop_assert_eq!(normalize(&spelled, Some(IndicatorType::Fqdn)), Ok(want));
    }

    #[test]
    fn url_spellings_agree(
        host in domain(),
        segs in prop::collection::vec("[a-zA-Z0-9_~.-]{1,8}", 0..4),
        query in prop::option::of("[a-z0-9=&]{1,10}"),
        mask in any::<u64>(),
        https in any::<bool>(),
        encode_mask in any::<u64>(),
    ) {
        let scheme = if https { "https" } else { "http" };
        let path = format!("/{}", segs.join("/"));
        let q = query.map(|q| format!("?{q}")).unwrap_or_default();
        let canonical = format!("{scheme}://{host}{path}{q}");
        let want = normalize(&canonical, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&want.value, &canonical);
        // Percent-encode some unreserved path characters, with random hex case.
        let enc: String = path
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                if b != b'/' && encode_mask >> (i % 64) & 1 == 1 {
                    let s = format!("%{b:02X}");
                    if i % 2 == 0 { s.to_ascii_lowercase() } else { s }
                } else {
                    char::from(b).to_string()
                }
            })
            .collect();
        let port = if https { ":443" } else { ":80" };
        let variants = [
            format!("{}://{}{path}{q}", mixed_case(scheme, mask), mixed_case(&host, mask.rotate_left(7))),
            format!("{scheme}://{host}.{path}{q}"),
            format!("{scheme}://{host}{port}{path}{q}#frag"),
            format!("{scheme}://{host}{enc}{q}"),
            format!("{}://{}{path}{q}", if https { "hxxps" } else { "hXXp" }, host.replace('.', "[.]")),
        ];
        for v in variants {
            prop_assert_eq!(normalize(&v, None), Ok(want.clone()), "variant {}", v);
        }
        if !https {
            let bare = format!("{host}{path}{q}");
            if path != "/" || !q.is_empty() {
                prop_assert_eq!(normalize(&bare, None), Ok(want.clone()), "bare {}", bare);
            }
            prop_assert_eq!(normalize(&bare, Some(IndicatorType::Url)), Ok(want.clone()));
        }
    }

    #[test]
    fn ipv6_spellings_agree(a in any::<u128>(), zero_mask in any::<u8>(), upper in any::<bool>(), port in 1u16..) {
        // Force some zero groups so compression has something to do.
        let mut groups = Ipv6Addr::from(a).segments();
        for (i, g) in groups.iter_mut().enumerate() {
            if zero_mask >> i & 1 == 1 {
                *g = 0;
            }
        }
        let addr = Ipv6Addr::from(groups);
        let want = normalize(&addr.to_string(), None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(want.itype, IndicatorType::Ipv6);
        let full: Vec<String> = groups.iter().map(|g| format!("{g:04x}")).collect();
        let mut full = full.join(":");
        if upper {
            full = full.to_ascii_uppercase();
        }
        let short: Vec<String> = groups.iter().map(|g| format!("{g:x}")).collect();
        for v in [full.clone(), short.join(":"), format!("[{full}]"), format!("[{full}]:{port}"), format!("{full}/128")] {
            prop_assert_eq!(normalize(&v, None), Ok(want.clone()), "variant {}", v);
            prop_assert_eq!(normalize(&v, Some(IndicatorType::Ipv6)), Ok(want.clone()));
        }
    }

    #[test]
    fn cidr_host_bits_do_not_matter(a in any::<u32>(), b in any::<u32>(), p in 0u8..=32, a6 in any::<u128>(), b6 in any::<u128>(), p6 in 0u8..=128) {
        let same_net_b = mask_v4(a, p) | (b & !mask_v4(u32::MAX, p));
        let x = normalize(&format!("{}/{p}", Ipv4Addr::from(a)), None);
        let y = normalize(&format!("{}/{p}", Ipv4Addr::from(same_net_b)), Some(IndicatorType::Ipv4));
        prop_assert!(x.is_ok());
        prop_assert_eq!(&x, &y);
        let same6 = mask_v6(a6, p6) | (b6 & !mask_v6(u128::MAX, p6));
        let x6 = normalize(&format!("{}/{p6}", Ipv6Addr::from(a6)), None);
        let y6 = normalize(&format!("{}/{p6}", Ipv6Addr::from(same6)), None);
        prop_assert!(x6.is_ok());
        prop_assert_eq!(&x6, &y6);
        // And the canonical text parses back to the same network.
        let v = x.map_err(|e| TestCaseError::fail(e.to_string()))?.value;
        let (net, plen) = parse_cidr(&v).ok_or_else(|| TestCaseError::fail("parse_cidr"))?;
        prop_assert_eq!(plen, p);
        prop_assert_eq!(net, IpAddr::V4(Ipv4Addr::from(mask_v4(a, p))));
    }

    #[test]
    fn prefix_range_is_the_masked_block(a in any::<u32>(), x in any::<u32>(), p in 0u8..=32, a6 in any::<u128>(), x6 in any::<u128>(), p6 in 0u8..=128) {
        // The network is what normalisation writes; the block holds exactly the addresses
        // with that network, and has 2^(bits - prefix) of them.
        let (lo, hi) = prefix_range(u128::from(a), p, true);
        prop_assert_eq!(lo, u128::from(mask_v4(a, p)));
        prop_assert_eq!(hi - lo, (1u128 << (32 - u32::from(p))) - 1);
        let x = u128::from(x);
        prop_assert_eq!(lo <= x && x <= hi, mask_v4(x as u32, p) == mask_v4(a, p));
        let (lo6, hi6) = prefix_range(a6, p6, false);
        prop_assert_eq!(lo6, mask_v6(a6, p6));
        prop_assert_eq!(hi6 - lo6, u128::MAX.checked_shr(u32::from(p6)).unwrap_or(0));
        prop_assert_eq!(lo6 <= x6 && x6 <= hi6, mask_v6(x6, p6) == mask_v6(a6, p6));
    }

    #[test]
    fn ipv4_spellings_agree(a in any::<u32>(), port in 1u16..) {
        let ip = Ipv4Addr::from(a).to_string();
        let want = normalize(&ip, None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for v in [format!("{ip}:{port}"), format!("{ip}/32"), ip.replacen('.', "[.]", 3), format!(" {ip}\t")] {
            prop_assert_eq!(normalize(&v, None), Ok(want.clone()), "variant {}", v);
            prop_assert_eq!(normalize(&v, Some(IndicatorType::Ipv4)), Ok(want.clone()));
        }
    }

    #[test]
    fn hash_case_does_not_matter(bytes in prop::collection::vec(any::<u8>(), 16..=16), mask in any::<u64>()) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let want = normalize(&hex, None);
        prop_assert_eq!(normalize(&mixed_case(&hex, mask), None), want.clone());
        prop_assert_eq!(want.map(|n| n.itype), Ok(IndicatorType::Md5));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
        let s = String::from_utf8_lossy(&b);
        for h in IndicatorType::ALL {
            let _ = normalize(&s, Some(h));
        }
        let _ = normalize(&s, None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The matcher's fast path for observed URLs agrees with full normalisation.
    #[test]
    fn observed_url_fast_path_agrees(
        scheme in prop::sample::select(vec!["", "http://", "HTTP://", "https://", "ftp://", "hxxp://", "x-y://"]),
        host in prop::sample::select(vec!["a.example", "A.example", "a.example.", "1.2.3.4", "01.2.3.4", "[::1]", "1.2.3", "a..b", "u@h.example", "b\u{fc}cher.de"]),
        port in prop::sample::select(vec!["", ":80", ":443", ":8080", ":", ":080", ":99999"]),
        path in "[a-zA-Z0-9/%._~?=&#:@\\[\\]() -]{0,12}",
    ) {
        let raw = format!("{scheme}{host}{port}{path}");
        let want = normalize_url(&raw).unwrap_or_else(|_| raw.trim().to_string());
        prop_assert_eq!(normalize_observed_url(&raw).into_owned(), want);
    }
}
