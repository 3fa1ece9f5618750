//! The end of a run: the session closed and the connection gate applied
//! (every connection the session opened must close), then the simulated
//! hubs stopped, saying what they saw.

use std::time::Duration;

use crate::report::model::HubReport;
use crate::report::sink::ReportSink;
use crate::session::ledger::Verdict;

use super::targets::{Session, SimHub};
use super::ConnConfig;

/// Close the session: the last client handle goes, and its connection
/// tasks end on the still-running runtime. The gate then waits, with a
/// deadline, until the socket table shows every connection closed; one
/// still open is a leak. Only then does the runtime shut down (which
/// would close any socket a task still held, hiding the leak), bounded
/// so a stuck resolver cannot hang the exit.
pub(super) fn close_session(session: Session, conn: &ConnConfig, sink: &ReportSink) -> Verdict {
    let Session {
        http,
        ledger,
        runtime,
        ..
    } = session;
    drop(http);
    let connections = runtime.block_on(ledger.settle(conn.close_timeout));
    sink.set_ledger(&connections);
    runtime.shutdown_timeout(Duration::from_secs(5));
    connections
}

/// Stop the simulated hubs, last: the harness's side is closed by now.
/// Each hub's report gets its simulator's note.
pub(super) fn stop_sims(reports: &mut [HubReport], sims: Vec<Option<SimHub>>) {
    for (rep, sim) in reports.iter_mut().zip(sims) {
        if let Some(sim) = sim {
            rep.sim_note = Some(sim.stop());
        }
    }
}
