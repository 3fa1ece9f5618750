//! Each hub's cleanup outcome in the reports: what its scenarios undid,
//! the run-level cleanup and what the safety registry still says is owed,
//! folded into one status (`nothing_owed`, `pending`, `verified`,
//! `left_modified`) with its obligations and restore commands.

use std::path::Path;
use std::time::Instant;

use crate::report::json::{
    CleanupRecord, CleanupStatus, ObligationKind, ObligationRecord, RunStatus,
};
use crate::safety::teardown::{restore_command, HubDebt, HubUndo};
use crate::scenario::Scenario;

/// Per hub, what the reports need besides the scenario records.
#[derive(Debug, Default)]
pub(super) struct HubState {
    /// Each scenario's own cleanup steps (all-off, config restored).
    pub(super) steps: Vec<ObligationRecord>,
    /// The run-level cleanup, when anything was left owed.
    pub(super) undo: Option<HubUndo>,
    /// The hub's thread has ended.
    pub(super) done: bool,
    /// The scenario under way until its record comes: which, of which
    /// cycle, since when (a second signal records it as interrupted).
    pub(super) running: Option<(Scenario, u32, Instant)>,
}

/// The cleanup outcome of the hub at `target`; `debt` is what the
/// registry says it still owes, if anything.
pub(super) fn cleanup_of(
    target: &str,
    st: &HubState,
    debt: Option<&HubDebt>,
    status: RunStatus,
) -> CleanupRecord {
    let mut obligations = st.steps.clone();
    if let Some(u) = &st.undo {
        let errors = (!u.errors.is_empty()).then(|| u.errors.join("; "));
        if !u.slots_off.is_empty() {
            let done = Some("every slot reads off".into());
            obligations.push(switch_off(&u.slots_off, true, done));
        }
        if !u.slots_left.is_empty() {
            obligations.push(switch_off(&u.slots_left, false, errors.clone()));
        }
        if let Some(b) = &u.config_restored {
            let done = Some("read back deep-equal to the original".into());
            obligations.push(restore(b, true, done, None));
        }
        if let Some(b) = &u.config_left {
            let command = restore_command(&b.display().to_string(), target);
            obligations.push(restore(b, false, errors, Some(command)));
        }
    } else if let Some(debt) = debt {
        // Owed and not (yet) undone by the run's cleanup: while the run
        // goes on, or after a second signal cut cleanup short.
        if !debt.slots.is_empty() {
            let may = "may be on; each switches itself off when its device-side duration ends";
            obligations.push(switch_off(&debt.slots, false, Some(may.into())));
        }
        if let Some(c) = &debt.config {
            let command = restore_command(&c.backup.display().to_string(), target);
            let may = Some("config may be modified".into());
            obligations.push(restore(&c.backup, false, may, Some(command)));
        }
    }
    let unverified = match &st.undo {
        // The run's cleanup settles what scenarios left: it decides.
        Some(u) => !u.verified(),
        None => obligations.iter().any(|o| !o.verified),
    };
    let owed_now = debt.is_some();
    let status = if obligations.is_empty() {
        CleanupStatus::NothingOwed
    } else if (owed_now || unverified) && status == RunStatus::Running && !st.done {
        CleanupStatus::Pending
    } else if unverified || owed_now {
        CleanupStatus::LeftModified
    } else {
        CleanupStatus::Verified
    };
    CleanupRecord {
        status,
        obligations,
    }
}

/// The step that switches `slots` off.
fn switch_off<'a>(
    slots: impl IntoIterator<Item = &'a u32>,
    verified: bool,
    detail: Option<String>,
) -> ObligationRecord {
    let slots: Vec<String> = slots.into_iter().map(u32::to_string).collect();
    let what = format!("switch actuator slot(s) {} off", slots.join(", "));
    run_step(what, ObligationKind::Actuators, verified, detail, None)
}

/// The step that restores the config from the backup at `backup`.
fn restore(
    backup: &Path,
    verified: bool,
    detail: Option<String>,
    command: Option<String>,
) -> ObligationRecord {
    let what = format!("restore config from {}", backup.display());
    run_step(what, ObligationKind::Config, verified, detail, command)
}

fn run_step(
    what: String,
    kind: ObligationKind,
    verified: bool,
    detail: Option<String>,
    restore_command: Option<String>,
) -> ObligationRecord {
    ObligationRecord {
        what,
        kind,
        verified,
        detail,
        scenario: None,
        restore_command,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::teardown::Obligations;

    /// What the registry says `hub` owes, as the sink reads it.
    fn owed(o: &Obligations, hub: &str) -> Option<HubDebt> {
        Some(o.debt(hub)).filter(|d| !d.is_clear())
    }

    #[test]
    fn cleanup_outcome_follows_what_is_owed_and_names_the_restore_command() {
        let o = Obligations::new(crate::session::actuator_limit::MaxOn::default());
        let hub = "127.0.0.1:8080";
        o.slot_may_be_on(hub, 0);
        o.config_may_change(hub, "{}".into(), "/b/it's.json".into());
        let st = HubState::default();
        // Mid-run: owed, pending.
        let c = cleanup_of(hub, &st, owed(&o, hub).as_ref(), RunStatus::Running);
        assert_eq!(c.status, CleanupStatus::Pending);
        // After a second signal: the same debts, left modified, with the
        // command the console prints.
        let c = cleanup_of(hub, &st, owed(&o, hub).as_ref(), RunStatus::Aborted);
        assert_eq!(c.status, CleanupStatus::LeftModified);
        let cmd = c
            .obligations
            .iter()
            .find_map(|x| x.restore_command.clone())
            .unwrap();
        assert!(o.leftovers().to_string().contains(&cmd), "{cmd}");
        assert_eq!(
            cmd,
            r"vegehub-harness restore '/b/it'\''s.json' --device 127.0.0.1:8080"
        );
        // The run's cleanup verified everything: verified, whatever a
        // scenario's own cleanup said before.
        o.slot_off(hub, 0);
        o.config_restored(hub);
        let st = HubState {
            steps: vec![run_step(
                "all 2 actuators off".into(),
                ObligationKind::Actuators,
                false,
                None,
                None,
            )],
            undo: Some(HubUndo {
                slots_off: vec![0],
                config_restored: Some("/b/x.json".into()),
                ..HubUndo::default()
            }),
            done: true,
            running: None,
        };
        let c = cleanup_of(hub, &st, owed(&o, hub).as_ref(), RunStatus::Interrupted);
        assert_eq!(c.status, CleanupStatus::Verified);
        // The restore of the run's cleanup failed: left modified.
        let st = HubState {
            undo: Some(HubUndo {
                config_left: Some("/b/x.json".into()),
                errors: vec!["restore: http status 500".into()],
                ..HubUndo::default()
            }),
            ..st
        };
        let c = cleanup_of(hub, &st, None, RunStatus::Finished);
        assert_eq!(c.status, CleanupStatus::LeftModified);
        assert_eq!(
            c.obligations.last().unwrap().restore_command.as_deref(),
            Some("vegehub-harness restore /b/x.json --device 127.0.0.1:8080")
        );
        // Nothing ever owed.
        let c = cleanup_of(hub, &HubState::default(), None, RunStatus::Finished);
        assert_eq!(c.status, CleanupStatus::NothingOwed);
    }
}
