//! Settling a hub's obligations: switch its slots off and restore its config,
//! each verified by reading the hub back, with a timeout per request and
//! retries with exponential backoff, so a flaky hub gets several chances, a
//! slow one is waited for, and a dead one cannot hang the harness.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::time::{sleep, timeout, Instant};

use super::{HubDebt, HubOps, Obligations};
use crate::device::json_diff::diff_texts;

/// Timeouts and retries of cleanup. Against a hub that never answers, one
/// undo step takes `attempts * request_timeout` plus the backoffs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// Tries per undo step (at least 1).
    pub attempts: u32,
    /// Wait after the first failed attempt; doubles after each further one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Bound on each request of an attempt. An attempt is bounded by its
    /// requests and `verify_within`, not by one clock for all of them: a
    /// hub that takes 1.5 s per answer is slow, not dead, and switching
    /// four slots off and reading them off twice takes it 9 s.
    pub request_timeout: Duration,
    /// How long one attempt polls `actuators/status` for the slots to read off.
    pub verify_within: Duration,
    /// Interval of that polling.
    pub poll_every: Duration,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(2),
            request_timeout: Duration::from_secs(3),
            verify_within: Duration::from_secs(2),
            poll_every: Duration::from_millis(100),
        }
    }
}

impl CleanupPolicy {
    /// How long one undo step takes against a hub that never answers.
    pub fn dead_hub_case(&self) -> Duration {
        let mut total = self.request_timeout * self.attempts;
        let mut b = self.first_backoff;
        for _ in 1..self.attempts {
            total += b;
            b = (b * 2).min(self.max_backoff);
        }
        total
    }
}

/// Progress of cleanup, for the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoEvent {
    Undoing {
        hub: String,
        what: String,
    },
    Retrying {
        hub: String,
        what: String,
        attempt: u32,
        error: String,
        backoff: Duration,
    },
    Undone {
        hub: String,
        what: String,
    },
    Failed {
        hub: String,
        what: String,
        error: String,
    },
}

impl std::fmt::Display for UndoEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UndoEvent::Undoing { hub, what } => write!(f, "undoing on hub {hub}: {what}"),
            UndoEvent::Retrying {
                hub,
                what,
                attempt,
                error,
                backoff,
            } => write!(
                f,
                "hub {hub}: {what}: attempt {attempt} failed ({error}); retrying in {} ms",
                backoff.as_millis()
            ),
            UndoEvent::Undone { hub, what } => write!(f, "hub {hub}: {what}: done, verified"),
            UndoEvent::Failed { hub, what, error } => {
                write!(f, "hub {hub}: {what}: NOT verified: {error}")
            }
        }
    }
}

/// What cleanup of one hub achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubUndo {
    pub label: String,
    pub slots_off: Vec<u32>,
    /// Slots that could not be verified off.
    pub slots_left: Vec<u32>,
    /// The backup that was restored and verified.
    pub config_restored: Option<PathBuf>,
    /// The backup to restore by hand: the restore could not be verified.
    pub config_left: Option<PathBuf>,
    pub errors: Vec<String>,
}

impl HubUndo {
    /// Everything owed was verified undone.
    pub fn verified(&self) -> bool {
        self.slots_left.is_empty() && self.config_left.is_none()
    }

    /// This cleanup, then a `later` one of the same hub: all both undid;
    /// what the later one left.
    pub fn then(mut self, later: HubUndo) -> HubUndo {
        self.slots_off.extend(later.slots_off);
        self.slots_off.sort_unstable();
        self.slots_off.dedup();
        self.errors.extend(later.errors);
        HubUndo {
            slots_left: later.slots_left,
            config_restored: later.config_restored.or(self.config_restored),
            config_left: later.config_left,
            ..self
        }
    }

    /// What cleanup achieved, told by the registry: owed `before` it, still
    /// owed `after` it (so a cleanup cut short by a panic is told truly).
    pub fn between(before: &HubDebt, after: &HubDebt) -> HubUndo {
        HubUndo {
            label: before.label.clone(),
            slots_off: before.slots.difference(&after.slots).copied().collect(),
            slots_left: after.slots.iter().copied().collect(),
            config_restored: before
                .config
                .as_ref()
                .filter(|_| after.config.is_none())
                .map(|c| c.backup.clone()),
            config_left: after.config.as_ref().map(|c| c.backup.clone()),
            errors: Vec::new(),
        }
    }
}

