//! Where the reports of a run go while it runs: the JSON record, the JUnit
//! file and the HTML report are rewritten (atomically) while the run goes
//! on, by a writer thread at most once a second (`writer`), and once more
//! on every way the run can end (normal end, failure, first and second
//! signal, a broken output pipe, a harness error), so a failed,
//! interrupted or killed run still leaves them, complete up to its last
//! rewrite, with the final status, exit code, ledger and each hub's cleanup
//! outcome. The JSON event stream (`--format json`) is fed from here too.
//! Converts the run's scenario records into the report model
//! (`convert`) and folds each hub's cleanup into its outcome (`cleanup`).
//! Uses `scenario`, `measurement`, `teardown` (read only).

mod cleanup;
mod convert;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::json::{
    CleanupRecord, HubIdentity, HubRecord, IncidentRecord, ObligationKind, ObligationRecord,
    RunRecord, RunStatus,
};
use super::stream::EventStream;
use super::ReportError;
use crate::plan::Plan;
use crate::safety::redact::Redactor;
use crate::safety::teardown::{HubDebt, HubUndo, Obligations};
use crate::scenario::{HubFacts, Record, Scenario, Verdict};
use crate::session::client;
use cleanup::{cleanup_of, HubState};
use convert::{ledger_json, ms, scenario_record, update_identity};

/// The report files asked for on the command line, and the context every
/// report carries.
#[derive(Debug, Clone, Default)]
pub struct ReportPaths {
    /// `--report-json FILE`
    pub json: Option<PathBuf>,
    /// `--junit FILE`
    pub junit: Option<PathBuf>,
    /// `--report-html FILE`
    pub html: Option<PathBuf>,
    /// `--station NAME` (or `VEGEHUB_HARNESS_STATION`).
    pub station: Option<String>,
    /// `--operator NAME` (or `VEGEHUB_HARNESS_OPERATOR`).
    pub operator: Option<String>,
}

impl ReportPaths {
    pub fn any(&self) -> bool {
        self.json.is_some() || self.junit.is_some() || self.html.is_some()
    }

