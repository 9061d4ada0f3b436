//! One indicator as a compact byte record (ARCHITECTURE.md §2.1, "bounded memory"): what
//! `trawl update` holds and spills per indicator instead of an [`Indicator`] (about 250
//! bytes of struct before its strings).
//!
//! Layout: type byte (position in [`IndicatorType::ALL`], which is also the type order),
//! varint key length, key bytes — the value, or a domain's label-reversed name
//! (`com.example.www`), so records sort in a snapshot's id order ([`matcher::snapshot::id_order`])
//! and the sort key is a prefix of the record — then
//! confidence, severity, TLP, a flag byte (derived, exact-only, allowlist, and which
//! optional fields follow), the present times (zigzag varints), the present strings
//! (provider, description, reference, allowlisted_by, external id; varint length + bytes),
//! tags, sources and groups (varint count + strings; no groups for the default set).

use matcher::model::Groups;
use matcher::snapshot::{get_varint, put_varint, reverse_labels_into};
use matcher::{Indicator, IndicatorType, Severity, Tlp};

const DERIVED: u8 = 1;
const EXACT_ONLY: u8 = 1 << 1;
const ALLOWLIST: u8 = 1 << 2;
const PROVIDER: u8 = 1 << 3;
const DESCRIPTION: u8 = 1 << 4;
const REFERENCE: u8 = 1 << 5;
const ALLOWLISTED_BY: u8 = 1 << 6;
const EXTERNAL_ID: u8 = 1 << 7;

/// The byte a record starts with: the position of `t` in [`IndicatorType::ALL`].
pub fn type_byte(t: IndicatorType) -> u8 {
    IndicatorType::ALL.iter().position(|x| *x == t).unwrap_or(0) as u8
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_list<'a>(out: &mut Vec<u8>, list: impl ExactSizeIterator<Item = &'a str>) {
    put_varint(out, list.len() as u64);
    for s in list {
        put_str(out, s);
    }
}

/// Append the sort key of `(itype, value)` to `out` as a record starts with it: type
/// byte, varint length, then the value or, for a domain, its label-reversed name.
pub fn put_key(itype: IndicatorType, value: &str, out: &mut Vec<u8>) {
    if itype == IndicatorType::Fqdn {
        out.push(type_byte(itype));
        put_varint(out, value.len() as u64);
        reverse_labels_into(value.as_bytes(), out);
    } else {
        put_raw_key(type_byte(itype), value.as_bytes(), out);
    }
}

/// Append a sort key as [`key`] reads it, `t` then `key`, to `out`: how records that are not
/// indicators' (a pulled STIX object's, by its id) start.
pub fn put_raw_key(t: u8, key: &[u8], out: &mut Vec<u8>) {
    out.push(t);
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
}

/// The key bytes [`key`] reads for `(itype, value)` (the value, or a domain's
/// label-reversed name) into `buf`.
pub fn key_of<'b>(itype: IndicatorType, value: &str, buf: &'b mut Vec<u8>) -> (u8, &'b [u8]) {
    buf.clear();
    if itype == IndicatorType::Fqdn {
        reverse_labels_into(value.as_bytes(), buf);
    } else {
        buf.extend_from_slice(value.as_bytes());
    }
    (type_byte(itype), buf)
}

/// Append `ind` as one record to `out`.
pub fn encode(ind: &Indicator, out: &mut Vec<u8>) {
    put_key(ind.itype, &ind.value, out);
    out.push(ind.confidence);
    out.push(ind.severity as u8);
    out.push(ind.tlp as u8);
    let mut flags = 0;
    for (on, bit) in [
        (ind.derived, DERIVED),
        (ind.exact_only, EXACT_ONLY),
        (ind.allowlist, ALLOWLIST),
        (ind.provider.is_some(), PROVIDER),
        (ind.description.is_some(), DESCRIPTION),
        (ind.reference.is_some(), REFERENCE),
        (ind.allowlisted_by.is_some(), ALLOWLISTED_BY),
        (ind.external_id.is_some(), EXTERNAL_ID),
    ] {
        if on {
            flags |= bit;
        }
    }
    out.push(flags);
    let times = [ind.first_seen, ind.last_seen, ind.reported, ind.expires];
    let mut present = 0u8;
    for (k, t) in times.iter().enumerate() {
        if t.is_some() {
            present |= 1 << k;
        }
    }
    out.push(present);
    for t in times.into_iter().flatten() {
        put_varint(out, zigzag(t));
    }
    for s in [
        &ind.provider,
        &ind.description,
        &ind.reference,
        &ind.allowlisted_by,
        &ind.external_id,
    ]
    .into_iter()
    .flatten()
    {
        put_str(out, s);
    }
    put_list(out, ind.tags.iter().map(String::as_str));
    put_list(out, ind.sources.iter().map(String::as_str));
    if ind.groups.is_everyone() {
        put_varint(out, 0);
    } else {
        let names: Vec<&str> = ind.groups.iter().collect();
        put_list(out, names.into_iter());
    }
}

