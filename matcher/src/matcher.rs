//! The [`Matcher`] trait: what a compiled indicator set answers.

use crate::model::MatchKind;
use std::net::IpAddr;

/// Index of an indicator inside one snapshot (`Snapshot::indicator(id)`).
pub type IndicatorId = u32;

/// One indicator that covers an observed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    /// The indicator's id in the set that produced the hit.
    pub id: IndicatorId,
    /// How it covered the value.
    pub kind: MatchKind,
}

/// Lookups of observed values against an indicator set (ARCHITECTURE.md §4 semantics).
///
/// Every method appends the hits it finds to `hits` and never clears it, so a caller can
/// reuse one buffer per batch (no allocation on the hot path). Inputs are values as
/// observed: the matcher itself folds ASCII case, strips a trailing dot from names and
/// applies the cheap parts of URL normalisation. Allowlist entries are reported like any
/// other; the caller decides what to suppress.
pub trait Matcher: Send + Sync {
    /// Domain indicators equal to `host` or a parent of it at a label boundary
    /// (`evil.com` covers `a.evil.com`, never `notevil.com`); exact-only entries match only
    /// the name itself. A host that is an IP literal is looked up as an IP.
    fn match_domain(&self, host: &str, hits: &mut Vec<Hit>);

    /// IP indicators equal to `ip` (Exact) and every CIDR enclosing it (EnclosingCidr).
    fn match_ip(&self, ip: IpAddr, hits: &mut Vec<Hit>);

    /// URL indicators equal to `url` after normalisation (Exact), URL indicators without a
    /// query that are a prefix of it at a path boundary (UrlPrefix), and pattern indicators
    /// found inside it (Substring). Does not look up the host: call `match_domain` for that.
    fn match_url(&self, url: &str, hits: &mut Vec<Hit>);

    /// Hash-like indicators (md5, sha1, sha256, sha512, ja3, ja4, x509-sha1) equal to
    /// `value`, compared case-insensitively.
    fn match_hash(&self, value: &str, hits: &mut Vec<Hit>);

    /// E-mail indicators equal to `address` (case-insensitive).
    fn match_email(&self, address: &str, hits: &mut Vec<Hit>);

    /// Pattern indicators (Aho-Corasick, overlapping) found inside `text`, e.g. a user agent.
    fn match_pattern(&self, text: &[u8], hits: &mut Vec<Hit>);

    /// `--raw` scanning of text whose format is unknown: every token that looks like a
    /// domain, IP, URL, e-mail or hash is looked up with the methods above, and patterns are
    /// searched; tokens are delimited so `evil.com` never hits inside `notevil.com`.
    fn match_text(&self, text: &[u8], hits: &mut Vec<Hit>);
}
