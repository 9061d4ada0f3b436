//! `trawl replay` of corpus TLS handshakes against indicators of their server side: the
//! leaf certificate's SHA-256 given as a STIX `x509-certificate:hashes.'SHA-256'` pattern,
//! its SHA-1 as a plain (inferred `sha1`) hash, and the ServerHello's JA4S as a `ja4`. Each alerts on
//! its own field (`tls.server.hash.sha256`, `tls.server.hash.sha1`, `tls.server.ja4s`).

use crate::common::*;

#[test]
fn replay_alerts_on_certificate_hashes_and_ja4s() {
    let Some(c) = corpus() else { return };
    let pcap = c.join("pcaps/zeek/tls1.2/tls1.2.pcap");
    let dir = tempfile::tempdir().unwrap();
    // The values trawl observes, as `trawl observe` prints them (checked against tshark by
    // trawl-ingest's packet_corpus::ja4s_and_cert_hashes_against_tshark).
    let observed = json_lines(&trawl_ok(&["-q", "observe", p(&pcap)]));
    let field = |path: &[&str]| {
        observed
            .iter()
            .find_map(|o| {
                let mut v = o;
                for k in path {
                    v = v.get(k)?;
                }
                v.as_str().map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {path:?} observed"))
    };
    let sha1 = field(&["tls", "server", "hash", "sha1"]);
    let sha256 = field(&["tls", "server", "hash", "sha256"]);
    let ja4s = field(&["tls", "server", "ja4s"]);
    assert_eq!(sha1, "3367a1824a6013c02a3e25bbe4da863387faf134");
    assert_eq!(sha256.len(), 64);
    std::fs::write(
        dir.path().join("certs.json"),
        format!(
            r#"{{"type":"bundle","id":"bundle--5d0092c5-5f74-4287-9642-33f4c354e56d","objects":[
  {{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
   "created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z",
   "pattern":"[x509-certificate:hashes.'SHA-256' = '{}']","pattern_type":"stix",
   "valid_from":"2026-01-01T00:00:00Z"}}]}}"#,
            sha256.to_ascii_uppercase()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("fp.txt"), format!("{sha1}\n{ja4s}\n")).unwrap();
    std::fs::write(
        dir.path().join("trawl.toml"),
        "[[feed]]\nname = \"certs\"\nsource = \"certs.json\"\nformat = \"stix2\"\n\n\
         [[feed]]\nname = \"fingerprints\"\nsource = \"fp.txt\"\nformat = \"plain\"\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("trawl.toml");
    trawl_ok(&["-q", "update", "--config", p(&config), "--data", p(&data)]);
    let out = trawl_ok(&["-q", "replay", "--data", p(&data), p(&pcap)]);
    let mut got: Vec<(String, String, String)> = json_lines(&out)
        .iter()
        .map(|a| {
            let m = &a["trawl"]["matched"];
            let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
            (s(&m["field"]), s(&m["indicator"]), s(&m["itype"]))
        })
        .collect();
    got.sort();
    let mut want = vec![
        ("tls.server.hash.sha1".into(), sha1, "sha1".into()),
        ("tls.server.hash.sha256".into(), sha256, "sha256".into()),
        ("tls.server.ja4s".into(), ja4s, "ja4".into()),
    ];
    want.sort();
    assert_eq!(got, want, "{out}");
}
