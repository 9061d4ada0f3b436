//! Keeps the daemon's workers alive: a worker that panics or fails is logged, counted
//! (`trawl_worker_panics_total{worker}`, `trawl_worker_restarts_total{worker}`), shown on
//! `/healthz` and restarted with backoff; no thread dies silently.

use super::metrics::Metrics;
use crate::error_chain::one_line;
use std::error::Error;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a restart shows on `/healthz`.
const RESTART_SHOWN: Duration = Duration::from_secs(60);

/// A worker that the daemon stopped while it was failing.
#[derive(Debug, thiserror::Error)]
pub enum Stopped<E: Error + 'static> {
    /// Its last run failed with this error.
    #[error(transparent)]
    Failed(E),
    /// Its last run panicked (or failed as the daemon began to stop).
    #[error("worker {worker} {reason}")]
    Ended {
        /// The worker.
        worker: String,
        /// `panicked: <message>` or `failed: <error>`.
        reason: String,
    },
}

/// Run `body` until it returns `Ok` or the daemon stops; a panic or an error restarts it after
/// a backoff (100 ms doubling to 30 s; back to 100 ms after a minute of good running).
/// Returns the last failure if the daemon stopped while the worker was failing.
pub fn supervise<E: Error + 'static>(
    worker: &str,
    metrics: &Metrics,
    stop: &AtomicBool,
    mut body: impl FnMut() -> Result<(), E>,
) -> Result<(), Stopped<E>> {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            fault::inject(worker);
            body()
        }));
        let reason = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                if stop.load(Ordering::Relaxed) {
                    return Err(Stopped::Failed(e));
                }
                format!("failed: {}", one_line(&e))
            }
            Err(payload) => {
                Metrics::bump(&metrics.worker_panics, worker);
                format!(
                    "panicked: {}",
                    matcher::panics::panic_text(payload.as_ref())
                )
            }
        };
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(100);
        }
        if stop.load(Ordering::Relaxed) {
            tracing::error!("worker {worker} {reason}; the daemon is stopping");
            return Err(Stopped::Ended {
                worker: worker.to_string(),
                reason,
            });
        }
        tracing::error!("worker {worker} {reason}; restarting in {backoff:?}");
        Metrics::bump(&metrics.worker_restarts, worker);
        metrics.health.degrade_for(
            &format!("worker {worker}"),
            &format!("{reason} (restarted)"),
            RESTART_SHOWN,
        );
        super::sleep_unless(stop, backoff);
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Test-only fault injection (debug builds): `TRAWL_TEST_PANIC=point,point` makes each named
/// point panic once per process. Compiled out of release builds.
pub mod fault {
    /// Panic here once if `point` is listed in `TRAWL_TEST_PANIC`.
    #[cfg(debug_assertions)]
    pub fn inject(point: &str) {
        use std::collections::HashSet;
        use std::sync::Mutex;
        static FIRED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
        let Ok(list) = std::env::var("TRAWL_TEST_PANIC") else {
            return;
        };
        if !list.split(',').any(|p| p.trim() == point) {
            return;
        }
        let first = super::super::metrics::lock(&FIRED)
            .get_or_insert_with(HashSet::new)
            .insert(point.to_string());
        if first {
            panic!("injected fault at {point}");
        }
    }

    /// Nothing in release builds.
    #[cfg(not(debug_assertions))]
    #[inline(always)]
    pub fn inject(_point: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_worker_is_counted_shown_and_restarted() {
        let metrics = Metrics::default();
        let stop = AtomicBool::new(false);
        let mut runs = 0;
        let r = supervise("w", &metrics, &stop, || {
            runs += 1;
            if runs == 1 {
                panic!("boom");
            }
            if runs == 2 {
                return Err(std::io::Error::other("broken"));
            }
            Ok(())
        });
        assert!(r.is_ok());
        assert_eq!(runs, 3);
        assert_eq!(super::super::metrics::lock(&metrics.worker_panics)["w"], 1);
        assert_eq!(
            super::super::metrics::lock(&metrics.worker_restarts)["w"],
            2
        );
        let health = metrics.health.report();
        assert_eq!(health.len(), 1, "{health:?}");
        assert!(
            health[0].starts_with("worker w: failed: broken"),
            "{health:?}"
        );
        let text = metrics.render();
        assert!(
            text.contains("trawl_worker_panics_total{worker=\"w\"} 1"),
            "{text}"
        );
    }
}
