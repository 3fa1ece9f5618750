//! The harness's own lag: how far behind its runtime fell, so a timeout
//! that the harness caused (hundreds of hubs on two cores, a busy host) is
//! not blamed on a hub. A task on the run's runtime wakes every
//! [`TICK`] and notes how late each wake-up came; a request's clock
//! (`client`) asks for the worst lag since a moment, alongside the
//! lateness of its own timer (the hub's thread may lag where the workers
//! do not).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// How often the monitor wakes.
pub const TICK: Duration = Duration::from_millis(10);

/// Wake-ups later than this are noted.
const NOTE: Duration = Duration::from_millis(20);

/// How long noted lags are kept (longer than any request's clock).
const KEEP: Duration = Duration::from_secs(120);

/// The lag a request's timeout must have seen, at least, before it is put
/// down to the harness: a tenth of the timeout, and never under 50 ms.
pub fn significant(timeout: Duration) -> Duration {
    (timeout / 10).max(Duration::from_millis(50))
}

/// Notes the runtime's late wake-ups. Cheap to clone.
#[derive(Clone, Default)]
pub struct LagMonitor {
    /// (when the late wake-up came, how late it was), oldest first.
    noted: Arc<Mutex<VecDeque<(Instant, Duration)>>>,
}

impl std::fmt::Debug for LagMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LagMonitor")
    }
}

impl LagMonitor {
    /// Start watching the runtime of `handle`; the watch ends with it.
    pub fn start(handle: &tokio::runtime::Handle) -> LagMonitor {
        let monitor = LagMonitor::default();
        let m = monitor.clone();
        handle.spawn(async move {
            let mut next = Instant::now() + TICK;
            loop {
                tokio::time::sleep_until(next).await;
                let now = Instant::now();
                m.note(now, now.saturating_duration_since(next));
                next = now + TICK;
            }
        });
        monitor
    }

    pub(crate) fn note(&self, at: Instant, late: Duration) {
        if late < NOTE {
            return;
        }
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        noted.push_back((at, late));
        while noted
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > KEEP)
        {
            noted.pop_front();
        }
    }

    /// The worst lag that overlapped the time since `since`.
    pub fn worst_since(&self, since: Instant) -> Duration {
        let noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        noted
            .iter()
            .rev()
            .take_while(|(at, _)| *at >= since)
            .map(|(_, late)| *late)
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn late_wake_ups_are_noted_and_found_by_time() {
        let m = LagMonitor::default();
        let t0 = Instant::now();
        m.note(t0, Duration::from_millis(5));
        assert_eq!(m.worst_since(t0), Duration::ZERO, "small lags are noise");
        tokio::time::advance(Duration::from_secs(1)).await;
        let t1 = Instant::now();
        m.note(t1, Duration::from_millis(700));
        tokio::time::advance(Duration::from_secs(1)).await;
        m.note(Instant::now(), Duration::from_millis(30));
        assert_eq!(m.worst_since(t0), Duration::from_millis(700));
        assert_eq!(
            m.worst_since(t1 + Duration::from_millis(1)),
            Duration::from_millis(30)
        );
        assert_eq!(m.worst_since(Instant::now() + TICK), Duration::ZERO);
        assert_eq!(
            significant(Duration::from_secs(5)),
            Duration::from_millis(500)
        );
        assert_eq!(
            significant(Duration::from_millis(200)),
            Duration::from_millis(50)
        );
    }

    #[tokio::test]
    async fn a_blocked_runtime_is_seen_lagging() {
        let m = LagMonitor::start(&tokio::runtime::Handle::current());
        let start = Instant::now();
        // Let the monitor take its first tick, then hold this (only)
        // worker thread: the monitor cannot wake on time.
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(200));
        // A deadline-bounded wait for the monitor's next wake-up.
        let deadline = Instant::now() + Duration::from_secs(5);
        while m.worst_since(start) < Duration::from_millis(100) && Instant::now() < deadline {
            tokio::time::sleep(TICK).await;
        }
        assert!(m.worst_since(start) >= Duration::from_millis(100));
    }
}
