//! `format = "taxii"` over mutual TLS: medallion (`tests/common/medallion.rs`) served with
//! an `ssl.SSLContext` that requires client certificates of the test's CA, certificates
//! made here by the openssl CLI. With `tls_client_cert`/`tls_client_key` (and `tls_ca` for
//! the private CA) the pull works; without a certificate, with one of another CA, without
//! `tls_ca`, or with a wrong file, the feed fails with an error that says what to do.

use crate::certs::{ca, leaf};
use crate::taxii::run;
use feeds::config::Config;
use feeds::update::{FeedStatus, UpdateReport};
use matcher::Snapshot;
use serde_json::json;
use std::path::PathBuf;

const COLLECTION: &str = "5d0f3b7e-1c2a-4e5f-8a9b-0c1d2e3f4a5b";
const ID: &str = "indicator--00000000-0000-4000-8000-0000000000c1";

fn failure(r: &UpdateReport) -> String {
    match &r.feeds[0].status {
        FeedStatus::Failed { reason } => reason.clone(),
        other => panic!("expected a failure, got {other:?}: {}", r.render_text()),
    }
}

#[test]
fn taxii_pull_over_mutual_tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ca(d, "trusted");
    ca(d, "rogue");
    leaf(
        d,
        "server",
        "trusted",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    leaf(d, "sensor", "trusted", "extendedKeyUsage=clientAuth\n");
    leaf(d, "intruder", "rogue", "extendedKeyUsage=clientAuth\n");
    let p = |f: &str| -> PathBuf { d.join(f) };
    let indicator = json!({
        "type": "indicator", "spec_version": "2.1", "id": ID,
        "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
        "pattern": "[domain-name:value = 'mtls.example']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    });
    let data = crate::medallion::api_root(vec![crate::medallion::collection(
        COLLECTION,
        false,
        vec![indicator],
    )]);
    let server = crate::medallion::start(
        d,
        &data,
        &[("u", "p")],
        100,
        Some(&crate::medallion::ServerTls {
            cert: p("server.crt"),
            key: p("server.key"),
            client_ca: p("trusted-ca.crt"),
        }),
    );
    let url = server.url(&format!("/api1/collections/{COLLECTION}/objects/"));
    // Relative paths are relative to the config file.
    let cfg_path = d.join("trawl.toml");
    let config = |tls: &str| -> Config {
        std::fs::write(
            &cfg_path,
            format!(
                "[[feed]]\nname = \"mtls\"\nsource = \"{url}\"\nformat = \"taxii\"\n\
                 auth_header = \"Authorization: Basic dTpw\"\nretries = 0\nmin_ratio = 0\n{tls}"
            ),
        )
        .unwrap();
        Config::load(&cfg_path).unwrap()
    };

    // The right certificate and the private CA: the pull works.
    let good = "tls_client_cert = \"sensor.crt\"\ntls_client_key = \"sensor.key\"\n\
                tls_ca = \"trusted-ca.crt\"\n";
    let r = run(&config(good), d);
    assert_eq!(
        r.feeds[0].status,
        FeedStatus::Fetched,
        "{}",
        r.render_text()
    );
    let snap = Snapshot::open_current(&d.join("data")).unwrap();
    let got: Vec<_> = snap.iter().filter(|i| i.value == "mtls.example").collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].external_id.as_deref(), Some(ID));

    // No client certificate: refused, and the error says which keys to set.
    let why = failure(&run(&config("tls_ca = \"trusted-ca.crt\"\n"), d));
    assert!(why.contains("tls_client_cert"), "{why}");
    // A certificate of another CA: refused.
    let rogue = "tls_client_cert = \"intruder.crt\"\ntls_client_key = \"intruder.key\"\n\
                 tls_ca = \"trusted-ca.crt\"\n";
    let why = failure(&run(&config(rogue), d));
    assert!(why.contains("refused tls_client_cert"), "{why}");
    // The right certificate but no tls_ca: the server's private CA is not trusted.
    let no_ca = "tls_client_cert = \"sensor.crt\"\ntls_client_key = \"sensor.key\"\n";
    let why = failure(&run(&config(no_ca), d));
    assert!(why.contains("set tls_ca"), "{why}");
    // A wrong file is named with its key.
    let swapped = "tls_client_cert = \"sensor.crt\"\ntls_client_key = \"sensor.crt\"\n\
                   tls_ca = \"trusted-ca.crt\"\n";
    let why = failure(&run(&config(swapped), d));
    assert!(
        why.contains("tls_client_key")
            && why.contains("sensor.crt")
            && why.contains("no private key"),
        "{why}"
    );
    let missing = "tls_client_cert = \"sensor.crt\"\ntls_client_key = \"sensor.key\"\n\
                   tls_ca = \"nowhere.crt\"\n";
    let why = failure(&run(&config(missing), d));
    assert!(
        why.contains("tls_ca") && why.contains("nowhere.crt"),
        "{why}"
    );
    // A certificate without its key is a config error.
    std::fs::write(
        &cfg_path,
        format!(
            "[[feed]]\nname = \"mtls\"\nsource = \"{url}\"\ntls_client_cert = \"sensor.crt\"\n"
        ),
    )
    .unwrap();
    let err = Config::load(&cfg_path).unwrap_err().to_string();
    assert!(err.contains("tls_client_key"), "{err}");

    // The good configuration still pulls after all that.
    let r = run(&config(good), d);
    assert_eq!(
        r.feeds[0].status,
        FeedStatus::Fetched,
        "{}",
        r.render_text()
    );
}