/// What the update's history and diff need of a previous snapshot's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prev {
    /// When it was first seen.
    pub first_seen: Option<i64>,
    /// When it was last seen.
    pub last_seen: Option<i64>,
    /// A fingerprint of the metadata whose change counts as "changed".
    pub fp: u64,
}

/// Append a previous entry's record to `out`: the sort key as [`encode`] writes it (type
/// byte, then `key`: the value, or a domain's label-reversed name, as a snapshot's FST
/// holds it), then [`Prev`]'s fields, so the entry is never decoded whole.
pub fn encode_prev(itype: IndicatorType, key: &[u8], prev: &Prev, out: &mut Vec<u8>) {
    put_raw_key(type_byte(itype), key, out);
    let (times, fp) = ([prev.first_seen, prev.last_seen], prev.fp);
    out.push(u8::from(times[0].is_some()) | u8::from(times[1].is_some()) << 1);
    for t in times.into_iter().flatten() {
        put_varint(out, zigzag(t));
    }
    out.extend_from_slice(&fp.to_le_bytes());
}

/// The [`Prev`] of an [`encode_prev`] record (`None` when damaged).
pub fn decode_prev(rec: &[u8]) -> Option<Prev> {
    let (_, value) = key(rec)?;
    let mut r = Reader {
        b: rec,
        pos: (value.as_ptr() as usize - rec.as_ptr() as usize) + value.len(),
    };
    let present = r.byte()?;
    let mut times = [None; 2];
    for (k, t) in times.iter_mut().enumerate() {
        if present & (1 << k) != 0 {
            *t = Some(unzigzag(r.varint()?));
        }
    }
    let fp = rec.get(r.pos..)?;
    let fp = u64::from_le_bytes(fp.try_into().ok()?);
    Some(Prev {
        first_seen: times[0],
        last_seen: times[1],
        fp,
    })
}

/// The sort key of a record: its type byte and key bytes (the value, or a domain's
/// label-reversed name; `None` when cut short).
pub fn key(rec: &[u8]) -> Option<(u8, &[u8])> {
    let t = *rec.first()?;
    let mut pos = 1;
    let len = usize::try_from(get_varint(rec, &mut pos)?).ok()?;
    let value = rec.get(pos..pos.checked_add(len)?)?;
    Some((t, value))
}

/// Whether a record is an allowlist entry's, read without decoding it.
pub fn is_allowlist(rec: &[u8]) -> bool {
    let Some((_, value)) = key(rec) else {
        return false;
    };
    let flags_at = (value.as_ptr() as usize - rec.as_ptr() as usize) + value.len() + 3;
    rec.get(flags_at).is_some_and(|f| f & ALLOWLIST != 0)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.pos)?;
        self.pos += 1;
        Some(v)
    }

    fn varint(&mut self) -> Option<u64> {
        get_varint(self.b, &mut self.pos)
    }

    fn str(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        let s = self.b.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        String::from_utf8(s.to_vec()).ok()
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let n = usize::try_from(self.varint()?).ok()?;
        // Every string takes at least its length byte: a count past the rest is corrupt.
        if n > self.b.len().saturating_sub(self.pos) {
            return None;
        }
        (0..n).map(|_| self.str()).collect()
    }
}

