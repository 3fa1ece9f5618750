//! What the hub saw and did on the network: connection accounting (and
//! the `max-conns` fault that refuses one), the requests it received and
//! the data updates it posted, each kept in a bounded log.

use std::time::Duration;

use super::{lock, FaultKind, SimState};

/// Connection accounting, as the simulated hub saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Connections accepted and served (refused ones are not counted here).
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections closed at once because of a `max-conns` fault.
    pub refused: u64,
    /// HTTP requests received, on every connection.
    pub requests: u64,
    /// Requests per accepted connection, in accept order.
    pub requests_per_connection: Vec<u64>,
}

/// One data update the hub tried to post after `update/send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub url: String,
    /// The receiver's HTTP status, or why the post failed.
    pub result: Result<u16, String>,
}

/// One request as the hub received it, before any fault acted on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Index into `ConnStats::requests_per_connection`; `None` when the
    /// router was called without a socket.
    pub connection: Option<usize>,
    pub method: String,
    pub path: String,
    pub body: String,
}

/// Requests and deliveries a hub keeps: enough for any test to inspect, and
/// a hub served for days (a soak against `--sim`) does not grow.
pub const LOG_KEEP: usize = 2048;

/// The last [`LOG_KEEP`] entries, and how many there were in all.
pub(super) struct Log<T> {
    kept: std::collections::VecDeque<T>,
    total: usize,
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Log {
            kept: std::collections::VecDeque::new(),
            total: 0,
        }
    }
}

impl<T: Clone> Log<T> {
    fn push(&mut self, item: T) {
        if self.kept.len() == LOG_KEEP {
            self.kept.pop_front();
        }
        self.kept.push_back(item);
        self.total += 1;
    }

    fn items(&self) -> Vec<T> {
        self.kept.iter().cloned().collect()
    }
}

impl SimState {
    // ---- connections ----

    fn conns_changed(&self) {
        self.0.conns_changed.notify_all();
        self.0.conns_notify.notify_waiters();
    }

    /// A new connection: admitted (returns its index) or refused by
    /// `max-conns`.
    pub(crate) fn admit(&self) -> Option<usize> {
        let mut c = lock(&self.0.conns);
        for (i, f) in self.0.faults.iter().enumerate() {
            if let FaultKind::MaxConns(n) = f.kind {
                if c.open >= u64::from(n) && self.fire(i) {
                    c.refused += 1;
                    drop(c);
                    self.conns_changed();
                    return None;
                }
            }
        }
        c.accepted += 1;
        c.open += 1;
        c.requests_per_connection.push(0);
        let id = c.requests_per_connection.len() - 1;
        drop(c);
        self.conns_changed();
        Some(id)
    }

    pub(crate) fn conn_closed(&self) {
        lock(&self.0.conns).open -= 1;
        self.conns_changed();
    }

    pub(crate) fn conn_request(&self, id: usize) {
        let mut c = lock(&self.0.conns);
        c.requests += 1;
        c.requests_per_connection[id] += 1;
        drop(c);
        self.conns_changed();
    }

    pub fn stats(&self) -> ConnStats {
        lock(&self.0.conns).clone()
    }

    /// Block until `pred` holds or `deadline` passes. Not for use on a
    /// runtime thread that also serves the hub (see `wait_until`).
    pub fn wait_for(&self, deadline: Duration, pred: impl Fn(&ConnStats) -> bool) -> bool {
        let guard = lock(&self.0.conns);
        let (guard, _) = self
            .0
            .conns_changed
            .wait_timeout_while(guard, deadline, |c| !pred(c))
            .unwrap_or_else(|e| e.into_inner());
        pred(&guard)
    }

    /// Async `wait_for`, for hubs started with `spawn` on the test's runtime.
    pub async fn wait_until(&self, deadline: Duration, pred: impl Fn(&ConnStats) -> bool) -> bool {
        let wait = async {
            loop {
                let notified = self.0.conns_notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if pred(&self.stats()) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }

    // ---- what was received ----

    pub(crate) fn record_request(&self, r: Received) {
        lock(&self.0.received).push(r);
    }

    /// The requests received, in arrival order: every one, or the last
    /// [`LOG_KEEP`] of a long-running hub.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.0.received).items()
    }

    // ---- update deliveries ----

    pub(crate) fn record_delivery(&self, d: Delivery) {
        lock(&self.0.deliveries).push(d);
        self.0.deliveries_notify.notify_waiters();
    }

    /// Wait until at least `n` data updates have completed (either way).
    pub async fn wait_deliveries(&self, n: usize, deadline: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.0.deliveries_notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if lock(&self.0.deliveries).total >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }

    /// Data updates posted so far, in completion order (the last
    /// [`LOG_KEEP`] of a long-running hub).
    pub fn deliveries(&self) -> Vec<Delivery> {
        lock(&self.0.deliveries).items()
    }
}

#[cfg(test)]
mod log_tests {
    use super::{Log, LOG_KEEP};

    #[test]
    fn a_long_running_hub_keeps_only_the_last_entries_but_counts_all() {
        let mut log = Log::default();
        for i in 0..LOG_KEEP + 10 {
            log.push(i);
        }
        let kept = log.items();
        assert_eq!(kept.len(), LOG_KEEP);
        assert_eq!(kept[0], 10);
        assert_eq!(log.total, LOG_KEEP + 10);
    }
}
