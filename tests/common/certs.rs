//! Test certificates from the openssl CLI (Debian's `openssl`, which `make deps` installs):
//! P-256 keys, valid for two days. A self-signed certificate for 127.0.0.1, a CA, and a leaf
//! that a CA signs. One way to make them for every test crate (`#[path]`, like corpus.rs):
//! the server's TLS transport, the daemon's Kafka behind TLS, the feeds' TAXII over mutual TLS.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The key every certificate here gets: a fresh P-256 EC key, unencrypted.
const P256_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// `openssl ARGS` run in `dir`; panics with openssl's own message when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (the CLI; `make deps` installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate for 127.0.0.1 with common name `cn`, which a client can also
/// trust as its CA: (`NAME.pem`, `NAME.key`) in `dir`.
pub fn self_signed(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    let subject = format!("/CN={cn}");
    let mut args = vec!["req", "-x509"];
    args.extend(P256_KEY);
    args.extend(["-days", "2", "-subj", &subject]);
    args.extend(["-addext", "subjectAltName=IP:127.0.0.1"]);
    args.extend(["-keyout", &key, "-out", &cert]);
    openssl(dir, &args);
    (dir.join(cert), dir.join(key))
}

/// A CA: `NAME-ca.crt` and `NAME-ca.key` in `dir`.
pub fn ca(dir: &Path, name: &str) {
    let (cert, key) = (format!("{name}-ca.crt"), format!("{name}-ca.key"));
    let subject = format!("/CN={name} test CA");
    let mut args = vec!["req", "-x509"];
    args.extend(P256_KEY);
    args.extend([
        "-days", "2", "-subj", &subject, "-keyout", &key, "-out", &cert,
    ]);
    openssl(dir, &args);
}

/// `NAME.crt` and `NAME.key` in `dir`, signed by the CA `CA-ca` (see [`ca`]) with the
/// extensions `ext` (an openssl extfile's lines, e.g. `extendedKeyUsage=clientAuth`).
pub fn leaf(dir: &Path, name: &str, ca: &str, ext: &str) {
    let ext_file = format!("{name}.ext");
    std::fs::write(dir.join(&ext_file), ext).expect("writing the extensions file");
    let (cert, key, csr) = (
        format!("{name}.crt"),
        format!("{name}.key"),
        format!("{name}.csr"),
    );
    let subject = format!("/CN={name}");
    let mut args = vec!["req"];
    args.extend(P256_KEY);
    args.extend(["-subj", &subject, "-keyout", &key, "-out", &csr]);
    openssl(dir, &args);
    let (ca_cert, ca_key) = (format!("{ca}-ca.crt"), format!("{ca}-ca.key"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_cert,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext_file,
        ],
    );
}