/// The indicator of one record (`None` when the record is damaged).
pub fn decode(rec: &[u8]) -> Option<Indicator> {
    let mut r = Reader { b: rec, pos: 0 };
    let itype = *IndicatorType::ALL.get(usize::from(r.byte()?))?;
    let value = if itype == IndicatorType::Fqdn {
        let (_, k) = key(rec)?;
        r.pos = (k.as_ptr() as usize - rec.as_ptr() as usize) + k.len();
        let mut v = Vec::with_capacity(k.len());
        reverse_labels_into(k, &mut v);
        String::from_utf8(v).ok()?
    } else {
        r.str()?
    };
    let mut ind = Indicator::new(value, itype, "");
    ind.sources.clear();
    ind.confidence = r.byte()?;
    ind.severity = match r.byte()? {
        0 => Severity::Low,
        1 => Severity::Medium,
        2 => Severity::High,
        _ => return None,
    };
    ind.tlp = match r.byte()? {
        0 => Tlp::Clear,
        1 => Tlp::Green,
        2 => Tlp::Amber,
        3 => Tlp::AmberStrict,
        4 => Tlp::Red,
        _ => return None,
    };
    let flags = r.byte()?;
    ind.derived = flags & DERIVED != 0;
    ind.exact_only = flags & EXACT_ONLY != 0;
    ind.allowlist = flags & ALLOWLIST != 0;
    let present = r.byte()?;
    let mut times = [None; 4];
    for (k, t) in times.iter_mut().enumerate() {
        if present & (1 << k) != 0 {
            *t = Some(unzigzag(r.varint()?));
        }
    }
    [ind.first_seen, ind.last_seen, ind.reported, ind.expires] = times;
    for (bit, field) in [
        (PROVIDER, &mut ind.provider),
        (DESCRIPTION, &mut ind.description),
        (REFERENCE, &mut ind.reference),
        (ALLOWLISTED_BY, &mut ind.allowlisted_by),
        (EXTERNAL_ID, &mut ind.external_id),
    ] {
        if flags & bit != 0 {
            *field = Some(r.str()?);
        }
    }
    ind.tags = r.list()?;
    ind.sources = r.list()?;
    let groups = r.list()?;
    ind.groups = Groups::from_names(groups);
    (r.pos == rec.len()).then_some(ind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Indicator {
        let mut i = Indicator::new("http://evil.example/a?b", IndicatorType::Url, "f1");
        i.sources = vec!["f1".into(), "f2".into()];
        i.tags = vec!["c2".into(), "phishing".into()];
        i.confidence = 85;
        i.severity = Severity::High;
        i.tlp = Tlp::AmberStrict;
        i.provider = Some("abuse.ch".into());
        i.description = Some("a long ✓ description".into());
        i.reference = Some("https://ref.example/0d3b".into());
        i.external_id = Some("indicator--0d3b".into());
        i.allowlisted_by = Some("allow:example".into());
        i.first_seen = Some(-5);
        i.last_seen = Some(1_700_000_000);
        i.reported = None;
        i.expires = Some(i64::MAX);
        i.derived = true;
        i.exact_only = true;
        i.allowlist = true;
        i.groups = Groups::from_names(["red", "blue"]);
        i
    }

    #[test]
    fn round_trips_every_field() {
        for ind in [
            full(),
            Indicator::new("a.example", IndicatorType::Fqdn, "f"),
        ] {
            let mut b = Vec::new();
            encode(&ind, &mut b);
            assert_eq!(decode(&b), Some(ind.clone()));
            let mut k = Vec::new();
            assert_eq!(key(&b), Some(key_of(ind.itype, &ind.value, &mut k)));
        }
    }

    #[test]
    fn domains_sort_by_their_label_reversed_names() {
        let mut k = Vec::new();
        assert_eq!(
            key_of(IndicatorType::Fqdn, "www.example.com", &mut k),
            (2, &b"com.example.www"[..])
        );
        let rec = |v: &str| {
            let mut b = Vec::new();
            encode(&Indicator::new(v, IndicatorType::Fqdn, "f"), &mut b);
            b
        };
        // `b.a` (key `a.b`) before `a.b` (key `b.a`): the snapshot's id order.
        let (ba, ab) = (rec("b.a"), rec("a.b"));
        assert!(key(&ba) < key(&ab));
        assert_eq!(decode(&ba).map(|i| i.value), Some("b.a".to_string()));
    }

    #[test]
    fn prev_records_round_trip_and_refuse_damage() {
        let ind = full();
        let mut b = Vec::new();
        let want = Prev {
            first_seen: ind.first_seen,
            last_seen: ind.last_seen,
            fp: 0xDEAD_BEEF_0123,
        };
        let mut k = Vec::new();
        let (_, reversed) = key_of(ind.itype, &ind.value, &mut k);
        encode_prev(ind.itype, reversed, &want, &mut b);
        // The key a full record of the same indicator starts with.
        let mut full_rec = Vec::new();
        encode(&ind, &mut full_rec);
        assert_eq!(key(&b), key(&full_rec));
        assert_eq!(
            (want.first_seen, want.last_seen),
            (Some(-5), Some(1_700_000_000))
        );
        assert_eq!(decode_prev(&b), Some(want));
        for cut in 0..b.len() {
            assert_eq!(decode_prev(&b[..cut]), None, "cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode_prev(&longer), None);
        // A domain's record keys it by its label-reversed name, as the full record does.
        let dom = Indicator::new("www.evil.example", IndicatorType::Fqdn, "f1");
        let (mut d, mut full_rec) = (Vec::new(), Vec::new());
        encode_prev(dom.itype, b"example.evil.www", &want, &mut d);
        encode(&dom, &mut full_rec);
        assert_eq!(key(&d), key(&full_rec));
    }

    #[test]
    fn the_type_byte_orders_like_the_type() {
        for a in IndicatorType::ALL {
            for b in IndicatorType::ALL {
                assert_eq!(type_byte(a).cmp(&type_byte(b)), a.cmp(&b));
            }
        }
    }

    #[test]
    fn damaged_records_are_refused_not_panicked_on() {
        let mut b = Vec::new();
        encode(&full(), &mut b);
        for cut in 0..b.len() {
            assert_eq!(decode(&b[..cut]), None, "cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut bad_type = b.clone();
        bad_type[0] = 200;
        assert_eq!(decode(&bad_type), None);
    }
}
