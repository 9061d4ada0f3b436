//! Correlation: every matchable field of an observation looked up in the indicator set.

use ingest::logs::AlertProbe;
use ingest::{MatchValue, Observation};
use matcher::{Hit, Indicator, Matcher, Severity, Snapshot};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// One indicator hit on one observed field.
#[derive(Debug, Clone)]
pub struct FieldHit {
    /// The ECS name of the observed field (`dns.question.name`, `url.full`, ...).
    pub field: &'static str,
    /// The observed value that matched.
    pub value: String,
    /// The indicator and how it matched.
    pub hit: Hit,
    /// The indicator record.
    pub indicator: Indicator,
}

/// Minimum confidence/severity a hit must have to alert (`-c`, `-s`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HitFilter {
    /// Minimum confidence (0-100).
    pub min_confidence: u8,
    /// Minimum severity.
    pub min_severity: Option<Severity>,
}

/// Looks observations up in a snapshot, caching indicator records (hits are rare, but a hot
/// indicator may hit on every line).
pub struct Correlator<'s> {
    snapshot: &'s Snapshot,
    filter: HitFilter,
    screening: bool,
}

/// The snapshot's prefilter answers "could this value alert?" for the log parsers' cheap
/// pre-screen ([`ingest::logs::LineParser::screen`]).
impl AlertProbe for Correlator<'_> {
    fn ip(&self, ip: IpAddr) -> bool {
        self.snapshot.may_alert_ip(ip)
    }
    fn domain(&self, host: &str) -> bool {
        self.snapshot.may_alert_domain(host)
    }
    fn url(&self, url: &str) -> bool {
        self.snapshot.may_alert_url(url)
    }
    fn url_and_domain(&self, url: &[u8], host: &str) -> bool {
        self.snapshot.may_alert_url_and_domain(url, host)
    }
    fn plain_http_url(&self, url: &[u8], host: &[u8]) -> bool {
        self.snapshot.may_alert_plain_http_url(url, host)
    }
    fn prefetch_ip(&self, ip: IpAddr) {
        self.snapshot.prefetch_ip(ip);
    }
    fn ipv4(&self, ip: Ipv4Addr) -> bool {
        self.snapshot.may_alert_ipv4(ip)
    }
    fn prefetch_ipv4(&self, ip: Ipv4Addr) {
        self.snapshot.prefetch_ipv4(ip);
    }
    fn pattern(&self, text: &[u8]) -> bool {
        self.snapshot.may_alert_pattern(text)
    }
}

/// Per-thread scratch: reused hit buffer and a cache of indicator records (private IPs hit
/// the built-in allowlist on most lines; decoding that record once per thread keeps the
/// hot path allocation-free and lock-free).
#[derive(Default)]
pub struct Scratch {
    hits: Vec<Hit>,
    records: HashMap<u32, Arc<Indicator>>,
}

impl<'s> Correlator<'s> {
    /// A correlator over `snapshot` with the given filter.
    pub fn new(snapshot: &'s Snapshot, filter: HitFilter) -> Self {
        Correlator {
            snapshot,
            filter,
            screening: true,
        }
    }

    /// Turn the pre-screen off (`--no-prefilter`): every line is parsed and looked up in
    /// full. The output is the same; this exists to show that, and to measure it.
    pub fn without_prefilter(mut self) -> Self {
        self.screening = false;
        self
    }

    /// The probe for [`ingest::logs::LineParser::screen`], when the snapshot has a prefilter
    /// and screening is on.
    pub fn probe(&self) -> Option<&dyn AlertProbe> {
        (self.screening && self.snapshot.has_prefilter()).then_some(self as &dyn AlertProbe)
    }

    fn record(&self, id: u32, records: &mut HashMap<u32, Arc<Indicator>>) -> Arc<Indicator> {
        if let Some(ind) = records.get(&id) {
            return ind.clone();
        }
        let ind = Arc::new(self.snapshot.indicator(id));
        if records.len() < 100_000 {
            records.insert(id, ind.clone());
        }
        ind
    }

    /// Every indicator hit by the observation: one entry per indicator (first field wins),
    /// allowlisted values and indicators dropped, filters applied.
    pub fn correlate(&self, obs: &Observation<'_>, scratch: &mut Scratch, out: &mut Vec<FieldHit>) {
        self.correlate_with(obs, true, scratch, out);
    }

