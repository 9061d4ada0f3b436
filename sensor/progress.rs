//! Progress bars (indicatif) on a terminal; plain log lines otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

/// `feeds::Progress` drawn as one bar per feed on stderr.
pub struct BarProgress {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl BarProgress {
    /// Bars when stderr is a terminal and not `quiet`; tracing lines otherwise.
    pub fn new(quiet: bool) -> Self {
        let multi = (!quiet && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        BarProgress {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// Clear the bars.
    pub fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, b) in bars.drain() {
                b.finish_and_clear();
            }
        }
    }
}

impl feeds::Progress for BarProgress {
    fn feed_started(&self, name: &str, total_bytes: Option<u64>) {
        tracing::info!(feed = name, "reading feed");
        let Some(multi) = &self.multi else { return };
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template(
            "{prefix:>24} {bar:30} {bytes:>10}/{total_bytes:<10} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = multi.add(bar.with_style(style).with_prefix(name.to_string()));
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(name.to_string(), bar);
        }
    }

    fn feed_bytes(&self, name: &str, n: u64) {
        if let Ok(bars) = self.bars.lock() {
            if let Some(b) = bars.get(name) {
                b.inc(n);
            }
        }
    }

    fn feed_finished(&self, name: &str, summary: &feeds::update::FeedSummary) {
        let _ = summary;
        tracing::info!(feed = name, "feed done");
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(b) = bars.remove(name) {
                b.finish_and_clear();
            }
        }
    }
}