/// Settle everything `obligations` records for `hub`, slots first (water
/// before config). Verified steps are cleared from the registry; unverified
/// ones stay so the caller can print them.
pub async fn settle<H: HubOps>(
    hub: &str,
    ops: &H,
    obligations: &Obligations,
    policy: &CleanupPolicy,
    on_event: &mut (dyn FnMut(UndoEvent) + Send),
) -> HubUndo {
    let debt = obligations.debt(hub);
    if let Some((expected, got)) = &debt.identity_changed {
        // Another device answers at this address: nothing is sent to it.
        let mut report = HubUndo::between(&debt, &debt);
        report.errors.push(format!(
            "not attempted: the hub at {hub} now answers with MAC {got}, not {expected}"
        ));
        return report;
    }
    let mut report = HubUndo {
        label: debt.label.clone(),
        ..HubUndo::default()
    };
    let label = debt.label;

    if !debt.slots.is_empty() {
        let slots = debt.slots;
        let what = format!("switch actuator slot(s) {} off", list(&slots));
        let r = step(&label, &what, policy, on_event, || {
            all_off_verified(ops, &slots, policy)
        })
        .await;
        match r {
            Ok(()) => {
                slots.iter().for_each(|&s| obligations.slot_off(hub, s));
                report.slots_off = slots.into_iter().collect();
            }
            Err(e) => {
                report.slots_left = slots.into_iter().collect();
                report.errors.push(format!("{what}: {e}"));
            }
        }
    }

    if let Some(c) = debt.config {
        let what = format!("restore config from {}", c.backup.display());
        let r = step(&label, &what, policy, on_event, || {
            restore_verified(ops, &c.original, policy)
        })
        .await;
        match r {
            Ok(()) => {
                obligations.config_restored(hub);
                report.config_restored = Some(c.backup);
            }
            Err(e) => {
                report.config_left = Some(c.backup);
                report.errors.push(format!("{what}: {e}"));
            }
        }
    }
    report
}

/// Run one undo step with events, timeouts and retries.
async fn step<F, Fut>(
    hub: &str,
    what: &str,
    policy: &CleanupPolicy,
    on_event: &mut (dyn FnMut(UndoEvent) + Send),
    attempt: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), AttemptError>>,
{
    on_event(UndoEvent::Undoing {
        hub: hub.to_owned(),
        what: what.to_owned(),
    });
    let r = retry(policy, attempt, |attempt, error, backoff| {
        on_event(UndoEvent::Retrying {
            hub: hub.to_owned(),
            what: what.to_owned(),
            attempt,
            error: error.to_owned(),
            backoff,
        })
    })
    .await;
    on_event(match &r {
        Ok(()) => UndoEvent::Undone {
            hub: hub.to_owned(),
            what: what.to_owned(),
        },
        Err(e) => UndoEvent::Failed {
            hub: hub.to_owned(),
            what: what.to_owned(),
            error: e.clone(),
        },
    });
    r
}

/// Why one attempt failed. `refused`: the hub answered 4xx, it refused
/// the request itself, so the same request again cannot help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptError {
    pub message: String,
    pub refused: bool,
}

impl From<String> for AttemptError {
    fn from(message: String) -> Self {
        AttemptError {
            message,
            refused: false,
        }
    }
}

/// `message` for `e`, marked refused when the hub answered 4xx.
fn attempt_error<H: HubOps>(what: &str, e: &H::Error) -> AttemptError {
    AttemptError {
        message: format!("{what}: {e}"),
        refused: H::refused(e),
    }
}

/// Try `attempt` up to `policy.attempts` times (each bounded by its own
/// requests' timeouts, see [`answer`]), sleeping an exponentially growing
/// backoff in between. The error names the last failure and the number of attempts.
/// A refusal (4xx) is not tried again.
pub async fn retry<F, Fut, E>(
    policy: &CleanupPolicy,
    mut attempt: F,
    mut on_retry: impl FnMut(u32, &str, Duration),
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<AttemptError>,
{
    let attempts = policy.attempts.max(1);
    let mut backoff = policy.first_backoff;
    for n in 1..=attempts {
        let error = match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let e: AttemptError = e.into();
                if e.refused {
                    return Err(format!("{} (refused by the hub: not retried)", e.message));
                }
                e.message
            }
        };
        if n == attempts {
            return Err(format!("{error} (gave up after {n} attempts)"));
        }
        on_retry(n, &error, backoff);
        sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
    }
    unreachable!("the loop returns on its last attempt")
}

