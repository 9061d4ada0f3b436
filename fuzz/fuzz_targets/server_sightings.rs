#![no_main]
//! Fuzz the sightings batch parser of `POST /v1/sightings`: any body is a batch (its bad items
//! counted and named, at most `MAX_ERRORS` reasons) or a refusal, never a panic; every kept
//! item is in normal form, its times ordered, its count and clients within their bounds.
use libfuzzer_sys::fuzz_target;
use server::sighting::{parse_batch, MAX_CLIENTS, MAX_COUNT, MAX_ERRORS};

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = parse_batch(data, 1_800_000_000) {
        assert_eq!(b.accepted + b.refused, b.received);
        assert!(b.errors.len() <= MAX_ERRORS && b.items.len() <= b.accepted);
        for it in &b.items {
            assert!(it.first_seen <= it.last_seen);
            assert!((1..=MAX_COUNT).contains(&it.count));
            assert!(it.clients.len() <= MAX_CLIENTS);
            let again = matcher::normalize(&it.value, Some(it.itype)).expect("normal form");
            assert_eq!(again.value, it.value);
        }
        let _ = b.answer().to_string();
    }
});
