#![no_main]
//! Fuzz the MISP feed `hashes.csv` reader: any bytes give uuid-keyed, sorted, unique MD5
//! lists and a count of refused lines, never a panic; nothing is made of a line that is not
//! `md5,uuid`.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (hashes, bad) = feeds::misp_feed::parse_hashes(data);
    let lines = data.split(|&b| b == b'\n').count();
    let kept: usize = hashes.values().map(Vec::len).sum();
    assert!(kept + bad <= lines);
    for (uuid, list) in &hashes {
        assert_eq!(uuid.len(), 36);
        assert!(uuid
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert!(!list.is_empty() && list.windows(2).all(|w| w[0] < w[1]));
    }
});
