//! The signed manifest of a release (`latest.json`): `{"manifest": TEXT, "signature": SIG,
//! "key": PUB}` where TEXT is the manifest's JSON exactly as signed (so verifying never
//! depends on re-serialising) and SIG the base64 Ed25519 signature of TEXT's bytes.

use super::keys::{PublicKey, SigningKey};
use super::FleetError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// Path relative to the release directory (`bundles/ID.jsonl.gz`).
    pub path: String,
    /// SHA-256 (hex) of the file's content after gzip decompression.
    pub sha256: String,
    /// Size of the file as stored (compressed), what a download costs.
    pub bytes: u64,
}

/// A delta a sensor holding release `from` may apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaRef {
    /// The release it starts from.
    pub from: String,
    /// The delta file.
    pub file: FileRef,
}

impl DeltaRef {
    /// The release the delta makes, from its file name (`deltas/FROM-TO.delta.gz`, as
    /// publish names it); None for another shape.
    pub fn to(&self) -> Option<&str> {
        let to = self
            .file
            .path
            .strip_prefix("deltas/")?
            .strip_prefix(self.from.as_str())?
            .strip_prefix('-')?
            .strip_suffix(".delta.gz")?;
        valid_id(to).then_some(to)
    }
}

/// What a release is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The release id: `SERIAL-HASH12`.
    pub id: String,
    /// One more than the previous release's; a sensor refuses a lower one (a replay).
    pub serial: u64,
    /// The previous release, if any.
    pub parent: Option<String>,
    /// When it was published (Unix seconds).
    pub created: i64,
    /// The publisher's snapshot version it was made from.
    pub source_version: u64,
    /// Indicators in the set.
    pub total: usize,
    /// Indicators per itype.
    pub counts_by_itype: BTreeMap<String, usize>,
    /// Indicators per feed.
    pub counts_by_feed: BTreeMap<String, usize>,
    /// SHA-256 of the set's canonical bytes (see [`super::set`]).
    pub content_hash: String,
    /// The publisher marked an empty or shrunken set as intended (`--intended-shrink`).
    pub intended: bool,
    /// The full set.
    pub bundle: FileRef,
    /// Deltas from recent releases to this one.
    pub deltas: Vec<DeltaRef>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Signed {
    manifest: String,
    signature: String,
    key: String,
}

/// Whether `id` is a release id as [`Manifest::id`] makes them (it becomes part of paths
/// and URLs, so nothing else is accepted).
pub fn valid_id(id: &str) -> bool {
    let mut parts = id.splitn(2, '-');
    let serial = parts.next().unwrap_or_default();
    let hash = parts.next().unwrap_or_default();
    !serial.is_empty()
        && serial.len() <= 20
        && serial.bytes().all(|b| b.is_ascii_digit())
        && hash.len() == 12
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `path` is a file path a manifest may name (`bundles/..`, `deltas/..`, no `..`).
fn valid_path(path: &str) -> bool {
    (path.starts_with("bundles/") || path.starts_with("deltas/"))
        && path.len() < 200
        && path.split('/').count() == 2
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/".contains(&b))
        && !path.contains("..")
}

impl Manifest {
    /// The signed `latest.json` bytes.
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        let text = serde_json::to_string(self).unwrap_or_default();
        let signed = Signed {
            signature: key.sign(text.as_bytes()),
            key: key.public().to_base64(),
            manifest: text,
        };
        let mut out = serde_json::to_vec_pretty(&signed).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Verify `latest.json` bytes with `key` and read the manifest; a bad signature, a
    /// different signer, an unknown format, or ids and paths not as this build makes them
    /// are refused.
    pub fn open(bytes: &[u8], key: &PublicKey) -> Result<Manifest, FleetError> {
        let refuse = |s: String| FleetError::Refused(s);
        let signed: Signed = serde_json::from_slice(bytes)
            .map_err(|e| refuse(format!("latest.json is not a signed manifest: {e}")))?;
        if !key.verify(signed.manifest.as_bytes(), &signed.signature) {
            return Err(refuse(if signed.key.trim() != key.to_base64() {
                format!(
                    "manifest signed by key {} (not the configured public_key {}): wrong key?",
                    signed.key.chars().take(44).collect::<String>(),
                    key.to_base64()
                )
            } else {
                "manifest signature does not verify (tampered?)".into()
            }));
        }
        let m: Manifest = serde_json::from_str(&signed.manifest)
            .map_err(|e| refuse(format!("signed manifest unreadable: {e}")))?;
        if m.format != FORMAT {
            return Err(refuse(format!(
                "manifest format {} (this trawl reads {FORMAT}): upgrade trawl",
                m.format
            )));
        }
        let ids_ok = valid_id(&m.id)
            && m.parent.as_deref().is_none_or(valid_id)
            && m.deltas.iter().all(|d| valid_id(&d.from));
        let paths_ok =
            valid_path(&m.bundle.path) && m.deltas.iter().all(|d| valid_path(&d.file.path));
        if !ids_ok || !paths_ok {
            return Err(refuse(
                "manifest names a malformed release id or file path".into(),
            ));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            id: "2-0123456789ab".into(),
            serial: 2,
            parent: Some("1-aaaaaaaaaaaa".into()),
            created: 1_700_000_000,
            source_version: 7,
            total: 1,
            counts_by_itype: BTreeMap::new(),
            counts_by_feed: BTreeMap::new(),
            content_hash: "00".into(),
            intended: false,
            bundle: FileRef {
                path: "bundles/2-0123456789ab.jsonl.gz".into(),
                sha256: "00".into(),
                bytes: 10,
            },
            deltas: vec![],
        }
    }

    #[test]
    fn a_signed_manifest_opens_only_with_its_key_and_untouched() {
        let key = SigningKey::generate().unwrap();
        let bytes = key.public();
        let signed = sample().sign(&key);
        assert_eq!(Manifest::open(&signed, &bytes).unwrap(), sample());
        let other = SigningKey::generate().unwrap().public();
        let err = Manifest::open(&signed, &other).unwrap_err().to_string();
        assert!(err.contains("wrong key"), "{err}");
        let text = String::from_utf8(signed).unwrap();
        let tampered = text.replace("\\\"total\\\":1", "\\\"total\\\":2");
        assert_ne!(tampered, text);
        let err = Manifest::open(tampered.as_bytes(), &bytes)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not verify"), "{err}");
    }

    #[test]
    fn ids_and_paths_are_only_what_publish_makes() {
        assert!(valid_id("12-0123456789ab"));
        assert!(!valid_id("12-0123456789aB"));
        assert!(!valid_id("../x"));
        assert!(valid_path("deltas/1-0123456789ab-2-0123456789ab.delta.gz"));
        assert!(!valid_path("bundles/../../etc/passwd"));
        assert!(!valid_path("/etc/passwd"));
    }
}
