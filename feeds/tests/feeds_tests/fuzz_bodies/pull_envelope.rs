//! The body of the `feed_pull_envelope` fuzz target, shared with the proptest in
//! `fuzz_bodies.rs`: a TAXII page (or a pulled store) walked an item at a time
//! (`feeds::pull_store::walk_page`) gives what the naive reading, one `Value` tree of the
//! whole document, gives, and fails exactly where that reading finds no envelope.

use serde_json::{Map, Value};

/// The naive reading: the items of the document's `objects` array and its other members.
fn as_tree(bytes: &[u8]) -> Option<(Vec<Value>, Map<String, Value>)> {
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    let items = match doc.remove("objects") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return None,
    };
    Some((items, doc))
}

/// Run one input; panics on a broken invariant.
pub fn pull_envelope(data: &[u8]) {
    let mut items = Vec::new();
    let walked = feeds::pull_store::walk_page(data, "objects", &mut |v| items.push(v));
    match (walked, as_tree(data)) {
        (Ok(meta), Some((want, rest))) => {
            assert_eq!(items, want);
            assert_eq!(meta, rest);
        }
        (Err(_), None) => {}
        (w, t) => panic!(
            "walked {w:?}, tree {t:?}, of {:?}",
            String::from_utf8_lossy(data)
        ),
    }
}
