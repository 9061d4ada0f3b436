//! An error and its causes as one line, each cause said once: what `trawl` prints on stderr
//! and what the daemon logs.

use std::error::Error;

/// `e` and its sources as one line: a link that already prints its source
/// (`"{path}: {source}"`) is cut before it, and a subject the line already named (the path in
/// `opening /x` followed by `/x: No such file`) is not repeated.
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    let mut texts = Vec::new();
    let mut next = Some(e);
    while let Some(link) = next {
        texts.push(link.to_string());
        next = link.source();
    }
    let mut line = String::new();
    for (i, text) in texts.iter().enumerate() {
        let mut own = text.as_str();
        if let Some(next) = texts.get(i + 1).filter(|n| !n.is_empty()) {
            if let Some(head) = own.strip_suffix(next.as_str()) {
                own = head.trim_end_matches([':', ' ']);
            }
        }
        if let Some((subject, rest)) = own.split_once(": ") {
            if !rest.is_empty() && line.contains(subject) {
                own = rest;
            }
        }
        if own.is_empty() || line.contains(own) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(own);
    }
    line
}
