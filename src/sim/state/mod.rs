//! The live state of one simulated hub, shared by the routes and the accept
//! loop: the stored config (its rules are `sim::config`), the fault
//! counters, the change signal tests wait on, and reboots. The actuator
//! slots and their timers are `actuators`; connections, requests received
//! and updates posted are `traffic`.

mod actuators;
mod traffic;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::sync::{watch, Notify};

use super::config::{SetBody, Stored};
use super::fault::{FaultKind, FaultSpec, Route};
use super::profile::Profile;
use crate::device::Generation;
use actuators::Slot;
use traffic::Log;
pub use traffic::{ConnStats, Delivery, Received, LOG_KEEP};

/// A request the hub refuses with a 4xx; the message goes into the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

pub(crate) struct Inner {
    profile: Profile,
    generation: Generation,
    config: Mutex<Stored>,
    /// Faults act only while this is set (tests switch them off to let a
    /// printed restore command run against a healthy hub).
    faults_on: std::sync::atomic::AtomicBool,
    slots: Mutex<Vec<Slot>>,
    pub(crate) faults: Vec<FaultSpec>,
    fault_hits: Vec<AtomicU64>,
    /// Requests counted towards each `reboot-after` fault since its last reboot.
    reboot_counts: Mutex<Vec<(u64, u64)>>,
    conns: Mutex<ConnStats>,
    conns_changed: Condvar,
    /// Bumped whenever the stored config or an actuator slot changes, so
    /// tests can wait for the hub's state instead of polling it.
    state_changes: Mutex<u64>,
    state_changed: Condvar,
    conns_notify: Notify,
    /// Bumped on every simulated reboot; connections watch it and drop.
    reboot: watch::Sender<u64>,
    /// How long the hub stays down (refusing connections) after the last
    /// reboot (`reboot-after:N,down=DURATION`).
    reboot_down: Mutex<Option<Duration>>,
    received: Mutex<Log<Received>>,
    deliveries: Mutex<Log<Delivery>>,
    deliveries_notify: Notify,
    pub(crate) update_client: reqwest::Client,
}

/// The shared state of one simulated hub. Cheap to clone.
#[derive(Clone)]
pub struct SimState(pub(crate) Arc<Inner>);

/// Timeout of the hub's own data-update posts.
pub const UPDATE_TIMEOUT: Duration = Duration::from_secs(5);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock is a bug elsewhere; keep serving the state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

impl SimState {
    pub fn new(profile: Profile, faults: Vec<FaultSpec>) -> SimState {
        let slots = vec![Slot::default(); profile.actuator_count() as usize];
        let reboots = faults.iter().map(|_| (0, 0)).collect();
        let update_client = reqwest::Client::builder()
            .timeout(UPDATE_TIMEOUT)
            .build()
            .unwrap_or_default();
        SimState(Arc::new(Inner {
            generation: profile.generation(),
            config: Mutex::new(Stored::start(profile.config(), &faults)),
            faults_on: std::sync::atomic::AtomicBool::new(true),
            profile,
            slots: Mutex::new(slots),
            fault_hits: faults.iter().map(|_| AtomicU64::new(0)).collect(),
            faults,
            reboot_counts: Mutex::new(reboots),
            conns: Mutex::new(ConnStats::default()),
            conns_changed: Condvar::new(),
            state_changes: Mutex::new(0),
            state_changed: Condvar::new(),
            conns_notify: Notify::new(),
            reboot: watch::Sender::new(0),
            reboot_down: Mutex::new(None),
            received: Mutex::new(Log::default()),
            deliveries: Mutex::new(Log::default()),
            deliveries_notify: Notify::new(),
            update_client,
        }))
    }

    pub fn profile(&self) -> &Profile {
        &self.0.profile
    }

    pub fn faults(&self) -> &[FaultSpec] {
        &self.0.faults
    }

    /// Count one matching event for fault `idx`; true if it applies now.
    pub(crate) fn fire(&self, idx: usize) -> bool {
        if !self.faults_enabled() {
            return false;
        }
        let n = self.0.fault_hits[idx].fetch_add(1, Ordering::Relaxed);
        self.0.faults[idx].window_contains(n)
    }

    /// Whether faults act now.
    pub fn faults_enabled(&self) -> bool {
        self.0.faults_on.load(Ordering::SeqCst)
    }

    /// Switch every fault off (or back on): the hub behaves as its profile
    /// says. Tests use it to run a printed `restore` against a healthy hub.
    pub fn set_faults_enabled(&self, on: bool) {
        self.0.faults_on.store(on, Ordering::SeqCst);
    }

    // ---- config ----

    /// The stored config document (numbers as `f64` where they do not fit
    /// an integer; [`SimState::config_text`] has them exactly).
    pub fn config(&self) -> Value {
        lock(&self.0.config).doc.clone()
    }

