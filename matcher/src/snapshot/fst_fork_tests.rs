//! The vendored fst (`vendor/fst`, a faster builder registry) must write the very bytes the
//! crates.io release writes: both build the same maps and sets here and the bytes are
//! compared. The speed it buys is measured side by side in `benches/snapshot.rs`
//! (`fst_fork/*`).

/// xorshift64*: a fixed, dependency-free sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn word(&mut self, alphabet: &[u8], min: u64, max: u64) -> Vec<u8> {
        let len = min + self.next() % (max - min + 1);
        (0..len)
            .map(|_| alphabet[(self.next() % alphabet.len() as u64) as usize])
            .collect()
    }
}

/// Sorted, unique keys: label-reversed names (`com.example.www`), the shape of `domains.fst`.
fn reversed_domains(n: usize, seed: u64) -> Vec<Vec<u8>> {
    const TLDS: &[&[u8]] = &[b"com", b"net", b"org", b"ru", b"top", b"uk.co", b"io"];
    let mut rng = Rng(seed);
    let mut keys: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut k = TLDS[(rng.next() % TLDS.len() as u64) as usize].to_vec();
            for _ in 0..1 + rng.next() % 3 {
                k.push(b'.');
                k.extend(rng.word(b"abcdefghijklmnopqrstuvwxyz0123456789-", 1, 14));
            }
            k
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn vendored_map(keys: &[Vec<u8>], outputs: &[u64]) -> Vec<u8> {
    let mut b = fst::MapBuilder::memory();
    for (k, &v) in keys.iter().zip(outputs) {
        b.insert(k, v).expect("sorted keys");
    }
    b.into_inner().expect("in memory")
}

fn upstream_map(keys: &[Vec<u8>], outputs: &[u64]) -> Vec<u8> {
    let mut b = fst_upstream::MapBuilder::memory();
    for (k, &v) in keys.iter().zip(outputs) {
        b.insert(k, v).expect("sorted keys");
    }
    b.into_inner().expect("in memory")
}

fn assert_same(what: &str, ours: &[u8], theirs: &[u8]) {
    assert!(
        ours == theirs,
        "{what}: vendored fst wrote {} bytes, crates.io fst {} bytes; first difference at byte {:?}",
        ours.len(),
        theirs.len(),
        ours.iter().zip(theirs).position(|(a, b)| a != b)
    );
}

#[test]
fn domain_map_with_rank_outputs_is_byte_identical_to_upstream() {
    let keys = reversed_domains(150_000, 7);
    let ranks: Vec<u64> = (0..keys.len() as u64).collect();
    assert_same(
        "domains",
        &vendored_map(&keys, &ranks),
        &upstream_map(&keys, &ranks),
    );
}

#[test]
fn value_map_with_large_random_outputs_is_byte_identical_to_upstream() {
    let mut rng = Rng(11);
    let mut keys: Vec<Vec<u8>> = (0..60_000)
        .map(|_| {
            let mut k = vec![(rng.next() % 6) as u8];
            k.extend(b"http://");
            k.extend(rng.word(b"abcdefghij./-?=", 4, 40));
            k
        })
        .collect();
    keys.sort();
    keys.dedup();
    let outputs: Vec<u64> = (0..keys.len()).map(|_| rng.next() % (1 << 40)).collect();
    assert_same(
        "values",
        &vendored_map(&keys, &outputs),
        &upstream_map(&keys, &outputs),
    );
}

#[test]
fn sets_with_many_equal_suffixes_are_byte_identical_to_upstream() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed);
        let mut keys: Vec<Vec<u8>> = (0..20_000 * seed)
            .map(|_| rng.word(b"ab.", 1, 24))
            .collect();
        keys.sort();
        keys.dedup();
        let mut ours = fst::SetBuilder::memory();
        let mut theirs = fst_upstream::SetBuilder::memory();
        for k in &keys {
            ours.insert(k).expect("sorted");
            theirs.insert(k).expect("sorted");
        }
        assert_same(
            &format!("set {seed}"),
            &ours.into_inner().expect("in memory"),
            &theirs.into_inner().expect("in memory"),
        );
    }
}
