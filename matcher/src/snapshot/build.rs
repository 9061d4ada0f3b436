//! Compiling indicators into the snapshot files (in memory).

use super::format::{put_varint, zigzag, DomainIdx, IpTables, Table, NFIELDS};
use super::{type_byte, SnapshotError, SnapshotMeta, BLOCK};
use crate::model::{Indicator, IndicatorType, Severity, Tlp};
use crate::normalize::parse_cidr;
use std::collections::HashMap;
use std::net::IpAddr;

fn build_err(what: &'static str) -> impl FnOnce(fst::Error) -> SnapshotError {
    move |e| SnapshotError::Build {
        what,
        reason: e.to_string(),
    }
}

/// Compile merged, tidied indicators into `(file name, bytes)` for every snapshot file.
pub(crate) fn compile(
    items: Vec<Indicator>,
    version: u64,
    extra: serde_json::Value,
) -> Result<Vec<(&'static str, Vec<u8>)>, SnapshotError> {
    if items.len() >= 0x7fff_ffff {
        return Err(SnapshotError::Build {
            what: "snapshot",
            reason: "too many indicators (ids are 31 bits)".into(),
        });
    }
    // Id order: (type order, value bytes). Sort small tuples, not the records.
    let mut order: Vec<(u8, &str, u32)> = items
        .iter()
        .enumerate()
        .map(|(i, it)| (type_byte(it.itype), it.value.as_str(), i as u32))
        .collect();
    order.sort_unstable();
    let sorted: Vec<&Indicator> = order.iter().map(|&(_, _, i)| &items[i as usize]).collect();
    drop(order);

    let mut type_counts = [0u32; 13];
    for it in &sorted {
        type_counts[type_byte(it.itype) as usize] += 1;
    }
    let fqdn_b = type_byte(IndicatorType::Fqdn) as usize;
    let dom_start: u32 = type_counts[..fqdn_b].iter().sum();
    let dom_end = dom_start + type_counts[fqdn_b];

    // values.fst: every non-domain indicator, key = type byte ‖ value, output = id.
    let mut vb = fst::MapBuilder::memory();
    let mut key = Vec::with_capacity(256);
    for (id, it) in sorted.iter().enumerate() {
        if it.itype == IndicatorType::Fqdn {
            continue;
        }
        key.clear();
        key.push(type_byte(it.itype));
        key.extend_from_slice(it.value.as_bytes());
        vb.insert(&key, id as u64).map_err(build_err("value FST"))?;
    }
    let values_fst = vb.into_inner().map_err(build_err("value FST"))?;

    // domains.fst: label-reversed names → rank; domains.idx maps ranks and ids.
    let doms = &sorted[dom_start as usize..dom_end as usize];
    let mut arena: Vec<u8> = Vec::with_capacity(doms.iter().map(|d| d.value.len()).sum());
    let mut entries: Vec<(u32, u32, u32)> = Vec::with_capacity(doms.len());
    for (i, d) in doms.iter().enumerate() {
        let start = arena.len();
        for (n, l) in d.value.rsplit('.').enumerate() {
            if n > 0 {
                arena.push(b'.');
            }
            arena.extend_from_slice(l.as_bytes());
        }
        entries.push((start as u32, (arena.len() - start) as u32, i as u32));
    }
    let slice = |e: &(u32, u32, u32)| &arena[e.0 as usize..(e.0 + e.1) as usize];
    entries.sort_unstable_by(|a, b| slice(a).cmp(slice(b)));
    let mut db = fst::MapBuilder::memory();
    let mut r2i = Vec::with_capacity(entries.len());
    let mut i2r = vec![0u32; entries.len()];
    for (rank, e) in entries.iter().enumerate() {
        db.insert(slice(e), rank as u64)
            .map_err(build_err("domain FST"))?;
        let exact = if doms[e.2 as usize].exact_only {
            0x8000_0000
        } else {
            0
        };
        r2i.push(e.2 | exact);
        i2r[e.2 as usize] = rank as u32;
    }
    let domains_fst = db.into_inner().map_err(build_err("domain FST"))?;
    drop(entries);
    drop(arena);
    let dom_idx = DomainIdx::write(&r2i, &i2r);

    // IP range tables.
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (id, it) in sorted.iter().enumerate() {
        if !it.itype.is_ip() {
            continue;
        }
        let Some((net, p)) = parse_cidr(&it.value) else {
            continue;
        };
        match net {
            IpAddr::V4(a) => {
                let lo = u128::from(u32::from(a));
                let hi = lo | u128::from(!crate::normalize::mask_v4(u32::MAX, p));
                let tag = id as u32 | if p < 32 { 0x8000_0000 } else { 0 };
                v4.push((lo, hi, tag));
            }
            IpAddr::V6(a) => {
                let lo = u128::from(a);
                let hi = lo | !crate::normalize::mask_v6(u128::MAX, p);
                let tag = id as u32 | if p < 128 { 0x8000_0000 } else { 0 };
                v6.push((lo, hi, tag));
            }
        }
    }
    let mut lists = Vec::new();
    let r4: Vec<(u32, u32, u32, u32)> = elementary(v4, &mut lists)
        .into_iter()
        .map(|(s, e, o, l)| (s as u32, e as u32, o, l))
        .collect();
    let r6 = elementary(v6, &mut lists);
    let ip = IpTables::write(&r4, &r6, &lists);

    // Metadata: interned strings and sets, delta-coded records.
    let mut interner = Interner::default();
    let mut records = Vec::new();
    let nblocks = sorted.len().div_ceil(BLOCK);
    let mut offsets: Vec<u32> = Vec::with_capacity(nblocks + 1);
    let mut prev = [0u64; NFIELDS];
    for (id, it) in sorted.iter().enumerate() {
        if id % BLOCK == 0 {
            offsets.push(records.len() as u32);
            prev = [0; NFIELDS];
        }
        let f = fields(it, &mut interner);
        let mut mask = 0u64;
        for i in 0..NFIELDS {
            if f[i] != prev[i] {
                mask |= 1 << i;
            }
        }
        put_varint(&mut records, mask);
        for i in 0..NFIELDS {
            if mask >> i & 1 == 1 {
                put_varint(&mut records, zigzag(f[i].wrapping_sub(prev[i]) as i64));
            }
        }
        prev = f;
    }
    offsets.push(records.len() as u32);
    if records.len() > u32::MAX as usize {
        return Err(SnapshotError::Build {
            what: "records",
            reason: "metadata larger than 4 GiB".into(),
        });
    }
    let mut rec_file =
        Vec::with_capacity(super::format::Records::header_len(nblocks) + records.len());
    rec_file.extend_from_slice(b"TRWR");
    rec_file.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for c in type_counts {
        rec_file.extend_from_slice(&c.to_le_bytes());
    }
    if offsets.len() != nblocks + 1 {
        // Empty set: one offset (0) only.
        offsets.truncate(nblocks + 1);
    }
    for o in &offsets {
        rec_file.extend_from_slice(&o.to_le_bytes());
    }
    rec_file.extend_from_slice(&records);
    let strings_file = Table::write(*b"TRWS", interner.strings.iter().map(|s| s.as_bytes()));
    let sets_file = Table::write(*b"TRWT", interner.sets.iter().map(|s| s.as_slice()));

    let mut counts = std::collections::BTreeMap::new();
    for (i, c) in type_counts.iter().enumerate() {
        if *c > 0 {
            counts.insert(IndicatorType::ALL[i].as_str().to_string(), u64::from(*c));
        }
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let meta = SnapshotMeta {
        version,
        created,
        counts,
        extra,
    };
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| SnapshotError::Build {
        what: "meta.json",
        reason: e.to_string(),
    })?;
    Ok(vec![
        ("meta.json", meta_json),
        ("domains.fst", domains_fst),
        ("domains.idx", dom_idx),
        ("values.fst", values_fst),
        ("ip.bin", ip),
        ("records.bin", rec_file),
        ("strings.bin", strings_file),
        ("sets.bin", sets_file),
    ])
}

