//! Ed25519 keys of a fleet publisher: `trawl keygen` writes `PREFIX.key` (the 32-byte seed,
//! base64, mode 0600) and `PREFIX.pub` (the 32-byte public key, one base64 line).

use super::FleetError;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use std::path::{Path, PathBuf};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A publisher's signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public().to_base64())
            .finish()
    }
}

/// A publisher's public key, what a sensor verifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

fn decode32(text: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|e| format!("{what} is not base64: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{what} has {} bytes, an Ed25519 key has 32", b.len()))
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<SigningKey, FleetError> {
        Self::from_seed(&random_seed()?)
    }

    fn from_seed(seed: &[u8; 32]) -> Result<SigningKey, FleetError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| FleetError::Key(format!("bad seed: {e}")))?;
        Ok(SigningKey { pair })
    }

    /// Read `PREFIX.key` (as written by [`keygen`]).
    pub fn load(path: &Path) -> Result<SigningKey, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|e| FleetError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        let seed = decode32(&text, &path.display().to_string()).map_err(FleetError::Key)?;
        Self::from_seed(&seed)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(k)
    }

    /// The signature of `msg`, base64.
    pub fn sign(&self, msg: &[u8]) -> String {
        B64.encode(self.pair.sign(msg).as_ref())
    }
}

impl PublicKey {
    /// The key from its base64 line.
    pub fn from_base64(text: &str) -> Result<PublicKey, FleetError> {
        decode32(text, "the public key")
            .map(PublicKey)
            .map_err(FleetError::Key)
    }

    /// `[upstream] public_key`: the base64 key itself, or the path of a `.pub` file
    /// (relative to `base`).
    pub fn from_config(value: &str, base: &Path) -> Result<PublicKey, FleetError> {
        if let Ok(k) = Self::from_base64(value) {
            return Ok(k);
        }
        let path = base.join(value);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            FleetError::Key(format!(
                "public_key = {value:?} is neither a base64 key nor a readable file ({}: {e})",
                path.display()
            ))
        })?;
        Self::from_base64(&text).map_err(|e| FleetError::Key(format!("{}: {e}", path.display())))
    }

    /// The base64 line.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Whether `signature` (base64) is this key's signature of `msg`.
    pub fn verify(&self, msg: &[u8], signature: &str) -> bool {
        let Ok(sig) = B64.decode(signature.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, &sig)
            .is_ok()
    }
}

fn random_seed() -> Result<[u8; 32], FleetError> {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| FleetError::Key("the system random source failed".into()))?;
    Ok(seed)
}

/// `trawl keygen --out PREFIX`: write `PREFIX.key` (mode 0600, created new: an existing key
/// is never overwritten) and `PREFIX.pub`; returns both paths.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), FleetError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (key_path, pub_path) = (with(".key"), with(".pub"));
    if pub_path.exists() {
        return Err(FleetError::Key(format!(
            "{} exists: choose another prefix (a key pair is never overwritten)",
            pub_path.display()
        )));
    }
    // ring does not give a key's seed back: keep the seed the key is made from.
    let seed = random_seed()?;
    let key = SigningKey::from_seed(&seed)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FleetError::Io { path, source }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(io(&key_path))?;
    writeln!(f, "{}", B64.encode(seed)).map_err(io(&key_path))?;
    f.sync_all().map_err(io(&key_path))?;
    std::fs::write(&pub_path, format!("{}\n", key.public().to_base64())).map_err(io(&pub_path))?;
    Ok((key_path, pub_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_a_private_key_and_a_public_line_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let (k, p) = keygen(&dir.path().join("fleet")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let key = SigningKey::load(&k).unwrap();
        let public = PublicKey::from_config("fleet.pub", dir.path()).unwrap();
        let line = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            PublicKey::from_config(line.trim(), Path::new("/")).unwrap(),
            public
        );
        assert_eq!(key.public(), public);
        let sig = key.sign(b"manifest");
        assert!(public.verify(b"manifest", &sig));
        assert!(!public.verify(b"manifesT", &sig));
        let other = SigningKey::generate().unwrap().public();
        assert!(!other.verify(b"manifest", &sig));
        // Never overwrites a key.
        assert!(keygen(&dir.path().join("fleet")).is_err());
    }
}
