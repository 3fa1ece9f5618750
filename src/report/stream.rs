//! The JSON event stream (`--format json`): one JSON object per line on
//! stdout, and nothing else there, for CI tools to follow a run as it goes.
//! Every event names its hub (target, name, MAC as known); run-level events
//! list every hub. Events, in order:
//!
//! - `{"type":"run","event":"started", hubs, scenarios, station, operator, ..}`
//! - `{"type":"scenario","event":"started", hub, scenario}`
//! - `{"type":"scenario","event":"passed"|"failed"|"skipped", hub, scenario,
//!   duration_ms, message, flaky, incidents, measurements}`
//! - `{"type":"hub","event":"finished", hub, duration_ms, passed, failed,
//!   skipped, flaky, cleanup}`
//! - `{"type":"run","event":"finished", status, exit_code, error, duration_ms,
//!   summary, hubs, ledger}`
//!
//! `--list --format json` prints `{"type":"scenario","event":"listed", hub,
//! scenario}` per scenario and hub, then `{"type":"run","event":"listed",
//! count}`. A closed stdout (a reader that went away) stops the stream; the
//! run then ends as on a broken pipe (see `run`).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::json::{HubRecord, Outcome, RunRecord, ScenarioRecord};

/// Where the events go.
pub struct EventStream {
    out: Mutex<Box<dyn Write + Send>>,
    broken: AtomicBool,
}

/// Set once any stream found stdout closed (read by the run to stop).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether the event stream found stdout closed.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

impl EventStream {
    pub fn stdout() -> EventStream {
        EventStream::new(Box::new(std::io::stdout()))
    }

    pub fn new(out: Box<dyn Write + Send>) -> EventStream {
        EventStream {
            out: Mutex::new(out),
            broken: AtomicBool::new(false),
        }
    }

    /// Write one event as one line. A write error (the reader went away)
    /// stops the stream for good, never the process.
    pub fn emit(&self, event: &Value) {
        if self.broken.load(Ordering::SeqCst) {
            return;
        }
        let mut line = super::escape::json_for_terminal(
            serde_json::to_string(event).expect("events always serialize"),
        );
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            self.broken.store(true, Ordering::SeqCst);
            STDOUT_CLOSED.store(true, Ordering::SeqCst);
        }
    }

    pub fn run_started(&self, r: &RunRecord, scenarios: usize) {
        self.emit(&json!({
            "type": "run",
            "event": "started",
            "harness": r.harness,
            "started_at": r.started_at,
            "station": r.station,
            "operator": r.operator,
            "plan": r.plan.source,
            "scenarios": scenarios,
            "hubs": r.hubs.iter().map(hub).collect::<Vec<_>>(),
        }));
    }

    pub fn scenario_started(&self, h: &HubRecord, scenario: &str) {
        self.emit(&json!({
            "type": "scenario",
            "event": "started",
            "hub": hub(h),
            "scenario": scenario,
        }));
    }

    pub fn scenario_done(&self, h: &HubRecord, s: &ScenarioRecord) {
        let event = match s.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        };
        self.emit(&json!({
            "type": "scenario",
            "event": event,
            "hub": hub(h),
            "scenario": s.name,
            "duration_ms": s.duration_ms,
            "message": s.message,
            "flaky": s.flaky,
            "incidents": s.incidents,
            "measurements": s.measurements,
        }));
    }

    pub fn hub_done(&self, h: &HubRecord) {
        let count = |o: Outcome| h.scenarios.iter().filter(|s| s.outcome == o).count();
        self.emit(&json!({
            "type": "hub",
            "event": "finished",
            "hub": hub(h),
            "duration_ms": h.duration_ms,
            "passed": count(Outcome::Passed),
            "failed": count(Outcome::Failed),
            "skipped": count(Outcome::Skipped),
            "flaky": h.scenarios.iter().filter(|s| s.flaky).count(),
            "cleanup": h.cleanup,
        }));
    }

    pub fn run_finished(&self, r: &RunRecord) {
        self.emit(&json!({
            "type": "run",
            "event": "finished",
            "status": r.status,
            "exit_code": r.exit_code,
            "error": r.error,
            "duration_ms": r.duration_ms,
            "summary": r.summary,
            "hubs": r.hubs.iter().map(|h| json!({
                "hub": hub(h),
                "cleanup": h.cleanup.status,
            })).collect::<Vec<_>>(),
            "ledger": r.ledger,
        }));
    }
}

/// A hub as every event names it.
fn hub(h: &HubRecord) -> Value {
    json!({
        "target": h.target,
        "name": h.identity.name,
        "mac": h.identity.mac,
    })
}

/// [`list`] on stdout; a closed stdout ends the listing quietly.
pub fn print_list(hubs: &[Option<String>], scenarios: &[&str]) {
    let _ = list(&mut std::io::stdout().lock(), hubs, scenarios);
}

/// `--list --format json`: the scenarios per hub (`hubs` as labelled before
/// any contact: addresses or simulator profiles; `None` when hubs are to be
/// discovered).
pub fn list(
    out: &mut dyn Write,
    hubs: &[Option<String>],
    scenarios: &[&str],
) -> std::io::Result<()> {
    let mut n = 0;
    for h in hubs {
        for s in scenarios {
            let line = json!({
                "type": "scenario",
                "event": "listed",
                "hub": {"target": h, "name": null, "mac": null},
                "scenario": s,
            });
            writeln!(out, "{line}")?;
            n += 1;
        }
    }
    writeln!(
        out,
        "{}",
        json!({"type": "run", "event": "listed", "count": n})
    )?;
    out.flush()
}