#[derive(Default)]
struct Interner<'a> {
    strings: Vec<&'a str>,
    string_ids: HashMap<&'a str, u32>,
    sets: Vec<Vec<u8>>,
    set_ids: HashMap<&'a [String], u32>,
}

impl<'a> Interner<'a> {
    fn string(&mut self, s: &'a str) -> u32 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s);
        self.string_ids.insert(s, i);
        i
    }

    fn opt(&mut self, s: &'a Option<String>) -> u64 {
        s.as_deref().map_or(0, |s| u64::from(self.string(s)) + 1)
    }

    fn set(&mut self, list: &'a [String]) -> u64 {
        if let Some(&i) = self.set_ids.get(list) {
            return u64::from(i);
        }
        let mut b = Vec::with_capacity(list.len() * 4);
        for s in list {
            let id = self.string(s);
            b.extend_from_slice(&id.to_le_bytes());
        }
        let i = self.sets.len() as u32;
        self.sets.push(b);
        self.set_ids.insert(list, i);
        u64::from(i)
    }
}

fn time(t: Option<i64>) -> u64 {
    t.map_or(0, |t| zigzag(t) + 1)
}

/// The record fields of one indicator (layout read back by `Snapshot::try_indicator`).
fn fields<'a>(it: &'a Indicator, int: &mut Interner<'a>) -> [u64; NFIELDS] {
    let sev = match it.severity {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
    };
    let tlp = match it.tlp {
        Tlp::Clear => 0,
        Tlp::Green => 1,
        Tlp::Amber => 2,
        Tlp::AmberStrict => 3,
        Tlp::Red => 4,
    };
    let packed = sev
        | tlp << 2
        | u64::from(it.derived) << 5
        | u64::from(it.exact_only) << 6
        | u64::from(it.allowlist) << 7;
    [
        u64::from(it.confidence),
        packed,
        int.set(&it.tags),
        int.set(&it.sources),
        int.opt(&it.provider),
        int.opt(&it.description),
        int.opt(&it.reference),
        int.opt(&it.allowlisted_by),
        time(it.first_seen),
        time(it.last_seen),
        time(it.reported),
        time(it.expires),
    ]
}