    /// Refuse, before anything is sent, a report that could not be written,
    /// and a station or operator name that is empty or has control
    /// characters.
    pub fn check(&self) -> Result<(), String> {
        if let Some(p) = &self.json {
            super::check_report_path("--report-json", p)?;
        }
        if let Some(p) = &self.junit {
            super::check_report_path("--junit", p)?;
        }
        if let Some(p) = &self.html {
            super::check_report_path("--report-html", p)?;
        }
        let given = [
            ("--report-json", &self.json),
            ("--junit", &self.junit),
            ("--report-html", &self.html),
        ];
        for (i, (fa, a)) in given.iter().enumerate() {
            for (fb, b) in &given[i + 1..] {
                if let (Some(a), Some(b)) = (a, b) {
                    let same = match (super::resolved(a), super::resolved(b)) {
                        (Some(x), Some(y)) => x == y,
                        _ => a == b,
                    };
                    if same {
                        return Err(format!(
                            "{fa} and {fb} both name {}: give two files",
                            a.display()
                        ));
                    }
                }
            }
        }
        // Either may come from its variable: the message names both.
        for (flag, v) in [
            ("--station (or VEGEHUB_HARNESS_STATION)", &self.station),
            ("--operator (or VEGEHUB_HARNESS_OPERATOR)", &self.operator),
        ] {
            if let Some(v) = v {
                if v.trim().is_empty() {
                    return Err(format!("{flag}: empty name"));
                }
                if v.chars().any(char::is_control) || v.chars().count() > 200 {
                    return Err(format!(
                        "{flag} {v:?}: use at most 200 printable characters"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The run's report files and the record they are written from.
pub struct ReportSink {
    paths: ReportPaths,
    redactor: Redactor,
    record: Mutex<RunRecord>,
    hubs: Mutex<Vec<HubState>>,
    started: Instant,
    started_at: DateTime<Utc>,
    obligations: Mutex<Option<Obligations>>,
    stream: Option<EventStream>,
    /// The first write error, reported once at the end.
    failed: Mutex<Option<ReportError>>,
    /// When the writer thread rewrites the files next.
    pace: Arc<writer::Pace>,
    /// Held while the files are written: the final write waits for a
    /// rewrite under way, and no rewrite of the run under way follows it.
    writing: Mutex<()>,
}

/// The run's sink, for the exits that do not return through the run (a
/// second signal exits the process from the signal task).
static ACTIVE: Mutex<Option<Weak<ReportSink>>> = Mutex::new(None);

impl ReportSink {
    pub fn new(paths: ReportPaths, plan: &Plan, redactor: Redactor) -> ReportSink {
        let started_at = Utc::now();
        let mut record = RunRecord::start(plan, started_at);
        record.station = paths.station.clone();
        record.operator = paths.operator.clone();
        ReportSink {
            paths,
            redactor,
            record: Mutex::new(record),
            hubs: Mutex::default(),
            started: Instant::now(),
            started_at,
            obligations: Mutex::new(None),
            stream: None,
            failed: Mutex::new(None),
            pace: Arc::new(writer::Pace::new(writer::INTERVAL)),
            writing: Mutex::new(()),
        }
    }

    /// Also write the JSON event stream (`--format json`) to stdout.
    pub fn with_stream(mut self, on: bool) -> ReportSink {
        self.stream = on.then(EventStream::stdout);
        self
    }

    /// Write the stream to `out` instead (tests).
    pub fn with_stream_to(mut self, out: Box<dyn std::io::Write + Send>) -> ReportSink {
        self.stream = Some(EventStream::new(out));
        self
    }

    /// Make this the sink a second signal finishes (see [`abort_active`]),
    /// and, when there are files, start the thread that rewrites them while
    /// the run goes on.
    pub fn activate(self: &Arc<Self>) {
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(self));
        if self.paths.any() {
            // Without a thread the files are written at the end only.
            drop(writer::spawn(self));
        }
    }

    /// Read what is still owed on each hub from `obligations` at every write.
    pub fn watch(&self, obligations: &Obligations) {
        *self.obligations.lock().unwrap_or_else(|p| p.into_inner()) = Some(obligations.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunRecord> {
        // A panic elsewhere while holding the lock leaves a usable record.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hub_states(&self) -> std::sync::MutexGuard<'_, Vec<HubState>> {
        self.hubs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a hub before its first scenario; returns its index. A
    /// discovered hub brings its addresses and TXT properties.
    pub fn add_hub(
        &self,
        target: &str,
        facts: &HubFacts,
        found: Option<&crate::discovery::DiscoveredHub>,
    ) -> usize {
        let mut identity = HubIdentity::default();
        update_identity(&mut identity, target, facts);
        if let Some(h) = found {
            identity.addresses = h.addresses.iter().map(|a| a.display()).collect();
            identity.txt = h.txt.iter().cloned().collect();
        }
        // The hub states before the record, in the order every refresh
        // takes them (the writer thread may be refreshing meanwhile).
        let mut states = self.hub_states();
        let mut r = self.lock();
        r.hubs.push(HubRecord {
            target: target.to_string(),
            identity,
            duration_ms: None,
            scenarios: Vec::new(),
            cleanup: CleanupRecord::default(),
        });
        states.push(HubState::default());
        r.hubs.len() - 1
    }

    /// Every hub is registered: announce the run on the stream.
    pub fn start(&self, scenarios: usize) {
        if let Some(s) = &self.stream {
            s.run_started(&self.lock(), scenarios);
        }
    }

    /// A scenario of hub `hub` starts, in cycle `cycle` of the run: under
    /// way until its record comes (or, in a soak's later cycle, it is not
    /// kept). The stream announces the first cycle's.
    pub fn scenario_started(&self, hub: usize, scenario: Scenario, cycle: u32) {
        self.hub_states()[hub].running = Some((scenario, cycle, Instant::now()));
        if let (Some(s), 1) = (&self.stream, cycle) {
            let r = self.lock();
            s.scenario_started(&r.hubs[hub], scenario.name());
        }
    }

    /// A scenario of a soak's later cycle ended and is not kept: no longer
    /// under way.
    pub fn scenario_not_kept(&self, hub: usize) {
        self.hub_states()[hub].running = None;
    }

    /// A scenario of hub `hub` ended: record it (the writer rewrites the
    /// files when due). Once the run has ended (a second signal cut it
    /// short) nothing more is recorded: the scenario is in the record as
    /// interrupted already.
    pub fn scenario_done(&self, hub: usize, facts: &HubFacts, record: &Record) {
        let incidents = record.incidents.iter().map(|i| self.incident(i)).collect();
        let scenario = scenario_record(record, &self.redactor).with_incidents(incidents);
        {
            // Held until the record has the scenario: a second signal sees
            // it either under way or recorded, never neither.
            let mut states = self.hub_states();
            if self.pace.is_closed() {
                return;
            }
            states[hub].running = None;
            states[hub]
                .steps
                .extend(record.cleanup.iter().map(|c| ObligationRecord {
                    what: c.what.clone(),
                    kind: if c.what.contains("config") {
                        ObligationKind::Config
                    } else {
                        ObligationKind::Actuators
                    },
                    verified: c.verified,
                    detail: Some(self.redactor.scrub(&c.detail)),
                    scenario: Some(record.scenario.name().to_owned()),
                    restore_command: None,
                }));
            let mut r = self.lock();
            let h = &mut r.hubs[hub];
            update_identity(&mut h.identity, &h.target, facts);
            if let Some(s) = &self.stream {
                s.scenario_done(h, &scenario);
            }
            h.scenarios.push(scenario);
        }
        self.pace.changed();
    }

    /// The run is cut short (a second signal): it ends here, and each
    /// scenario under way is recorded as interrupted with its time so far
    /// (its hub's thread will not record it: the process exits).
    fn record_unfinished(&self, reason: &str) {
        let mut states = self.hub_states();
        self.pace.close();
        let mut r = self.lock();
        for (hub, st) in states.iter_mut().enumerate() {
            let Some((scenario, cycle, since)) = st.running.take() else {
                continue;
            };
            let message = match cycle {
                1 => format!("interrupted: {reason}"),
                n => format!("cycle {n}: interrupted: {reason}"),
            };
            let mut record = Record::not_run(scenario, Verdict::Fail(message));
            record.duration = since.elapsed();
            let scenario = scenario_record(&record, &self.redactor);
            let h = &mut r.hubs[hub];
            if let Some(s) = &self.stream {
                s.scenario_done(h, &scenario);
            }
            h.scenarios.push(scenario);
        }
    }

    /// Hub `hub`'s thread ended after `elapsed`, with the run-level cleanup
    /// of whatever its scenarios left owed (`None`: nothing was).
    pub fn hub_done(&self, hub: usize, elapsed: Duration, undo: Option<&HubUndo>) {
        {
            let mut states = self.hub_states();
            states[hub].undo = undo.cloned();
            states[hub].done = true;
        }
        {
            let mut r = self.lock();
            r.hubs[hub].duration_ms = Some(ms(elapsed));
        }
        // The stream's event carries this hub's cleanup outcome (the files
        // have all of them brought up to date before each write).
        if let Some(s) = &self.stream {
            self.refresh_hub(hub, RunStatus::Running);
            s.hub_done(&self.lock().hubs[hub]);
        }
        self.pace.changed();
    }

    /// The run ended (any way but a second signal): stamp it and write the
    /// files one last time. Returns the first error any write met.
    pub fn finish(
        &self,
        status: RunStatus,
        exit_code: i32,
        error: Option<String>,
    ) -> Result<(), ReportError> {
        self.finish_at(status, exit_code, error);
        match self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The second signal: the scenarios under way recorded as interrupted,
    /// then the files written a last time (status `aborted`).
    fn abort(&self, reason: &str, exit_code: i32) {
        self.record_unfinished(reason);
        self.finish_at(RunStatus::Aborted, exit_code, Some(reason.to_owned()));
    }

    fn finish_at(&self, status: RunStatus, exit_code: i32, error: Option<String>) {
        self.pace.close();
        {
            let mut r = self.lock();
            r.error = error.map(|e| self.redactor.scrub(&e));
            r.finish(status, exit_code, self.started_at + self.elapsed_chrono());
        }
        {
            let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
            self.write(status);
        }
        if let Some(s) = &self.stream {
            s.run_finished(&self.lock());
        }
    }

    fn elapsed_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default()
    }

    /// Keep the connection ledger's verdict of the run's session (call
    /// before [`ReportSink::finish`]).
    pub fn set_ledger(&self, verdict: &crate::session::ledger::Verdict) {
        self.lock().ledger = Some(ledger_json(verdict));
    }

    /// Keep the soak's cycles and trend check (call before
    /// [`ReportSink::finish`]).
    pub fn set_soak(&self, soak: &crate::report::soak_record::SoakReport) {
        self.lock().soak = Some(soak.clone());
    }

    /// A copy of the record as it stands.
    pub fn record(&self) -> RunRecord {
        self.lock().clone()
    }

    fn incident(&self, i: &client::Incident) -> IncidentRecord {
        let since = i.at.saturating_duration_since(self.started);
        IncidentRecord {
            kind: i.kind,
            reason: self.redactor.scrub(&i.reason),
            at: super::json::rfc3339(
                self.started_at + chrono::Duration::from_std(since).unwrap_or_default(),
            ),
            at_ms: ms(since),
        }
    }

    /// Recompute each hub's cleanup outcome from what its scenarios undid,
    /// the run-level cleanup and what the registry still says is owed.
    fn refresh(&self, status: RunStatus) {
        let leftovers = self
            .obligations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(Obligations::leftovers);
        let owed: HashMap<&str, &HubDebt> = leftovers
            .iter()
            .flat_map(|l| &l.hubs)
            .map(|(a, d)| (a.as_str(), d))
            .collect();
        let states = self.hub_states();
        let mut r = self.lock();
        for (h, st) in r.hubs.iter_mut().zip(states.iter()) {
            let debt = owed.get(h.target.as_str()).copied();
            h.cleanup = cleanup_of(&h.target, st, debt, status);
        }
        r.tally();
    }

    /// [`ReportSink::refresh`] for hub `hub` alone (the summary is left as
    /// it is).
    fn refresh_hub(&self, hub: usize, status: RunStatus) {
        let target = self.lock().hubs[hub].target.clone();
        let debt = self
            .obligations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|o| o.debt(&target))
            .filter(|d| !d.is_clear());
        let states = self.hub_states();
        let mut r = self.lock();
        r.hubs[hub].cleanup = cleanup_of(&target, &states[hub], debt.as_ref(), status);
    }

    /// The writer thread's rewrite of the run under way; none once the run
    /// ended.
    fn write_progress(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if !self.pace.is_closed() {
            self.write(RunStatus::Running);
        }
    }

    /// Bring the record up to date and write every file (call holding
    /// `writing`).
    fn write(&self, status: RunStatus) {
        self.refresh(status);
        let record = self.record();
        let mut results = Vec::new();
        if let Some(p) = &self.paths.json {
            results.push(record.write(p));
        }
        if let Some(p) = &self.paths.junit {
            results.push(super::junit::write(&record, p));
        }
        if let Some(p) = &self.paths.html {
            results.push(super::html::write(&record, p));
        }
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        for e in results.into_iter().filter_map(Result::err) {
            failed.get_or_insert(e);
        }
    }
}

impl Drop for ReportSink {
    fn drop(&mut self) {
        // The writer thread ends.
        self.pace.close();
    }
}

/// The second signal: the process exits now with `exit_code`. Write the
/// final reports of the active run (status `aborted`, what may be left as
/// unverified obligations with their restore commands) before it does.
pub fn abort_active(reason: &str, exit_code: i32) {
    let sink = ACTIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(Weak::upgrade);
    if let Some(sink) = sink {
        sink.abort(reason, exit_code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ledger::{CloseCheck, ConnRecord, HubUsage, Verdict};
    use std::time::Duration;

    fn verdict(closed: bool) -> Verdict {
        let addr = |p| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        Verdict {
            close_check: CloseCheck::Confirmed {
                mechanism: "the OS socket table".into(),
            },
            sessions: 1,
            connections: vec![ConnRecord {
                session: 1,
                hub: "127.0.0.1:8080".into(),
                local: addr(40000),
                remote: addr(8080),
                scenario: Some("mac".into()),
                last_scenario: Some("setup".into()),
                requests: 12,
                opened_at: Duration::from_millis(5),
                closed_at: closed.then_some(Duration::from_millis(900)),
                last_state: None,
            }],
            unidentified: 0,
            unledgered_requests: 0,
            inbound: vec![],
            strays: vec![],
            hubs: vec![HubUsage {
                hub: "127.0.0.1:8080".into(),
                connections: 1,
                requests: 12,
                peak_open: Some(1),
            }],
            budget: 2,
            waited: Duration::from_millis(100),
        }
    }

    /// Read the JSON record at `path` until `pred` holds for it (the
    /// writer thread renames it into place), or 10 s pass.
    fn wait_record(path: &std::path::Path, pred: impl Fn(&RunRecordJson) -> bool) -> RunRecordJson {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let read = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| serde_json::from_str::<RunRecordJson>(&t).ok());
            match read {
                Some(r) if pred(&r) => return r,
                r if Instant::now() >= end => panic!("never held; last read: {r:?}"),
                // A bounded poll: nothing announces the writer's rename.
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    type RunRecordJson = serde_json::Value;

    fn scenarios(r: &RunRecordJson) -> usize {
        r["hubs"][0]["scenarios"].as_array().map_or(0, Vec::len)
    }

    #[test]
    fn the_writer_thread_rewrites_the_files_while_the_run_goes_on_and_never_after_the_end() {
        use crate::scenario::Verdict;
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("run.json");
        let paths = ReportPaths {
            json: Some(json.clone()),
            junit: Some(dir.path().join("run.xml")),
            ..ReportPaths::default()
        };
        let sink = Arc::new(ReportSink::new(
            paths,
            &Plan::builtin_default(),
            Redactor::new(false),
        ));
        sink.activate();
        let facts = HubFacts::default();
        let hub = sink.add_hub("127.0.0.1:9", &facts, None);
        // Nothing finished, nothing written.
        assert!(!json.exists());
        // The first scenario is written at once, by the writer.
        let pass = |s| Record::not_run(s, Verdict::Pass);
        sink.scenario_done(hub, &facts, &pass(Scenario::Mac));
        let r = wait_record(&json, |r| scenarios(r) == 1);
        assert_eq!(r["status"], "running");
        assert_eq!(r["hubs"][0]["cleanup"]["status"], "nothing_owed");
        // More, though nothing else happens after them: written when due.
        sink.scenario_done(hub, &facts, &pass(Scenario::Info));
        sink.scenario_done(hub, &facts, &pass(Scenario::ActuatorStatus));
        wait_record(&json, |r| scenarios(r) == 3);
        sink.hub_done(hub, Duration::from_millis(5), None);
        // The end is written at once, whatever the pace.
        sink.finish(RunStatus::Finished, 0, None).unwrap();
        let r = wait_record(&json, |_| true);
        assert_eq!(
            (&r["status"], &r["exit_code"]),
            (&"finished".into(), &0.into())
        );
        assert_eq!(r["hubs"][0]["duration_ms"], 5);
        assert!(dir.path().join("run.xml").exists());
        // A rewrite of the run under way that was due never follows it.
        sink.write_progress();
        assert_eq!(wait_record(&json, |_| true)["status"], "finished");
    }

    /// A sink of the built-in plan that writes no files.
    fn unwritten_sink() -> ReportSink {
        ReportSink::new(
            ReportPaths::default(),
            &Plan::builtin_default(),
            Redactor::new(false),
        )
    }

    #[test]
    fn a_second_signal_records_the_scenario_under_way_as_interrupted_once() {
        use crate::report::json::Outcome;
        use crate::scenario::Verdict;
        let sink = unwritten_sink();
        let facts = HubFacts::default();
        let (a, b) = (
            sink.add_hub("127.0.0.1:9", &facts, None),
            sink.add_hub("127.0.0.1:10", &facts, None),
        );
        // Hub a: info under way in cycle 2. Hub b: mac recorded in cycle 1,
        // its cycle 2 not kept: nothing of b's is under way.
        sink.scenario_started(a, Scenario::Info, 2);
        sink.scenario_started(b, Scenario::Mac, 1);
        sink.scenario_done(b, &facts, &Record::not_run(Scenario::Mac, Verdict::Pass));
        sink.scenario_started(b, Scenario::Mac, 2);
        sink.scenario_not_kept(b);
        sink.abort("SIGTERM received again", 5);
        // The hub thread's own record comes after the end: not added.
        let late = Record::not_run(Scenario::Info, Verdict::Fail("interrupted".into()));
        sink.scenario_done(a, &facts, &late);
        let r = sink.record();
        assert_eq!(r.status, RunStatus::Aborted);
        let got: Vec<Vec<(&str, Outcome, Option<&str>)>> = r
            .hubs
            .iter()
            .map(|h| {
                h.scenarios
                    .iter()
                    .map(|s| (s.name.as_str(), s.outcome, s.message.as_deref()))
                    .collect()
            })
            .collect();
        assert_eq!(
            got,
            vec![
                vec![(
                    "info",
                    Outcome::Failed,
                    Some("cycle 2: interrupted: SIGTERM received again")
                )],
                vec![("mac", Outcome::Passed, None)],
            ]
        );
    }

    #[test]
    fn ledger_verdict_goes_into_the_record_and_flips_with_a_leak() {
        let sink = unwritten_sink();
        sink.set_ledger(&verdict(true));
        let l = sink.record().ledger.unwrap();
        assert_eq!(l["leaked"], false);
        assert_eq!(l["connections_closed"], 1);
        assert_eq!(l["problems"], serde_json::json!([]));
        sink.set_ledger(&verdict(false));
        let l = sink.record().ledger.unwrap();
        assert_eq!(l["leaked"], true);
        assert_eq!(l["connections_closed"], 0);
        assert!(l["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("connection leak: 127.0.0.1:40000 -> hub 127.0.0.1:8080"));
        assert_eq!(l["hubs"][0]["requests"], 12);
        // The ledger object is what the schema documents.
        let v: serde_json::Value = serde_json::from_str(&sink.record().to_json()).unwrap();
        assert_eq!(crate::report::json::tests::errors(&v), Vec::<String>::new());
    }
}
