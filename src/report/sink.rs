//! Where the reports of a run go while it runs: the JSON record, the JUnit
//! file and the HTML report are rewritten (atomically) after every scenario
//! and once more on every way the run can end (normal end, failure, first
//! and second signal, a broken output pipe, a harness error), so a failed,
//! interrupted or killed run still leaves them, complete up to its last
//! scenario, with the final status, exit code, ledger and each hub's cleanup
//! outcome. The JSON event stream (`--format json`) is fed from here too.
//! Converts the run's scenario records into the report model. Uses
//! `scenario`, `measurement`, `teardown` (read only).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::json::{
    CleanupRecord, CleanupStatus, Exchange, HubIdentity, HubRecord, IncidentRecord, ObligationKind,
    ObligationRecord, Outcome, RunRecord, RunStatus, ScenarioRecord,
};
use super::stream::EventStream;
use super::ReportError;
use crate::plan::Plan;
use crate::safety::redact::Redactor;
use crate::safety::teardown::{HubUndo, Leftovers, Obligations};
use crate::scenario::{HubFacts, Record, Scenario, Verdict};
use crate::session::client;

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
                    let same = a == b
                        || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
                    if same {
                        return Err(format!(
                            "{fa} and {fb} both name {}: give two files",
                            a.display()
                        ));
                    }
                }
            }
        }
        for (flag, v) in [("--station", &self.station), ("--operator", &self.operator)] {
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

/// Per hub, what the reports need besides the scenario records.
#[derive(Debug, Default)]
struct HubState {
    /// Each scenario's own cleanup steps (all-off, config restored).
    steps: Vec<ObligationRecord>,
    /// The run-level cleanup, when anything was left owed.
    undo: Option<HubUndo>,
    /// The hub's thread has ended.
    done: bool,
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

    /// Make this the sink a second signal finishes (see [`abort_active`]).
    pub fn activate(self: &Arc<Self>) {
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::downgrade(self));
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
        let mut r = self.lock();
        r.hubs.push(HubRecord {
            target: target.to_string(),
            identity,
            duration_ms: None,
            scenarios: Vec::new(),
            cleanup: CleanupRecord::default(),
        });
        self.hub_states().push(HubState::default());
        r.hubs.len() - 1
    }

    /// Every hub is registered: announce the run on the stream.
    pub fn start(&self, scenarios: usize) {
        if let Some(s) = &self.stream {
            s.run_started(&self.lock(), scenarios);
        }
    }

    /// A scenario of hub `hub` starts.
    pub fn scenario_started(&self, hub: usize, scenario: Scenario) {
        if let Some(s) = &self.stream {
            let r = self.lock();
            s.scenario_started(&r.hubs[hub], scenario.name());
        }
    }

    /// A scenario of hub `hub` ended: record it and rewrite the files.
    pub fn scenario_done(&self, hub: usize, facts: &HubFacts, record: &Record) {
        let incidents = record.incidents.iter().map(|i| self.incident(i)).collect();
        let scenario = scenario_record(record, &self.redactor).with_incidents(incidents);
        {
            let mut states = self.hub_states();
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
        }
        {
            let mut r = self.lock();
            let h = &mut r.hubs[hub];
            update_identity(&mut h.identity, &h.target, facts);
            if let Some(s) = &self.stream {
                s.scenario_done(h, &scenario);
            }
            h.scenarios.push(scenario);
        }
        self.write(RunStatus::Running);
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
        // Only a stream or a file reads the cleanup outcomes before the end.
        if self.stream.is_some() || self.paths.any() {
            self.refresh(RunStatus::Running);
        }
        if let Some(s) = &self.stream {
            s.hub_done(&self.lock().hubs[hub]);
        }
        self.write(RunStatus::Running);
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

    fn finish_at(&self, status: RunStatus, exit_code: i32, error: Option<String>) {
        {
            let mut r = self.lock();
            r.error = error.map(|e| self.redactor.scrub(&e));
            r.finish(status, exit_code, self.started_at + self.elapsed_chrono());
        }
        self.write(status);
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
        let states = self.hub_states();
        let mut r = self.lock();
        for (h, st) in r.hubs.iter_mut().zip(states.iter()) {
            h.cleanup = cleanup_of(&h.target, st, leftovers.as_ref(), status);
        }
        r.tally();
    }

    fn write(&self, status: RunStatus) {
        // No file to rewrite while the run is under way: the record is
        // brought up to date when the run ends. (Rebuilding and copying it
        // after every scenario costs time in hubs x scenarios x hubs.)
        if status == RunStatus::Running && !self.paths.any() {
            return;
        }
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
        sink.finish_at(RunStatus::Aborted, exit_code, Some(reason.to_owned()));
    }
}

/// The cleanup outcome of the hub at `target`.
fn cleanup_of(
    target: &str,
    st: &HubState,
    leftovers: Option<&Leftovers>,
    status: RunStatus,
) -> CleanupRecord {
    let mut obligations = st.steps.clone();
    if let Some(u) = &st.undo {
        let slots = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        let errors = (!u.errors.is_empty()).then(|| u.errors.join("; "));
        if !u.slots_off.is_empty() {
            obligations.push(run_step(
                format!("switch actuator slot(s) {} off", slots(&u.slots_off)),
                ObligationKind::Actuators,
                true,
                Some("every slot reads off".into()),
                None,
            ));
        }
        if !u.slots_left.is_empty() {
            obligations.push(run_step(
                format!("switch actuator slot(s) {} off", slots(&u.slots_left)),
                ObligationKind::Actuators,
                false,
                errors.clone(),
                None,
            ));
        }
        if let Some(b) = &u.config_restored {
            obligations.push(run_step(
                format!("restore config from {}", b.display()),
                ObligationKind::Config,
                true,
                Some("read back deep-equal to the original".into()),
                None,
            ));
        }
        if let Some(b) = &u.config_left {
            obligations.push(run_step(
                format!("restore config from {}", b.display()),
                ObligationKind::Config,
                false,
                errors,
                Some(restore_command(&b.display().to_string(), target)),
            ));
        }
    } else if let Some((_, debt)) = leftovers.and_then(|l| l.hubs.iter().find(|(a, _)| a == target))
    {
        // Owed and not (yet) undone by the run's cleanup: while the run
        // goes on, or after a second signal cut cleanup short.
        if !debt.slots.is_empty() {
            let slots: Vec<String> = debt.slots.iter().map(u32::to_string).collect();
            obligations.push(run_step(
                format!("switch actuator slot(s) {} off", slots.join(", ")),
                ObligationKind::Actuators,
                false,
                Some(
                    "may be on; each switches itself off when its device-side duration ends".into(),
                ),
                None,
            ));
        }
        if let Some(c) = &debt.config {
            let path = c.backup.display().to_string();
            obligations.push(run_step(
                format!("restore config from {path}"),
                ObligationKind::Config,
                false,
                Some("config may be modified".into()),
                Some(restore_command(&path, target)),
            ));
        }
    }
    let unverified = match &st.undo {
        // The run's cleanup settles what scenarios left: it decides.
        Some(u) => !u.verified(),
        None => obligations.iter().any(|o| !o.verified),
    };
    let owed_now = leftovers.is_some_and(|l| l.hubs.iter().any(|(a, _)| a == target));
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

/// The restore command has one home, beside the obligations it undoes.
pub use crate::safety::teardown::restore_command;

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

/// Fill in what the run has learnt; addresses default to the one the hub
/// was reached at (discovery may have given all of them).
fn update_identity(id: &mut HubIdentity, target: &str, facts: &HubFacts) {
    if facts.name.is_some() {
        id.name = facts.name.clone();
    }
    if let Some(m) = &facts.mac {
        id.mac = Some(m.as_str().to_string());
    }
    if let Some(i) = facts.info.known() {
        id.firmware = Some(i.hub.version.clone());
    }
    if id.addresses.is_empty() {
        let host = target
            .rsplit_once(':')
            .map_or(target, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        id.addresses.push(host.to_string());
    }
}

/// The report form of one scenario's record.
pub fn scenario_record(record: &Record, redactor: &Redactor) -> ScenarioRecord {
    let (outcome, message) = match &record.verdict {
        Verdict::Pass => (Outcome::Passed, None),
        Verdict::Fail(m) => (Outcome::Failed, Some(redactor.scrub(m))),
        Verdict::Skip(m) => (Outcome::Skipped, Some(redactor.scrub(m))),
    };
    let exchanges = if outcome == Outcome::Failed {
        exchanges(&record.exchanges, redactor)
    } else {
        Vec::new()
    };
    ScenarioRecord::new(
        record.scenario.name(),
        outcome,
        record.duration,
        message,
        record.measurements.clone(),
        exchanges,
    )
}

/// The client's exchanges in report form. The client keeps durations, not
/// start times; a scenario's exchanges run one after another, so each starts
/// where the previous ended.
fn exchanges(list: &[client::Exchange], redactor: &Redactor) -> Vec<Exchange> {
    // Secrets a hub sent (a config read) are hidden wherever they are quoted.
    for e in list {
        if let Some(v) = e
            .response_body
            .as_deref()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        {
            redactor.learn(&v);
        }
    }
    let mut at = std::time::Duration::ZERO;
    list.iter()
        .map(|e| {
            let request = e
                .request_body
                .as_ref()
                .map(|b| serde_json::to_vec(b).unwrap_or_default());
            let mut x = Exchange::new(
                &e.method,
                &e.path,
                e.status,
                e.error.as_ref().map(|m| redactor.scrub(m)),
                at,
                e.elapsed,
                request.as_deref(),
                e.response_body.as_deref().map(str::as_bytes),
                redactor,
            );
            if x.response_body.is_none() {
                // Too long, not UTF-8 or cut at the answer limit: the
                // client kept only its length and hash.
                x.response_body = e.response_summary.clone().map(serde_json::Value::String);
            }
            at += e.elapsed;
            x
        })
        .collect()
}

/// The ledger's verdict as the record's `ledger` object.
pub fn ledger_json(v: &crate::session::ledger::Verdict) -> serde_json::Value {
    use crate::session::ledger::CloseCheck;
    let (confirmed, how) = match &v.close_check {
        CloseCheck::Confirmed { mechanism } => (true, mechanism.clone()),
        CloseCheck::Unconfirmed { reason } => (false, reason.clone()),
    };
    serde_json::json!({
        "sessions": v.sessions,
        "connections_opened": v.opened(),
        "connections_closed": v.closed(),
        "closes_confirmed": confirmed,
        "close_check": how,
        "leaked": v.leaked(),
        "problems": v.problems(),
        "budget": v.budget,
        "waited_ms": u64::try_from(v.waited.as_millis()).unwrap_or(u64::MAX),
        "receiver_inbound": v.inbound.iter().map(|i| serde_json::json!({
            "hub": i.hub,
            "receiver": i.receiver,
            "connections": i.connections,
        })).collect::<Vec<_>>(),
        "hubs": v.hubs.iter().map(|h| serde_json::json!({
            "hub": h.hub,
            "connections": h.connections,
            "requests": h.requests,
            "peak_open": h.peak_open,
        })).collect::<Vec<_>>(),
    })
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

    #[test]
    fn ledger_verdict_goes_into_the_record_and_flips_with_a_leak() {
        let sink = ReportSink::new(
            ReportPaths::default(),
            &Plan::builtin_default(),
            Redactor::new(false),
        );
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

    #[test]
    fn cleanup_outcome_follows_what_is_owed_and_names_the_restore_command() {
        use crate::safety::teardown::{HubUndo, Obligations};
        let o = Obligations::new(crate::session::actuator_limit::MaxOn::default());
        let hub = "127.0.0.1:8080";
        o.slot_may_be_on(hub, 0);
        o.config_may_change(hub, "{}".into(), "/b/it's.json".into());
        let st = HubState::default();
        // Mid-run: owed, pending.
        let c = cleanup_of(hub, &st, Some(&o.leftovers()), RunStatus::Running);
        assert_eq!(c.status, CleanupStatus::Pending);
        // After a second signal: the same debts, left modified, with the
        // command the console prints.
        let c = cleanup_of(hub, &st, Some(&o.leftovers()), RunStatus::Aborted);
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
        };
        let c = cleanup_of(hub, &st, Some(&o.leftovers()), RunStatus::Interrupted);
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
