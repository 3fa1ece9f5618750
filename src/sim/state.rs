//! The live state of one simulated hub: stored config, actuator slots and
//! their timers, fault counters, connection accounting and the update
//! deliveries it made. Shared by the routes and the accept loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::sync::{watch, Notify};

use super::fault::{FaultKind, FaultSpec, Route};
use super::profile::Profile;
use crate::device::{ActuatorSet, ActuatorSlot, Generation};

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

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    on: bool,
    last_run: i64,
    window_end: i64,
    /// Bumped on every switch, so a timer armed for an earlier "on" does nothing.
    generation: u64,
    /// `relapse`: after an off command, the status reads that still show
    /// off, and for how many seconds the slot then switches itself on.
    relapse: Option<(u8, u32)>,
}

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
        let config = lock(&self.0.config);
        let parts: Vec<String> = config
            .raw
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    /// `config/get`: the named sections, in request order, then `"error":0`.
    /// Old firmware always answers `endpoints` with null.
    pub fn config_sections(&self, wanted: &Map<String, Value>) -> Value {
        serde_json::from_str(&self.config_sections_text(wanted)).unwrap_or_default()
    }

    /// [`SimState::config_sections`] as the exact text the hub sends: each
    /// section as stored.
    pub fn config_sections_text(&self, wanted: &Map<String, Value>) -> String {
        let config = lock(&self.0.config);
        let mut parts = Vec::new();
        for name in wanted.keys() {
            if name == "error" {
                continue;
            }
            let key = Value::String(name.clone());
            if name == "endpoints" && self.0.generation == Generation::Old {
                parts.push(format!("{key}:null"));
            } else if let Some((_, raw)) = config.raw.iter().find(|(k, _)| k == name) {
                parts.push(format!("{key}:{raw}"));
            }
        }
        parts.push("\"error\":0".into());
        format!("{{{}}}", parts.join(","))
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
        let parsed: Value =
            serde_json::from_str(body).map_err(|e| BadRequest(format!("body is not JSON: {e}")))?;
        let Value::Object(sections) = &parsed else {
            return Err(BadRequest("config must be a JSON object".into()));
        };
        let raws: std::collections::HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(body).map_err(|e| BadRequest(format!("body: {e}")))?;
        let lossy = store
            && self.0.faults.iter().enumerate().any(|(i, f)| {
                f.kind == FaultKind::LossyNumbers && f.matches(Route::ConfigSet) && self.fire(i)
            });
        let mut config = lock(&self.0.config);
        let mut merged = config.doc.clone();
        let mut merged_raw = config.raw.clone();
        let target = merged.as_object_mut().expect("config is an object");
        for (name, value) in sections {
            match name.as_str() {
                // Echoed back from config/get; not part of the document.
                "error" => {}
                "endpoints" if self.0.generation == Generation::Old && value.is_null() => {}
                _ => {
                    target.insert(name.clone(), value.clone());
                    let raw = match raws.get(name) {
                        Some(r) if !lossy => r.get().to_owned(),
                        _ => value.to_string(),
                    };
                    match merged_raw.iter_mut().find(|(k, _)| k == name) {
                        Some(slot) => slot.1 = raw,
                        None => merged_raw.push((name.clone(), raw)),
                    }
                }
            }
        }
        if Generation::of(&merged) != self.0.generation {
            return Err(BadRequest(format!(
                "config has the shape of {} firmware but this hub runs {}",
                Generation::of(&merged),
                self.0.generation
            )));
        }
        check_config(&merged, self.0.generation).map_err(BadRequest)?;
        if store {
            *config = Stored {
                doc: merged,
                raw: merged_raw,
            };
            drop(config);
            self.state_changed();
        }
        Ok(())
    }

    // ---- actuators ----

    /// Live state (0/1) of every slot.
    pub fn actuator_states(&self) -> Vec<u8> {
        lock(&self.0.slots).iter().map(|s| s.on as u8).collect()
    }

    /// `actuators/status` entries.
    pub fn actuator_slots(&self) -> Vec<ActuatorSlot> {
        self.relapse_on_read();
        let typ = self.0.profile.typ_ma();
        lock(&self.0.slots)
            .iter()
            .enumerate()
            .map(|(i, s)| ActuatorSlot {
                slot: i as u32,
                state: s.on as u8,
                last_run: s.last_run,
                next_window_start: if s.on { s.last_run } else { 0 },
                next_window_end: if s.on { s.window_end } else { 0 },
                cur_ma: if s.on { typ } else { 0 },
                typ_ma: typ,
                error: 0,
            })
            .collect()
    }

    /// `actuators/set`: switch a slot on for `duration` seconds (0: until
    /// switched off) or off now.
    pub fn set_actuator(&self, set: ActuatorSet) -> Result<(), BadRequest> {
        let count = self.0.profile.actuator_count();
        if set.target >= count {
            return Err(BadRequest(format!(
                "target {} out of range (hub has {count} actuators)",
                set.target
            )));
        }
        match set.state {
            0 => {
                self.switch_off(set.target, None);
                Ok(())
            }
            1 => {
                if self.stuck(set.target, true) {
                    return Ok(());
                }
                let now = unix_now();
                let mut slots = lock(&self.0.slots);
                let slot = &mut slots[set.target as usize];
                slot.on = true;
                slot.last_run = now;
                slot.window_end = if set.duration > 0 {
                    now + i64::from(set.duration)
                } else {
                    0
                };
                slot.generation += 1;
                if set.duration > 0 {
                    self.arm_timer(set.target, slot.generation, set.duration);
                }
                drop(slots);
                self.state_changed();
                Ok(())
            }
            s => Err(BadRequest(format!("state must be 0 or 1, got {s}"))),
        }
    }

    fn arm_timer(&self, target: u32, generation: u64, secs: u32) {
        // Weak: a pending timer must not keep a shut-down hub alive.
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        // The deadline is fixed now, not when the task first runs.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(secs));
        tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            if let Some(inner) = weak.upgrade() {
                SimState(inner).switch_off(target, Some(generation));
            }
        });
    }

    /// Switch a slot off, unless a `stuck-on` fault holds it. `timer` is the
    /// generation a timer was armed for; a newer switch makes it a no-op.
    fn switch_off(&self, target: u32, timer: Option<u64>) {
        {
            let slots = lock(&self.0.slots);
            let slot = &slots[target as usize];
            if !slot.on || timer.is_some_and(|g| g != slot.generation) {
                return;
            }
        }
        if self.stuck(target, false) {
            return;
        }
        let relapse = timer.is_none() && self.relapses(target);
        let mut slots = lock(&self.0.slots);
        let slot = &mut slots[target as usize];
        if relapse {
            let secs = (slot.window_end - slot.last_run).clamp(1, 3600) as u32;
            slot.relapse = Some((1, secs));
        }
        slot.on = false;
        slot.window_end = 0;
        slot.generation += 1;
        drop(slots);
        self.state_changed();
    }

    /// A status read: a `relapse` slot read off once switches itself back
    /// on now, for the duration of its last on.
    fn relapse_on_read(&self) {
        let mut timers = Vec::new();
        let mut slots = lock(&self.0.slots);
        for (i, slot) in slots.iter_mut().enumerate() {
            match slot.relapse {
                Some((0, secs)) => {
                    let now = unix_now();
                    slot.relapse = None;
                    slot.on = true;
                    slot.last_run = now;
                    slot.window_end = now + i64::from(secs);
                    slot.generation += 1;
                    timers.push((i as u32, slot.generation, secs));
                }
                Some((n, secs)) => slot.relapse = Some((n - 1, secs)),
                None => {}
            }
        }
        drop(slots);
        if !timers.is_empty() {
            for (target, generation, secs) in timers {
                self.arm_timer(target, generation, secs);
            }
            self.state_changed();
        }
    }

    /// Whether a `relapse` fault makes this off command come undone.
    fn relapses(&self, target: u32) -> bool {
        let mut relapse = false;
        for (i, f) in self.0.faults.iter().enumerate() {
            if let FaultKind::Relapse(s) = f.kind {
                if s.is_none_or(|s| s == target) && self.fire(i) {
                    relapse = true;
                }
            }
        }
        relapse
    }

    /// Whether a stuck fault stops this switch (`on`: a switch on).
    fn stuck(&self, target: u32, on: bool) -> bool {
        let mut stuck = false;
        for (i, f) in self.0.faults.iter().enumerate() {
            let slot = match (&f.kind, on) {
                (FaultKind::StuckOff(s), true) | (FaultKind::StuckOn(s), false) => s,
                _ => continue,
            };
            if slot.is_none_or(|s| s == target) && self.fire(i) {
                stuck = true;
            }
        }
        stuck
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
        for slot in lock(&self.0.slots).iter_mut() {
            let generation = slot.generation + 1;
            *slot = Slot {
                generation,
                ..Slot::default()
            };
        }
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

/// Requests and deliveries a hub keeps: enough for any test to inspect, and
/// a hub served for days (a soak against `--sim`) does not grow.
pub const LOG_KEEP: usize = 2048;

/// The last [`LOG_KEEP`] entries, and how many there were in all.
struct Log<T> {
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

/// The stored config: the document, and each top-level section as the
/// exact text it was stored from (what `config/get` sends).
#[derive(Debug, Clone)]
struct Stored {
    doc: Value,
    raw: Vec<(String, String)>,
}

/// The MAC `mac-change` answers with: another device's.
pub const OTHER_MAC: &str = "02:00:5E:10:00:01";

/// The integer above 2^64 `big-number` stores, exactly.
pub const BIG_NUMBER: &str = "123456789012345678901234567890";

impl Stored {
    /// The profile's config, with the data faults applied.
    fn start(config: &Value, faults: &[FaultSpec]) -> Stored {
        let mut doc = config.clone();
        let mut raw: Vec<(String, String)> = doc
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default();
        for f in faults {
            match f.kind {
                FaultKind::CtrlChars => {
                    let name = Value::String(CTRL_NAME.into()).to_string();
                    add_to_hub(&mut doc, &mut raw, "name", &name);
                    add_to_hub(&mut doc, &mut raw, CTRL_KEY, "\"x\\u0007\"");
                }
                FaultKind::SecretFields => {
                    for (key, secret) in [("wifi_pass", 0), ("passphrase", 1), ("pwd", 2)] {
                        let v = Value::String(SECRETS[secret].into()).to_string();
                        add_to_hub(&mut doc, &mut raw, key, &v);
                    }
                    let url = format!("http://127.0.0.1:9/api/webhook/{}", SECRETS[3]);
                    add_to_hub(
                        &mut doc,
                        &mut raw,
                        "webhook",
                        &Value::String(url).to_string(),
                    );
                }
                FaultKind::BigNumber => add_to_hub(&mut doc, &mut raw, "vh_total", BIG_NUMBER),
                _ => {}
            }
        }
        Stored { doc, raw }
    }
}

/// Add `key` with the JSON text `text` to the `hub` section (a section
/// `config/get` returns), spliced in as text so a number no f64 holds
/// stays exact.
fn add_to_hub(doc: &mut Value, raw: &mut Vec<(String, String)>, key: &str, text: &str) {
    let mut hub = doc
        .get("hub")
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    hub[key] = serde_json::from_str(text).unwrap_or_default();
    let hub_raw = raw
        .iter()
        .find(|(k, _)| k == "hub")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "{}".into());
    let trimmed = hub_raw.trim_end();
    let body = trimmed.strip_suffix('}').unwrap_or(trimmed).trim_end();
    let sep = if body.ends_with('{') { "" } else { "," };
    let hub_raw = format!("{body}{sep}{}:{text}}}", Value::String(key.to_owned()));
    match raw.iter_mut().find(|(k, _)| k == "hub") {
        Some(slot) => slot.1 = hub_raw,
        None => raw.push(("hub".into(), hub_raw)),
    }
    if let Some(m) = doc.as_object_mut() {
        m.insert("hub".into(), hub);
    }
}

/// The hub name `ctrl-chars` stores: ESC sequences (clear screen, retitle
/// the terminal), BEL, and a CR-LF with a fake verdict line.
pub const CTRL_NAME: &str = "Desk\u{1b}[2J\u{1b}]0;pwned\u{7}\r\ntest result: ok. 99 passed";

/// A config key `ctrl-chars` adds (it shows in diff paths).
pub const CTRL_KEY: &str = "label\u{1b}[31m";

/// The secrets `secret-fields` stores: under `wifi.wifi_pass`,
/// `wifi.passphrase`, `wifi.pwd`, and the path of `webhook`.
pub const SECRETS: [&str; 4] = [
    "hunter2-SECRET-PASS",
    "open-SESAME-PHRASE",
    "pwd-SECRET-WORD",
    "SECRET-WEBHOOK-ID",
];

/// Whether `doc` has the shape of a config document of `generation`.
pub fn check_config(doc: &Value, generation: Generation) -> Result<(), String> {
    let Value::Object(map) = doc else {
        return Err("config must be a JSON object".into());
    };
    if let Some(hub) = map.get("hub") {
        let Value::Object(hub) = hub else {
            return Err("hub must be an object".into());
        };
        for key in ["server_url", "name"] {
            if hub.get(key).is_some_and(|v| !v.is_string()) {
                return Err(format!("hub.{key} must be a string"));
            }
        }
        if hub.get("server_type").is_some_and(|v| !v.is_i64()) {
            return Err("hub.server_type must be an integer".into());
        }
    }
    for key in ["sensors", "actuators", "schedules"] {
        if map.get(key).is_some_and(|v| !v.is_array()) {
            return Err(format!("{key} must be a list"));
        }
    }
    if map.get("api_key").is_some_and(|v| !v.is_string()) {
        return Err("api_key must be a string".into());
    }
    match generation {
        Generation::New => {
            let Some(Value::Array(endpoints)) = map.get("endpoints") else {
                return Err("endpoints must be a list on new firmware".into());
            };
            for (i, e) in endpoints.iter().enumerate() {
                serde_json::from_value::<crate::device::Endpoint>(e.clone())
                    .map_err(|err| format!("endpoints[{i}]: {err}"))?;
            }
        }
        Generation::Old => {
            if map.get("endpoints").is_some_and(|v| !v.is_null()) {
                return Err("endpoints must be null on old firmware".into());
            }
            if !map.get("api_key").is_some_and(Value::is_string) {
                return Err("api_key (a string) is required on old firmware".into());
            }
            if !map.get("hub").is_some_and(Value::is_object) {
                return Err("hub (an object) is required on old firmware".into());
            }
        }
    }
    Ok(())
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