    /// As [`Correlator::correlate`]; `check_ips = false` skips `source.ip`/`destination.ip`
    /// (packet sources report IP hits once per flow, from the flow observation only).
    pub fn correlate_with(
        &self,
        obs: &Observation<'_>,
        check_ips: bool,
        scratch: &mut Scratch,
        out: &mut Vec<FieldHit>,
    ) {
        let start = out.len();
        let m = self.snapshot;
        // The prefilter's exact "cannot alert" skips the FST walk or range search.
        let pre = self.screening;
        obs.for_each_matchable(check_ips, |field, value| {
            scratch.hits.clear();
            let text = match value {
                MatchValue::Domain(name) => {
                    if !pre || m.may_alert_domain(name) {
                        m.match_domain(name, &mut scratch.hits);
                    }
                    name
                }
                MatchValue::Address(ip, text) => {
                    if !pre || m.may_alert_ip(ip) {
                        m.match_ip(ip, &mut scratch.hits);
                    }
                    match text {
                        Some(text) => text,
                        None => {
                            // source.ip / destination.ip: internal addresses hit the
                            // built-in allowlist on nearly every line, so settle that from
                            // the cached records before stringifying anything.
                            if scratch.hits.is_empty() {
                                return;
                            }
                            let hits = std::mem::take(&mut scratch.hits);
                            let allowlisted = hits
                                .iter()
                                .any(|h| self.record(h.id, &mut scratch.records).allowlist);
                            if !allowlisted {
                                let text = ip.to_string();
                                self.push_hits(
                                    field,
                                    &text,
                                    &hits,
                                    &mut scratch.records,
                                    start,
                                    out,
                                );
                            }
                            scratch.hits = hits;
                            return;
                        }
                    }
                }
                MatchValue::Url(url) => {
                    if !pre || m.may_alert_url(url) {
                        m.match_url(url, &mut scratch.hits);
                    }
                    url
                }
                MatchValue::Pattern(text) => {
                    m.match_pattern(text.as_bytes(), &mut scratch.hits);
                    text
                }
                MatchValue::Hash(hash) => {
                    m.match_hash(hash, &mut scratch.hits);
                    hash
                }
                MatchValue::Email(address) => {
                    m.match_email(address, &mut scratch.hits);
                    address
                }
            };
            if scratch.hits.is_empty() {
                return;
            }
            let hits = std::mem::take(&mut scratch.hits);
            self.push_hits(field, text, &hits, &mut scratch.records, start, out);
            scratch.hits = hits;
        });
    }

    /// `--raw`: every indicator found in a line of unknown format.
    pub fn correlate_text(&self, text: &[u8], scratch: &mut Scratch, out: &mut Vec<FieldHit>) {
        scratch.hits.clear();
        self.snapshot.match_text(text, &mut scratch.hits);
        if scratch.hits.is_empty() {
            return;
        }
        let start = out.len();
        let hits = std::mem::take(&mut scratch.hits);
        for hit in &hits {
            let ind = self.record(hit.id, &mut scratch.records);
            if ind.allowlist || ind.allowlisted_by.is_some() || !self.passes(&ind) {
                continue;
            }
            if out[start..].iter().any(|f| f.hit.id == hit.id) {
                continue;
            }
            out.push(FieldHit {
                field: "event.original",
                value: self.observed_in(text, hit.id, &ind.value),
                hit: *hit,
                indicator: (*ind).clone(),
            });
        }
        scratch.hits = hits;
    }

    /// The text of `text` that hit indicator `id` (value `indicator`) in `--raw` mode: the
    /// token it was looked up as, else the bytes a pattern matched. Runs only for hits.
    fn observed_in(&self, text: &[u8], id: u32, indicator: &str) -> String {
        let mut probe = Vec::new();
        for t in matcher::text::tokens(text) {
            probe.clear();
            matcher::text::match_token(self.snapshot, t, &mut probe);
            if probe.iter().any(|h| h.id == id) {
                return t.to_string();
            }
        }
        let needle = indicator.as_bytes();
        text.windows(needle.len().max(1))
            .find(|w| w.eq_ignore_ascii_case(needle))
            .map_or_else(
                || indicator.to_string(),
                |w| String::from_utf8_lossy(w).into_owned(),
            )
    }

    fn passes(&self, ind: &Indicator) -> bool {
        ind.confidence >= self.filter.min_confidence
            && self.filter.min_severity.is_none_or(|s| ind.severity >= s)
    }

