//! The contract of [`LineParser::screen`], checked on one line: the unit tests, the corpus
//! tests and the fuzz targets of every screening parser call [`check_screen`].

use super::{AlertProbe, LineParser, Screened};
use crate::{MatchValue, Observation};
use std::cell::RefCell;
use std::net::IpAddr;

/// A probe that records what it is asked and answers `answer` to everything.
struct Recorder {
    answer: bool,
    asked: RefCell<Vec<(&'static str, String)>>,
}

impl Recorder {
    fn new(answer: bool) -> Self {
        Recorder {
            answer,
            asked: RefCell::new(Vec::new()),
        }
    }

    fn ask(&self, kind: &'static str, value: String) -> bool {
        self.asked.borrow_mut().push((kind, value));
        self.answer
    }
}

impl AlertProbe for Recorder {
    fn ip(&self, ip: IpAddr) -> bool {
        self.ask("ip", ip.to_string())
    }
    fn domain(&self, host: &str) -> bool {
        self.ask("domain", host.to_ascii_lowercase())
    }
    fn url(&self, url: &str) -> bool {
        self.ask("url", url.to_string())
    }
    fn prefetch_ip(&self, ip: IpAddr) {
        self.asked.borrow_mut().push(("prefetch", ip.to_string()));
    }
    fn pattern(&self, text: &[u8]) -> bool {
        self.ask("pattern", String::from_utf8_lossy(text).into_owned())
    }
}

/// What the correlator looks up for an observation, in the recorder's terms (sorted): read
/// from [`Observation::for_each_matchable`], the correlator's own list. Hashes and e-mail
/// addresses, which no probe question covers, appear as `hash` and `email`: a clean screen
/// of a line that has them is wrong.
fn lookups(o: &Observation<'_>) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    o.for_each_matchable(true, |_, value| {
        v.push(match value {
            MatchValue::Domain(name) => ("domain", name.to_string()),
            MatchValue::Address(ip, _) => ("ip", ip.to_string()),
            MatchValue::Url(url) => ("url", url.to_string()),
            MatchValue::Pattern(text) => ("pattern", text.to_string()),
            MatchValue::Hash(hash) => ("hash", hash.to_string()),
            MatchValue::Email(address) => ("email", address.to_string()),
        })
    });
    v.sort();
    v
}

/// Screen `line` with probes answering "no" and "maybe" and check the contract: a line
/// screened clean is one `parse` turns into an observation; the screen asked exactly what
/// the correlator looks up in that observation, no more and no fewer; it only prefetched
/// addresses it then asked about; and with "maybe" for every answer the line is clean only
/// when there is nothing to look up. Returns whether the line was clean (with "no"), or
/// what was broken.
#[doc(hidden)]
pub fn check_screen(parser: &dyn LineParser, line: &[u8]) -> Result<bool, String> {
    let no = Recorder::new(false);
    if parser.screen(line, &no) != Screened::Clean {
        return Ok(false);
    }
    let show = || String::from_utf8_lossy(line).into_owned();
    let o = match parser.parse(line) {
        Ok(Some(o)) => o,
        other => return Err(format!("{:?} screened clean, parse: {other:?}", show())),
    };
    let mut asked = no.asked.into_inner();
    let mut prefetched: Vec<String> = Vec::new();
    asked.retain(|(kind, value)| {
        let is_prefetch = *kind == "prefetch";
        if is_prefetch {
            prefetched.push(value.clone());
        }
        !is_prefetch
    });
    for p in &prefetched {
        if !asked.iter().any(|(kind, v)| *kind == "ip" && v == p) {
            return Err(format!("{:?}: prefetched {p} but never asked", show()));
        }
    }
    asked.sort();
    let want = lookups(&o);
    if asked != want {
        return Err(format!(
            "{:?}: the screen asked {asked:?}, the correlator looks up {want:?}",
            show()
        ));
    }
    let clean_with_maybe = parser.screen(line, &Recorder::new(true)) == Screened::Clean;
    if clean_with_maybe != want.is_empty() {
        return Err(format!(
            "{:?}: clean with every answer \"maybe\": {clean_with_maybe}, lookups {want:?}",
            show()
        ));
    }
    Ok(true)
}
