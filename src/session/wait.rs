//! The waits the harness is in while they last (an answer from a hub, a
//! relay or the config to follow, the close check, a retry's backoff), so
//! the reporter can show progress for the long ones. Prints nothing: the
//! reporter reads [`active`] (see `report::progress`). Depends on nothing
//! internal, so the client, the scenarios and the ledger can all register.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One wait in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    /// What is awaited, e.g. `Vege_A6_20: answer to POST /api/config/get`.
    pub what: String,
    /// When the current attempt started.
    pub started: Instant,
    /// How long it may take at most (`None`: no deadline of its own).
    pub deadline: Option<Duration>,
    /// Retries so far, as they happen (`attempt 2 of 3 after ...`).
    pub note: Option<String>,
}

static ACTIVE: Mutex<BTreeMap<u64, Wait>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Register a wait; it ends when the guard is dropped.
pub fn begin(what: impl Into<String>, deadline: Option<Duration>) -> WaitGuard {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let w = Wait {
        what: what.into(),
        started: Instant::now(),
        deadline,
        note: None,
    };
    lock().insert(id, w);
    WaitGuard { id }
}

/// The waits in progress, oldest first.
pub fn active() -> Vec<(u64, Wait)> {
    lock().iter().map(|(k, v)| (*k, v.clone())).collect()
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<u64, Wait>> {
    // A panic elsewhere while holding this lock leaves plain data behind.
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A wait in progress; dropping it ends the wait.
#[derive(Debug)]
pub struct WaitGuard {
    id: u64,
}

impl WaitGuard {
    /// A new attempt of the same wait (after a retry): the clock restarts
    /// and `note` says why.
    pub fn retry(&self, note: impl Into<String>) {
        if let Some(w) = lock().get_mut(&self.id) {
            w.started = Instant::now();
            w.note = Some(note.into());
        }
    }

    /// Say what the wait is at now, keeping its clock.
    pub fn note(&self, note: impl Into<String>) {
        if let Some(w) = lock().get_mut(&self.id) {
            w.note = Some(note.into());
        }
    }
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_lasts_as_long_as_its_guard_and_carries_retries() {
        let g = begin(
            "hub: answer to GET /x (unit test)",
            Some(Duration::from_secs(5)),
        );
        let mine = |a: &[(u64, Wait)]| {
            a.iter()
                .find(|(_, w)| w.what == "hub: answer to GET /x (unit test)")
                .map(|(_, w)| w.clone())
        };
        let w = mine(&active()).expect("registered");
        assert_eq!(w.deadline, Some(Duration::from_secs(5)));
        assert_eq!(w.note, None);
        g.retry("attempt 2 of 3 after connection refused");
        assert_eq!(
            mine(&active()).and_then(|w| w.note).as_deref(),
            Some("attempt 2 of 3 after connection refused")
        );
        drop(g);
        assert_eq!(mine(&active()), None);
    }
}
