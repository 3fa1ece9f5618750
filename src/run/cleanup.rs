//! The run's cleanup of one hub: whatever its scenarios left owed (an
//! interruption, an error, a panic anywhere on its thread) undone over the
//! session, before the connection gate, with cleanup's own timeouts and
//! retries. A panic inside cleanup itself is caught and cleanup tried once
//! more from what the registry still holds; a second panic is reported
//! with what is left, never unwound further.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use crate::safety::teardown::{HubDebt, HubUndo};
use crate::safety::Safety;
use crate::scenario::setup::panic_message;
use crate::session::client::HubClient;
use crate::session::ledger::Ledger;

/// Tries of one hub's cleanup when a try panics: the first, and one more.
const TRIES: usize = 2;

/// Test-only panics, from `VEGEHUB_HARNESS_DEBUG_PANIC` (a comma-separated
/// list): harness errors after the run began, at the points a run must
/// survive without leaving a hub modified.
#[derive(Debug, Clone, Default)]
pub(super) struct DebugPanic {
    /// `hub-thread`: each hub's thread panics after its first scenario,
    /// outside any scenario.
    pub(super) hub_thread: bool,
    /// `close`: each hub's thread panics as it closes, before its own
    /// cleanup; the run undoes what the hub owes when it joins the thread.
    pub(super) close: bool,
    /// `trials`: the run's own thread panics once the trials have run,
    /// before the hubs' threads are told there are no more.
    pub(super) trials: bool,
    /// `gate`: the run's own thread panics just before the connection
    /// gate, past every guard of the run but the last.
    pub(super) gate: bool,
    /// `cleanup` (the run's first cleanup try) or `cleanup-always` (every
    /// try): cleanup panics as it starts. Tries left to panic, over the run.
    cleanup: Arc<AtomicU32>,
}

impl DebugPanic {
    pub(super) fn from_env() -> DebugPanic {
        let spec = std::env::var("VEGEHUB_HARNESS_DEBUG_PANIC").unwrap_or_default();
        let has = |word: &str| spec.split(',').any(|w| w.trim() == word);
        let cleanup = match (has("cleanup-always"), has("cleanup")) {
            (true, _) => u32::MAX,
            (false, true) => 1,
            (false, false) => 0,
        };
        DebugPanic {
            hub_thread: has("hub-thread"),
            close: has("close"),
            trials: has("trials"),
            gate: has("gate"),
            cleanup: Arc::new(AtomicU32::new(cleanup)),
        }
    }

    fn cleanup_panics(&self) -> bool {
        self.cleanup
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// What undoing one hub's obligations takes: its address (the registry's
/// key), the session's client for it, the run's safety state and the
/// connection ledger (cleanup's requests are accounted as `cleanup`); and
/// what it undid so far. Kept by the hub's thread (which undoes what is
/// owed before each later cycle of a soak, and at its end) and by the run,
/// which undoes what a thread that died owes. Clones share what was undone.
#[derive(Clone)]
pub(super) struct HubCleanup {
    pub(super) label: String,
    pub(super) client: HubClient,
    pub(super) safety: Safety,
    pub(super) ledger: Ledger,
    pub(super) debug: DebugPanic,
    pub(super) undone: Arc<Mutex<Undone>>,
}

/// What a hub's cleanup did over the run.
#[derive(Default)]
pub(super) struct Undone {
    /// Every undo, added up; `None` until cleanup first had work.
    undo: Option<HubUndo>,
    /// What the last cleanup left owed.
    left: Option<HubDebt>,
}

impl HubCleanup {
    /// Undo whatever the hub owes, if anything (see [`HubCleanup::undone`]).
    /// Another device answering at the hub's address stops every write to
    /// it: what is owed stays owed, named with both MACs.
    pub(super) fn undo_owed(&self, rt: &Handle) {
        let owed = &self.safety.obligations;
        if let Some((expected, got)) = self.client.identity_changed() {
            owed.identity_changed(&self.label, expected.to_string(), got.to_string());
        }
        let before = owed.debt(&self.label);
        if before.is_clear() {
            return;
        }
        self.ledger.set_scenario(&self.label, Some("cleanup"));
        let mut panics = Vec::new();
        let mut done = None;
        for _ in 0..TRIES {
            match std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(self.attempt()))) {
                Ok(undo) => {
                    done = Some(undo);
                    break;
                }
                Err(p) => panics.push(format!("cleanup panicked: {}", panic_message(&*p))),
            }
        }
        self.ledger.set_scenario(&self.label, None);
        let undo = match (done, panics.is_empty()) {
            (Some(undo), true) => undo,
            // Cut short at least once: the registry says what was undone
            // (every verified step is cleared from it) and what is left.
            (done, _) => {
                let mut undo = HubUndo::between(&before, &owed.debt(&self.label));
                undo.errors = panics;
                undo.errors.extend(done.into_iter().flat_map(|u| u.errors));
                undo
            }
        };
        let mut undone = self.lock();
        undone.undo = Some(match undone.undo.take() {
            Some(earlier) => earlier.then(undo),
            None => undo,
        });
        undone.left = Some(owed.debt(&self.label));
    }

    /// Between a soak's cycles: undo what the hub owes, unless it is just
    /// what the last cleanup could not undo (a hub gone for good is not
    /// given cleanup's time again every cycle; the end of the run tries).
    pub(super) fn undo_new_debt(&self, rt: &Handle) {
        let now = self.safety.obligations.debt(&self.label);
        if !now.is_clear() && self.lock().left.as_ref() != Some(&now) {
            self.undo_owed(rt);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Undone> {
        self.undone.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything this hub's cleanup undid over the run, and what the
    /// registry says is still owed now (a later scenario may have settled
    /// it); `None` when the hub never owed anything to cleanup.
    pub(super) fn undone(&self) -> Option<HubUndo> {
        let undone = self.lock().undo.clone()?;
        let now = self.safety.obligations.debt(&self.label);
        Some(HubUndo {
            slots_left: now.slots.iter().copied().collect(),
            config_left: now.config.map(|c| c.backup),
            ..undone
        })
    }

    async fn attempt(&self) -> HubUndo {
        if self.debug.cleanup_panics() {
            panic!("VEGEHUB_HARNESS_DEBUG_PANIC: cleanup fails on purpose");
        }
        // Cleanup's requests run on cleanup's clock, not the run's
        // `--timeout`: a timeout too short for the hub must not leave its
        // relays on or its config changed.
        let client = self
            .client
            .with_request_timeout(self.safety.cleanup.request_timeout);
        self.safety.settle(&self.label, &client).await
    }
}
