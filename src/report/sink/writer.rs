//! When the report files are rewritten while a run goes on: a writer
//! thread of its own, off the hubs' paths, coalesces any number of finished
//! scenarios into at most one rewrite per [`INTERVAL`], and spends at most
//! a fifth of the time writing (a rewrite that took `t` waits `4 t` before
//! the next), so a run with many hubs costs time linear in its size. The
//! final write, with how the run ended, is the sink's own and always done.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::ReportSink;

/// At most one rewrite of the files per interval while the run goes on.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// After a rewrite that took `t`, the next one waits at least `SPACING t`.
const SPACING: u32 = 4;

/// When the next rewrite is due. Pure: every moment is given to it, so it
/// is tested with made-up instants.
#[derive(Debug)]
pub(super) struct Pacer {
    interval: Duration,
    /// Something changed that no rewrite has taken in yet.
    pending: bool,
    /// The next rewrite may not start before this.
    not_before: Option<Instant>,
}

impl Pacer {
    pub(super) fn new(interval: Duration) -> Pacer {
        Pacer {
            interval,
            pending: false,
            not_before: None,
        }
    }

    /// The record changed.
    pub(super) fn changed(&mut self) {
        self.pending = true;
    }

    /// How long from `now` until the next rewrite is due (zero: now);
    /// `None` while nothing changed.
    pub(super) fn due(&self, now: Instant) -> Option<Duration> {
        self.pending.then(|| {
            self.not_before
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(now))
        })
    }

    /// A rewrite starts: it takes in every change so far.
    pub(super) fn begin(&mut self) {
        self.pending = false;
    }

    /// The rewrite that started at `started` ended at `ended`.
    pub(super) fn wrote(&mut self, started: Instant, ended: Instant) {
        let took = ended.saturating_duration_since(started);
        self.not_before = Some((started + self.interval).max(ended + took * SPACING));
    }
}

#[derive(Debug)]
struct State {
    pacer: Pacer,
    /// The run ended: no more rewrites of the run under way.
    closed: bool,
}

/// What the sink and its writer thread share.
#[derive(Debug)]
pub(super) struct Pace {
    state: Mutex<State>,
    wake: Condvar,
}

impl Pace {
    pub(super) fn new(interval: Duration) -> Pace {
        Pace {
            state: Mutex::new(State {
                pacer: Pacer::new(interval),
                closed: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The record changed: the writer rewrites the files when due.
    pub(super) fn changed(&self) {
        self.lock().pacer.changed();
        self.wake.notify_one();
    }

    /// The run ended (or the sink is gone): the writer stops.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// Start the writer thread of `sink`. It holds the sink only while it
/// writes, and ends when the pace is closed or the sink is gone. `None`
/// when no thread could be started: the files are then written at the end
/// only.
pub(super) fn spawn(sink: &Arc<ReportSink>) -> Option<std::thread::JoinHandle<()>> {
    let pace = sink.pace.clone();
    let sink = Arc::downgrade(sink);
    std::thread::Builder::new()
        .name("report-writer".into())
        .spawn(move || run(&pace, &sink))
        .ok()
}

fn run(pace: &Pace, sink: &Weak<ReportSink>) {
    let mut st = pace.lock();
    loop {
        if st.closed {
            return;
        }
        let now = Instant::now();
        st = match st.pacer.due(now) {
            None => pace.wake.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(wait) if !wait.is_zero() => {
                pace.wake
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            Some(_) => {
                st.pacer.begin();
                drop(st);
                let Some(sink) = sink.upgrade() else { return };
                sink.write_progress();
                drop(sink);
                let mut st = pace.lock();
                st.pacer.wrote(now, Instant::now());
                st
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn coalesces_changes_into_one_rewrite_per_interval() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000 * MS);
        assert_eq!(p.due(t0), None, "nothing changed, nothing to write");
        // The first change is written at once.
        p.changed();
        assert_eq!(p.due(t0), Some(Duration::ZERO));
        p.begin();
        assert_eq!(p.due(t0), None);
        p.wrote(t0, t0 + 10 * MS);
        // Many changes meanwhile: one rewrite, when the interval is over.
        for _ in 0..500 {
            p.changed();
        }
        assert_eq!(p.due(t0 + 200 * MS), Some(800 * MS));
        assert_eq!(p.due(t0 + 1000 * MS), Some(Duration::ZERO));
        assert_eq!(p.due(t0 + 5000 * MS), Some(Duration::ZERO));
        p.begin();
        // A change while that rewrite runs is taken by the next one.
        p.changed();
        p.wrote(t0 + 5000 * MS, t0 + 5020 * MS);
        assert_eq!(p.due(t0 + 5100 * MS), Some(900 * MS));
    }

    #[test]
    fn a_slow_rewrite_waits_four_times_its_cost() {
        // A rewrite that took 2 s (a huge run, a slow disk): the next
        // waits 8 s after it ended, so writing takes at most a fifth.
        let t0 = Instant::now();
        let mut p = Pacer::new(1000 * MS);
        p.changed();
        p.begin();
        p.wrote(t0, t0 + 2000 * MS);
        p.changed();
        assert_eq!(p.due(t0 + 2000 * MS), Some(8000 * MS));
        assert_eq!(p.due(t0 + 9999 * MS), Some(MS));
        assert_eq!(p.due(t0 + 10_000 * MS), Some(Duration::ZERO));
    }
}
