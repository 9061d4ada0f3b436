//! API tokens: the secret handed to a user once, its SHA-256 (the only thing stored), and
//! what a token may do and see (ARCHITECTURE.md §9).

use matcher::{Indicator, IndicatorType, Tlp, UnixTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes in a secret: 256 bits.
const SECRET_BYTES: usize = 32;

/// A token's secret as handed to its user: 64 lower-case hex digits. Never logged, never
/// stored; `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// A fresh secret from the operating system's random source.
    pub fn generate() -> Result<Secret, getrandom::Error> {
        let mut b = [0u8; SECRET_BYTES];
        getrandom::getrandom(&mut b)?;
        Ok(Secret(hex(&b)))
    }

    /// A secret as presented by a client (any text; checked only by hash).
    pub fn presented(s: &str) -> Secret {
        Secret(s.trim().to_string())
    }

    /// The text to show the user, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store keeps: SHA-256 of the secret.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

/// SHA-256 of a secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

impl TokenHash {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Constant-time equality.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

/// What a new token may do (everything but its secret and id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The user it was issued to; the provider of everything it submits.
    pub user: String,
    /// Groups whose indicators it sees (sorted, unique). No groups: it sees nothing but
    /// what it may see as an admin.
    pub groups: Vec<String>,
    /// May search and pull feeds.
    pub read: bool,
    /// May submit indicators.
    pub write: bool,
    /// Sees every group, may delete indicators and manage tokens.
    pub admin: bool,
    /// The most restricted TLP it sees.
    pub max_tlp: Tlp,
    /// The only indicator types it may search and see (empty: all).
    pub itypes: Vec<IndicatorType>,
    /// After this instant it is refused.
    pub expires: Option<UnixTime>,
}

impl Grant {
    /// Sort and deduplicate the lists.
    pub fn tidy(&mut self) {
        self.groups.sort();
        self.groups.dedup();
        self.itypes.sort();
        self.itypes.dedup();
    }
}

/// A stored token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Store id.
    pub id: i64,
    /// What it may do.
    #[serde(flatten)]
    pub grant: Grant,
    /// When it was created.
    pub created: UnixTime,
    /// Revoked tokens are refused.
    pub revoked: bool,
    /// The first 8 hex digits of its hash, to tell tokens apart in listings.
    pub hash_prefix: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No token, or none with that secret.
    #[error("unknown or missing token")]
    Unknown,
    /// Revoked.
    #[error("token revoked")]
    Revoked,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// It lacks the right the request needs.
    #[error("token lacks the {0} right")]
    Lacks(&'static str),
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Search, feeds.
    Read,
    /// Submissions.
    Write,
    /// Deletes, tokens.
    Admin,
}

impl Token {
    /// Whether this token may make a request needing `right` at `now`.
    pub fn check(&self, right: Right, now: UnixTime) -> Result<(), Refused> {
        if self.revoked {
            return Err(Refused::Revoked);
        }
        if self.grant.expires.is_some_and(|e| e <= now) {
            return Err(Refused::Expired);
        }
        let g = &self.grant;
        let ok = match right {
            Right::Read => g.read || g.admin,
            Right::Write => g.write || g.admin,
            Right::Admin => g.admin,
        };
        if ok {
            Ok(())
        } else {
            Err(Refused::Lacks(match right {
                Right::Read => "read",
                Right::Write => "write",
                Right::Admin => "admin",
            }))
        }
    }

    /// Whether it may search for or see indicators of type `t`.
    pub fn may_use_itype(&self, t: IndicatorType) -> bool {
        self.grant.itypes.is_empty() || self.grant.itypes.contains(&t)
    }

    /// Whether it is a member of `group` (admins are members of every group).
    pub fn in_group(&self, group: &str) -> bool {
        self.grant.admin || self.grant.groups.iter().any(|g| g == group)
    }

    /// The privilege rule (ARCHITECTURE.md §3): a token sees an indicator when it is a member
    /// of every group the indicator carries (admins: of all), the indicator's TLP is at most
    /// the token's `max_tlp`, and its itype is one the token may use.
    pub fn may_see(&self, ind: &Indicator) -> bool {
        ind.tlp <= self.grant.max_tlp
            && self.may_use_itype(ind.itype)
            && ind.groups.iter().all(|g| self.in_group(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(groups: &[&str], max_tlp: Tlp) -> Token {
        Token {
            id: 1,
            grant: Grant {
                user: "u".into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                read: true,
                write: false,
                admin: false,
                max_tlp,
                itypes: Vec::new(),
                expires: None,
            },
            created: 0,
            revoked: false,
            hash_prefix: String::new(),
        }
    }

    #[test]
    fn secrets_are_long_random_and_hash_stably() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
        assert!(a.hash().matches(&Secret::presented(a.expose()).hash()));
        assert!(!a.hash().matches(&b.hash()));
        assert!(!format!("{a:?}").contains(a.expose()));
        // SHA-256("abc"), so the stored hash is the standard one.
        assert_eq!(
            Secret::presented("abc").hash().to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn visibility_needs_every_group_the_tlp_and_the_itype() {
        let mut ind = Indicator::new("evil.example", IndicatorType::Fqdn, "f");
        ind.tlp = Tlp::Amber;
        let green = token(&["everyone"], Tlp::Green);
        let amber = token(&["everyone"], Tlp::Amber);
        let none = token(&[], Tlp::Red);
        assert!(!green.may_see(&ind));
        assert!(amber.may_see(&ind));
        assert!(!none.may_see(&ind));
        ind.groups = matcher::Groups::from_names(["csirt", "everyone"]);
        assert!(!amber.may_see(&ind));
        let both = token(&["csirt", "everyone"], Tlp::Red);
        assert!(both.may_see(&ind));
        let mut admin = token(&[], Tlp::Amber);
        admin.grant.admin = true;
        assert!(admin.may_see(&ind));
        let mut hashes_only = both.clone();
        hashes_only.grant.itypes = vec![IndicatorType::Sha256];
        assert!(!hashes_only.may_see(&ind));
    }

    #[test]
    fn revoked_expired_and_missing_rights_are_refused() {
        let mut t = token(&["everyone"], Tlp::Green);
        assert_eq!(t.check(Right::Read, 10), Ok(()));
        assert_eq!(t.check(Right::Write, 10), Err(Refused::Lacks("write")));
        t.grant.expires = Some(10);
        assert_eq!(t.check(Right::Read, 10), Err(Refused::Expired));
        t.grant.expires = None;
        t.revoked = true;
        assert_eq!(t.check(Right::Read, 10), Err(Refused::Revoked));
    }
}