/// `request`'s answer within `policy.request_timeout`; a failure is named
/// with `what`, a timeout as the hub's silence.
async fn answer<H: HubOps, T>(
    policy: &CleanupPolicy,
    what: &str,
    request: impl Future<Output = Result<T, H::Error>>,
) -> Result<T, AttemptError> {
    match timeout(policy.request_timeout, request).await {
        Ok(r) => r.map_err(|e| attempt_error::<H>(what, &e)),
        Err(_) => Err(format!("no answer within {} ms", policy.request_timeout.as_millis()).into()),
    }
}

/// Send `off` to every slot, then poll status until all of them read off.
async fn all_off_verified<H: HubOps>(
    ops: &H,
    slots: &BTreeSet<u32>,
    policy: &CleanupPolicy,
) -> Result<(), AttemptError> {
    for &slot in slots {
        answer::<H, _>(policy, &format!("slot {slot} off"), ops.actuator_off(slot)).await?;
    }
    let deadline = Instant::now() + policy.verify_within;
    // Off is verified by two reads in a row, a poll apart: a relay that
    // switches itself back on right after the off (a schedule window
    // opening again) is not taken for off.
    let mut off_once = false;
    loop {
        let status = answer::<H, _>(policy, "actuator status", ops.actuator_status()).await?;
        // Off only when the hub says so: a slot it does not report (or
        // reports twice, differently) is unknown, not off.
        let mut still_on = BTreeSet::new();
        let mut unknown = BTreeSet::new();
        for &s in slots {
            let mut entries = status.iter().filter(|a| a.slot == s);
            match entries.next() {
                None => {
                    unknown.insert(s);
                }
                Some(first) => {
                    if first.state != 0 || entries.any(|a| a.state != 0) {
                        still_on.insert(s);
                    }
                }
            }
        }
        if still_on.is_empty() && unknown.is_empty() {
            if off_once {
                return Ok(());
            }
            // One confirming read, even at the deadline.
            off_once = true;
            sleep(policy.poll_every).await;
            continue;
        }
        off_once = false;
        if Instant::now() >= deadline {
            let mut parts = Vec::new();
            if !still_on.is_empty() {
                parts.push(format!("slot(s) {} still on", list(&still_on)));
            }
            if !unknown.is_empty() {
                parts.push(format!(
                    "slot(s) {} unknown (not reported by actuators/status)",
                    list(&unknown)
                ));
            }
            return Err(format!(
                "{} after {} ms",
                parts.join(", "),
                policy.verify_within.as_millis()
            )
            .into());
        }
        sleep(policy.poll_every).await;
    }
}

/// Write `original` (the exact answer the backup holds) back, byte for
/// byte, and verify the hub returns it deep-equal, numbers compared exactly.
pub(crate) async fn restore_verified<H: HubOps>(
    ops: &H,
    original: &str,
    policy: &CleanupPolicy,
) -> Result<(), AttemptError> {
    answer::<H, _>(policy, "config/set", ops.config_set(original)).await?;
    let back = answer::<H, _>(policy, "config/get", ops.config_get()).await?;
    let diff = diff_texts(original, &back);
    if diff.is_empty() {
        Ok(())
    } else {
        Err(format!("read back differs at {}", diff.join(", ")).into())
    }
}