fn elementary(mut iv: Vec<(u128, u128, u32)>, lists: &mut Vec<u32>) -> Vec<(u128, u128, u32, u32)> {
    iv.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    let mut out = Vec::with_capacity(iv.len());
    let mut stack: Vec<(u128, u32)> = Vec::new();
    let mut cur: u128 = 0;
    let emit = |s: u128,
                e: u128,
                stack: &[(u128, u32)],
                out: &mut Vec<(u128, u128, u32, u32)>,
                lists: &mut Vec<u32>| {
        if s <= e && !stack.is_empty() {
            let off = lists.len() as u32;
            lists.extend(stack.iter().map(|x| x.1));
            out.push((s, e, off, stack.len() as u32));
        }
    };
    for (lo, hi, tag) in iv {
        while let Some(&(top_hi, _)) = stack.last() {
            if top_hi >= lo {
                break;
            }
            emit(cur, top_hi, &stack, &mut out, lists);
            cur = top_hi + 1;
            stack.pop();
        }
        if !stack.is_empty() && cur < lo {
            emit(cur, lo - 1, &stack, &mut out, lists);
        }
        cur = lo;
        stack.push((hi, tag));
    }
    while let Some(&(top_hi, _)) = stack.last() {
        emit(cur, top_hi, &stack, &mut out, lists);
        stack.pop();
        match top_hi.checked_add(1) {
            Some(n) => cur = n,
            None => break,
        }
    }
    out
}
