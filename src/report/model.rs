//! The report model: every hub of a run after it ended (`RunReport`,
//! `HubReport`), the one structure every report is rendered from and the
//! outcome and exit code are read from. Built by `run`; here so that the
//! reporters need not import the run.

use std::sync::Arc;
use std::time::Duration;

use crate::exit_code::Outcome;
use crate::report::json::RunStatus;
use crate::report::sink::ReportSink;
use crate::scenario::{HubFacts, Record, Verdict};
use crate::session::client::Contact;
use crate::session::ledger;

/// Every hub of the run, after it ended.
pub struct RunReport {
    pub hubs: Vec<HubReport>,
    /// The first Ctrl-C/SIGTERM, if the run was interrupted.
    pub interrupted: Option<crate::safety::teardown::Signal>,
    /// `--list` only: nothing ran.
    pub listed_only: bool,
    pub elapsed: Duration,
    /// The report files, rewritten while the run goes on; the caller
    /// writes them a last time with the exit code ([`ReportSink::finish`]).
    pub reports: Option<Arc<ReportSink>>,
    /// The connection gate's verdict (`None` when nothing ran).
    pub connections: Option<ledger::Verdict>,
    /// The harness itself failed after the run began (stdout closed, a hub
    /// thread panicked): the run ended early and says so in every report.
    pub harness_error: Option<String>,
    /// `--repeat`/`--repeat-for`: every cycle and the trend check.
    pub soak: Option<crate::report::soak_record::SoakReport>,
}

impl RunReport {
    pub fn outcome(&self) -> Outcome {
        let closed = self.interrupted == Some(crate::safety::teardown::Signal::OutputClosed);
        let o = Outcome {
            interrupted: self.interrupted.is_some() && !closed,
            output_closed: closed,
            leak: self.connections.as_ref().is_some_and(|v| v.failed())
                || self.soak.as_ref().is_some_and(|s| s.leaked()),
            ..Outcome::default()
        };
        self.hubs.iter().fold(o, |o, h| o.merge(h.outcome()))
    }

    /// The exit code: the outcome's, and at least 1 when the harness itself
    /// failed after the run began.
    pub fn exit_code(&self) -> i32 {
        let code = self.outcome().exit_code();
        if self.harness_error.is_some() {
            code.max(crate::exit_code::SCENARIO_FAILED)
        } else {
            code
        }
    }

    /// How the run ended, for the reports.
    pub fn status(&self) -> RunStatus {
        if self.harness_error.is_some() {
            RunStatus::Error
        } else if self.interrupted.is_some() {
            RunStatus::Interrupted
        } else {
            RunStatus::Finished
        }
    }
}

/// One hub's part of the run.
pub struct HubReport {
    /// The name the hub goes by in this run's result lines, `--list` and
    /// the summary ([`crate::scenario::facts::display_name`], made unique).
    pub shown: String,
    /// `HOST:PORT`, the label in messages.
    pub label: String,
    /// `http://HOST:PORT`.
    pub base_url: String,
    /// `device` or `simulator (profile NAME)`.
    pub source: String,
    pub facts: HubFacts,
    /// One per selected scenario, in plan order.
    pub records: Vec<Record>,
    pub contact: Contact,
    /// What the simulator saw, for a simulated hub.
    pub sim_note: Option<String>,
    /// The run-level cleanup of whatever the scenarios left owed (after an
    /// interruption, error or panic); `None` when nothing was owed.
    pub undo: Option<crate::safety::teardown::HubUndo>,
    /// Wall-clock time of the hub's thread: every scenario, interrupted
    /// ones included, and the cleanup.
    pub elapsed: Duration,
}

impl HubReport {
    pub fn outcome(&self) -> Outcome {
        Outcome {
            failed: self
                .records
                .iter()
                .any(|r| matches!(r.verdict, Verdict::Fail(_))),
            no_hub: matches!(self.contact, Contact::Unreachable(_)),
            // A scenario's failed cleanup counts unless the run-level
            // cleanup afterwards verified everything owed undone.
            hub_modified: match &self.undo {
                Some(u) if !u.verified() => true,
                Some(_) => false,
                None => self
                    .records
                    .iter()
                    .flat_map(|r| &r.cleanup)
                    .any(|c| !c.verified),
            },
            ..Outcome::default()
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
}
