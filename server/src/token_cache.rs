//! Tokens already looked up, keyed by their hash and valid while the store's
//! [`Store::tokens_version`] stays the same: a request costs no token query of its own, and a
//! revocation (by this process or another sharing the store) still takes effect on the next
//! request, since any commit changes the version. Expiry is checked on every request from the
//! cached token's `expires`.

use crate::store::{Store, StoreError};
use crate::token::{Token, TokenHash};
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// Most tokens cached; the cache starts over when full (only tokens that exist are cached,
/// so guessing secrets cannot fill it).
pub const MAX_CACHED_TOKENS: usize = 10_000;

/// The cache (see the module documentation).
#[derive(Debug, Default)]
pub struct TokenCache {
    inner: RwLock<Cached>,
}

#[derive(Debug, Default)]
struct Cached {
    version: Option<i64>,
    tokens: HashMap<TokenHash, Token>,
}

impl TokenCache {
    /// The token with this hash (revoked and expired ones too), from the cache while the
    /// store has not changed since it was read, else from the store.
    pub fn get(&self, store: &dyn Store, hash: &TokenHash) -> Result<Option<Token>, StoreError> {
        let Some(version) = store.tokens_version()? else {
            return store.token(hash);
        };
        {
            let c = self.inner.read().unwrap_or_else(PoisonError::into_inner);
            if c.version == Some(version) {
                if let Some(t) = c.tokens.get(hash) {
                    return Ok(Some(t.clone()));
                }
            }
        }
        // The version was read before the lookup: a change landing in between makes the next
        // request see a new version and look again.
        let found = store.token(hash)?;
        let mut c = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if c.version != Some(version) {
            c.tokens.clear();
            c.version = Some(version);
        }
        if let Some(t) = &found {
            if c.tokens.len() >= MAX_CACHED_TOKENS {
                c.tokens.clear();
            }
            c.tokens.insert(*hash, t.clone());
        }
        Ok(found)
    }
}