fn list(slots: &BTreeSet<u32>) -> String {
    slots
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::{ActuatorSet, ActuatorSlot};
    use crate::session::actuator_limit::MaxOn;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    /// A scripted hub: `fail_first` requests of each kind fail, `hang`
    /// makes every request wait forever, `latency` makes each answer take
    /// that long, `stuck` slots never switch off, `mangle` changes what
    /// config/get returns.
    #[derive(Default)]
    pub(crate) struct FakeHub {
        pub slots: Mutex<Vec<u8>>,
        pub config: Mutex<Value>,
        pub mac: String,
        pub fail_first: AtomicU32,
        pub hang: bool,
        pub latency: Duration,
        pub stuck: Vec<u32>,
        pub mangle: bool,
        pub sets: Mutex<Vec<ActuatorSet>>,
        pub config_sets: AtomicU32,
        /// Slots that, after an off, read off once and are then on again.
        pub relapse: Vec<u32>,
        /// Status reads left before each relapsing slot is on again.
        pub relapsing: Mutex<Vec<(u32, u8)>>,
    }

    impl FakeHub {
        async fn gate(&self) -> Result<(), String> {
            if self.hang {
                std::future::pending::<()>().await;
            }
            sleep(self.latency).await;
            let left = self.fail_first.load(Ordering::SeqCst);
            if left > 0 {
                self.fail_first.store(left - 1, Ordering::SeqCst);
                return Err("status 500".into());
            }
            Ok(())
        }
    }

    impl HubOps for FakeHub {
        type Error = String;
        async fn actuator_off(&self, slot: u32) -> Result<(), String> {
            let cmd = MaxOn::off(slot);
            self.gate().await?;
            self.sets.lock().unwrap().push(cmd);
            if !self.stuck.contains(&cmd.target) {
                self.slots.lock().unwrap()[cmd.target as usize] = cmd.state;
            }
            if self.relapse.contains(&cmd.target) {
                self.relapsing.lock().unwrap().push((cmd.target, 1));
            }
            Ok(())
        }
        async fn actuator_status(&self) -> Result<Vec<ActuatorSlot>, String> {
            self.gate().await?;
            for (slot, reads) in self.relapsing.lock().unwrap().iter_mut() {
                match reads {
                    0 => self.slots.lock().unwrap()[*slot as usize] = 1,
                    n => *n -= 1,
                }
            }
            Ok(self
                .slots
                .lock()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, &state)| ActuatorSlot {
                    slot: i as u32,
                    state,
                    ..Default::default()
                })
                .collect())
        }
        async fn config_get(&self) -> Result<String, String> {
            self.gate().await?;
            let mut c = self.config.lock().unwrap().clone();
            if self.mangle {
                c["mangled"] = json!(true);
            }
            Ok(c.to_string())
        }
        async fn config_set(&self, config: &str) -> Result<(), String> {
            self.gate().await?;
            self.config_sets.fetch_add(1, Ordering::SeqCst);
            *self.config.lock().unwrap() =
                serde_json::from_str(config).map_err(|e| e.to_string())?;
            Ok(())
        }
        async fn mac(&self) -> Result<String, String> {
            self.gate().await?;
            Ok(self.mac.clone())
        }
    }

    fn owed(o: &Obligations) {
        o.slot_may_be_on("h", 0);
        o.slot_may_be_on("h", 1);
        o.config_may_change("h", r#"{"a": 1}"#.into(), "/b/h.json".into());
    }

    fn hub() -> FakeHub {
        FakeHub {
            slots: Mutex::new(vec![1, 1]),
            config: Mutex::new(json!({"a": 2})),
            ..FakeHub::default()
        }
    }

    async fn run(h: &FakeHub, o: &Obligations) -> (HubUndo, Vec<UndoEvent>) {
        let mut events = Vec::new();
        let r = settle("h", h, o, &CleanupPolicy::default(), &mut |e| {
            events.push(e)
        })
        .await;
        (r, events)
    }

    #[tokio::test(start_paused = true)]
    async fn settles_a_healthy_hub_and_clears_the_registry() {
        let o = Obligations::new(MaxOn::default());
        owed(&o);
        let h = hub();
        let (r, events) = run(&h, &o).await;
        assert!(r.verified(), "{r:?}");
        assert_eq!(r.slots_off, vec![0, 1]);
        assert_eq!(*h.slots.lock().unwrap(), vec![0, 0]);
        assert_eq!(*h.config.lock().unwrap(), json!({"a": 1}));
        assert!(o.is_clear());
        // Every off carries duration 0 and state 0.
        assert!(h
            .sets
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.state == 0 && s.duration == 0));
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(
            events[0].to_string(),
            "undoing on hub h: switch actuator slot(s) 0, 1 off"
        );
        assert_eq!(
            events[3].to_string(),
            "hub h: restore config from /b/h.json: done, verified"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_that_reads_off_once_and_is_on_again_is_not_verified_off() {
        let o = Obligations::new(MaxOn::default());
        owed(&o);
        let h = FakeHub {
            relapse: vec![1],
            ..hub()
        };
        let (r, _) = run(&h, &o).await;
        assert!(!r.verified(), "{r:?}");
        assert_eq!(h.slots.lock().unwrap()[1], 1, "the fake relapsed");
        assert!(!o.is_clear(), "slot 1 is still owed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_flaky_hub_gets_retries_with_doubling_backoff() {
        let o = Obligations::new(MaxOn::default());
        owed(&o);
        let h = hub();
        // Attempts 1-3 of the slot step fail; the 4th succeeds.
        h.fail_first.store(3, Ordering::SeqCst);
        let start = Instant::now();
        let (r, events) = run(&h, &o).await;
        assert!(r.verified(), "{r:?}");
        let backoffs: Vec<u128> = events
            .iter()
            .filter_map(|e| match e {
                UndoEvent::Retrying { backoff, .. } => Some(backoff.as_millis()),
                _ => None,
            })
            .collect();
        assert_eq!(backoffs, vec![250, 500, 1000]);
        // Virtual time: exactly the backoffs (requests are instant), plus
        // one poll between the two off reads that verify the slots.
        let poll = CleanupPolicy::default().poll_every;
        assert_eq!(start.elapsed(), Duration::from_millis(1750) + poll);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_hub_is_given_up_on_in_bounded_time() {
        let o = Obligations::new(MaxOn::default());
        owed(&o);
        let h = FakeHub {
            hang: true,
            ..hub()
        };
        let policy = CleanupPolicy::default();
        let start = Instant::now();
        let (r, events) = run(&h, &o).await;
        assert!(!r.verified());
        assert_eq!(r.slots_left, vec![0, 1]);
        assert_eq!(r.config_left, Some(PathBuf::from("/b/h.json")));
        assert_eq!(start.elapsed(), policy.dead_hub_case() * 2);
        assert_eq!(
            policy.dead_hub_case(),
            Duration::from_millis(4 * 3000 + 250 + 500 + 1000)
        );
        // The registry still says what is owed.
        assert_eq!(o.debt("h").slots.len(), 2);
        assert!(o.debt("h").config.is_some());
        match events.last().unwrap() {
            UndoEvent::Failed { error, .. } => {
                assert_eq!(error, "no answer within 3000 ms (gave up after 4 attempts)")
            }
            e => panic!("{e:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_hub_is_waited_for_request_by_request() {
        // 1.5 s an answer, under the 3 s a request may take: two offs and
        // two off reads are 6 s, and the restore 3 s. One clock of 3 s for
        // the whole attempt (as cleanup had) never verified either.
        let o = Obligations::new(MaxOn::default());
        owed(&o);
        let h = FakeHub {
            latency: Duration::from_millis(1500),
            ..hub()
        };
        let start = Instant::now();
        let (r, events) = run(&h, &o).await;
        assert!(r.verified(), "{r:?} {events:?}");
        assert!(o.is_clear());
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, UndoEvent::Retrying { .. })),
            "{events:?}"
        );
        let poll = CleanupPolicy::default().poll_every;
        assert_eq!(start.elapsed(), Duration::from_millis(6 * 1500) + poll);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_relay_is_not_verified_off() {
        let o = Obligations::new(MaxOn::default());
        o.slot_may_be_on("h", 0);
        o.slot_may_be_on("h", 1);
        let h = FakeHub {
            stuck: vec![1],
            ..hub()
        };
        let (r, _) = run(&h, &o).await;
        assert_eq!(r.slots_left, vec![0, 1]);
        assert!(r.errors[0].contains("slot(s) 1 still on"), "{:?}", r.errors);
        assert!(!o.is_clear());
    }

    #[tokio::test(start_paused = true)]
    async fn a_restore_that_does_not_read_back_equal_is_not_verified() {
        let o = Obligations::new(MaxOn::default());
        o.config_may_change("h", r#"{"a": 1}"#.into(), "/b/h.json".into());
        let h = FakeHub {
            mangle: true,
            ..hub()
        };
        let (r, _) = run(&h, &o).await;
        assert_eq!(r.config_left, Some(PathBuf::from("/b/h.json")));
        assert!(r.errors[0].contains("read back differs at mangled (unexpected)"));
        assert_eq!(
            h.config_sets.load(Ordering::SeqCst),
            4,
            "one write per attempt"
        );
    }

    #[test]
    fn cleanups_of_one_hub_add_up_and_the_later_says_what_is_left() {
        let o = Obligations::new(MaxOn::default());
        owed(&o);
        let before = o.debt("h");
        o.slot_off("h", 1);
        let first = HubUndo::between(&before, &o.debt("h"));
        assert_eq!(
            (first.slots_off.clone(), first.slots_left.clone()),
            (vec![1], vec![0])
        );
        assert_eq!(first.config_left, Some(PathBuf::from("/b/h.json")));
        let before = o.debt("h");
        o.slot_off("h", 0);
        o.config_restored("h");
        let both = first.then(HubUndo::between(&before, &o.debt("h")));
        assert_eq!(both.slots_off, vec![0, 1]);
        assert_eq!(both.config_restored, Some(PathBuf::from("/b/h.json")));
        assert!(both.verified(), "{both:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_owed_sends_nothing() {
        let o = Obligations::new(MaxOn::default());
        let h = hub();
        let (r, events) = run(&h, &o).await;
        assert!(r.verified());
        assert!(events.is_empty());
        assert!(h.sets.lock().unwrap().is_empty());
        assert_eq!(h.config_sets.load(Ordering::SeqCst), 0);
    }
}