    /// The stored config exactly: each section as the text it was stored
    /// from. Byte-equal before and after a run means the run left it as it
    /// was.
    pub fn config_text(&self) -> String {
        lock(&self.0.config).text()
    }

    /// `config/get`: the named sections, in request order, then `"error":0`.
    /// Old firmware always answers `endpoints` with null.
    pub fn config_sections(&self, wanted: &Map<String, Value>) -> Value {
        serde_json::from_str(&self.config_sections_text(wanted)).unwrap_or_default()
    }

    /// [`SimState::config_sections`] as the exact text the hub sends: each
    /// section as stored.
    pub fn config_sections_text(&self, wanted: &Map<String, Value>) -> String {
        lock(&self.0.config).sections_text(wanted, self.0.generation)
    }

    /// `config/set` of a parsed document (tests): see
    /// [`SimState::set_config_text`].
    pub fn set_config(&self, body: &Value, store: bool) -> Result<(), BadRequest> {
        self.set_config_text(&body.to_string(), store)
    }

    /// `config/set`: each top-level section in `body` replaces the stored
    /// one, kept as the exact text it came as (unless `lossy-numbers`);
    /// sections not in the body are kept. The result must keep the hub's
    /// firmware generation, or nothing is stored. `store` false (the
    /// `ignore-set` fault) validates but stores nothing.
    pub fn set_config_text(&self, body: &str, store: bool) -> Result<(), BadRequest> {
        let set = SetBody::parse(body).map_err(BadRequest)?;
        let lossy = store
            && self.0.faults.iter().enumerate().any(|(i, f)| {
                f.kind == FaultKind::LossyNumbers && f.matches(Route::ConfigSet) && self.fire(i)
            });
        let mut config = lock(&self.0.config);
        let merged = config
            .merged(&set, lossy, self.0.generation)
            .map_err(BadRequest)?;
        if store {
            *config = merged;
            drop(config);
            self.state_changed();
        }
        Ok(())
    }

    // ---- waiting for the hub's state ----

    fn state_changed(&self) {
        *lock(&self.0.state_changes) += 1;
        self.0.state_changed.notify_all();
    }

    /// Block until `pred` holds for the hub's state (config, actuators), or
    /// `deadline` passes; returns whether it held. Woken by every change, so
    /// a test sees the first state that satisfies it. Not for use on a
    /// runtime thread that also serves the hub.
    pub fn wait_state(&self, deadline: Duration, pred: impl Fn(&SimState) -> bool) -> bool {
        let end = std::time::Instant::now() + deadline;
        loop {
            let seen = *lock(&self.0.state_changes);
            if pred(self) {
                return true;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let guard = lock(&self.0.state_changes);
            let _ = self
                .0
                .state_changed
                .wait_timeout_while(guard, left, |n| *n == seen)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    // ---- reboot ----

    /// Count a request on `endpoint` towards `reboot-after` faults; true if
    /// the hub reboots now (the caller's connection is dropped with the rest).
    pub(crate) fn count_for_reboot(&self, endpoint: Route) -> bool {
        let mut counts = lock(&self.0.reboot_counts);
        let mut reboot = false;
        let mut down = None;
        for (i, f) in self.0.faults.iter().enumerate() {
            let FaultKind::RebootAfter(n) = f.kind else {
                continue;
            };
            if !f.matches(endpoint) {
                continue;
            }
            let (seen, reboots) = &mut counts[i];
            *seen += 1;
            // One reboot unless `times` allows more; `after` is not used.
            if *seen > n && *reboots < f.times.unwrap_or(1) {
                *seen = 0;
                *reboots += 1;
                reboot = true;
                down = down.max(f.down);
            }
        }
        drop(counts);
        if reboot {
            *lock(&self.0.reboot_down) = down;
            self.reboot();
        }
        reboot
    }

    /// Reboot: volatile state (actuators, their timers) reset, every
    /// connection dropped, stored config kept.
    pub fn reboot(&self) {
        self.reset_slots();
        self.state_changed();
        self.0.reboot.send_modify(|e| *e += 1);
    }

    /// How many times the hub has rebooted (`reboot-after`).
    pub fn reboot_count(&self) -> u64 {
        *self.0.reboot.borrow()
    }

    /// How long the hub stays down after its last reboot, if at all.
    pub(crate) fn reboot_down(&self) -> Option<Duration> {
        *lock(&self.0.reboot_down)
    }

    pub(crate) fn reboots(&self) -> watch::Receiver<u64> {
        self.0.reboot.subscribe()
    }
}

/// The MAC `mac-change` answers with: another device's.
pub const OTHER_MAC: &str = "02:00:5E:10:00:01";