    fn push_hits(
        &self,
        field: &'static str,
        value: &str,
        hits: &[Hit],
        cache: &mut HashMap<u32, Arc<Indicator>>,
        start: usize,
        out: &mut Vec<FieldHit>,
    ) {
        // An allowlist entry covering this value silences every hit on it.
        if hits.iter().any(|h| self.record(h.id, cache).allowlist) {
            return;
        }
        for hit in hits {
            let ind = self.record(hit.id, cache);
            if ind.allowlisted_by.is_some() || !self.passes(&ind) {
                continue;
            }
            if out[start..].iter().any(|f| f.hit.id == hit.id) {
                continue;
            }
            out.push(FieldHit {
                field,
                value: value.to_string(),
                hit: *hit,
                indicator: (*ind).clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher::{IndicatorType, SnapshotBuilder};

    fn indicator(value: &str, itype: IndicatorType, confidence: u8) -> Indicator {
        let mut i = Indicator::new(value, itype, "feed");
        i.confidence = confidence;
        i
    }

    /// A published snapshot (so it has its prefilter), kept with its directory.
    fn snapshot(list: Vec<Indicator>) -> (tempfile::TempDir, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = SnapshotBuilder::new();
        for i in list {
            b.insert(i);
        }
        b.publish(dir.path(), serde_json::Value::Null).unwrap();
        let s = Snapshot::open_current(dir.path()).unwrap();
        (dir, s)
    }

    fn set() -> (tempfile::TempDir, Snapshot) {
        let mut allow = indicator("good.evil.example", IndicatorType::Fqdn, 100);
        allow.allowlist = true;
        snapshot(vec![
            indicator("evil.example", IndicatorType::Fqdn, 90),
            indicator("weak.example", IndicatorType::Fqdn, 20),
            indicator("203.0.113.0/24", IndicatorType::Ipv4, 80),
            indicator("http://evil.example/gate.php", IndicatorType::Url, 95),
            indicator(&"a".repeat(32), IndicatorType::Ja3, 70),
            allow,
        ])
    }

    /// (field, observed value, indicator) of every hit, in order, with and without the
    /// prefilter (which must not change the answer).
    fn hits(
        s: &Snapshot,
        filter: HitFilter,
        obs: &Observation<'_>,
        ips: bool,
    ) -> Vec<(&'static str, String, String)> {
        let mut all = Vec::new();
        for c in [
            Correlator::new(s, filter),
            Correlator::new(s, filter).without_prefilter(),
        ] {
            let mut out = Vec::new();
            c.correlate_with(obs, ips, &mut Scratch::default(), &mut out);
            all.push(
                out.into_iter()
                    .map(|h| (h.field, h.value, h.indicator.value))
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(all[0], all[1], "the prefilter changed the answer");
        all.pop().unwrap()
    }

    #[test]
    fn every_matchable_field_is_looked_up_once_per_indicator_in_table_order() {
        let (_d, s) = set();
        let obs = Observation {
            dns_question_name: Some("www.evil.example".into()),
            url_full: Some("http://evil.example/gate.php".into()),
            url_domain: Some("evil.example".into()),
            ja3: Some("A".repeat(32).to_lowercase().into()),
            destination_ip: Some("203.0.113.9".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            hits(&s, HitFilter::default(), &obs, true),
            [
                // evil.example hits by name first; url.domain names it again: one alert.
                (
                    "dns.question.name",
                    "www.evil.example".into(),
                    "evil.example".into()
                ),
                (
                    "url.full",
                    "http://evil.example/gate.php".into(),
                    "http://evil.example/gate.php".into()
                ),
                ("tls.client.ja3", "a".repeat(32), "a".repeat(32)),
                (
                    "destination.ip",
                    "203.0.113.9".into(),
                    "203.0.113.0/24".into()
                ),
            ]
        );
        // Packet sources report addresses from the flow observation only.
        let without_ips = hits(&s, HitFilter::default(), &obs, false);
        assert_eq!(without_ips.len(), 3);
        assert!(without_ips.iter().all(|(f, _, _)| *f != "destination.ip"));
    }

    #[test]
    fn an_allowlist_entry_silences_every_hit_on_the_value_it_covers() {
        let (_d, s) = set();
        let name = |n: &'static str| Observation {
            dns_question_name: Some(n.into()),
            ..Default::default()
        };
        assert!(hits(&s, HitFilter::default(), &name("a.good.evil.example"), true).is_empty());
        assert_eq!(
            hits(&s, HitFilter::default(), &name("bad.evil.example"), true).len(),
            1
        );
        // Not a label boundary: no hit.
        assert!(hits(&s, HitFilter::default(), &name("notevil.example"), true).is_empty());
    }

    #[test]
    fn the_filters_drop_weak_and_mild_indicators() {
        let (_d, s) = set();
        let obs = Observation {
            dns_question_name: Some("x.weak.example".into()),
            url_domain: Some("evil.example".into()),
            ..Default::default()
        };
        assert_eq!(hits(&s, HitFilter::default(), &obs, true).len(), 2);
        let strict = HitFilter {
            min_confidence: 50,
            min_severity: None,
        };
        assert_eq!(
            hits(&s, strict, &obs, true),
            [("url.domain", "evil.example".into(), "evil.example".into())]
        );
        let high = HitFilter {
            min_confidence: 0,
            min_severity: Some(Severity::High),
        };
        // Indicator::new's default severity is below high.
        assert!(hits(&s, high, &obs, true).is_empty());
    }
}
