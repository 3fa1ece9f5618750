//! Where the report files of a run go while it runs: the JSON record and the
//! JUnit file are rewritten (atomically) after every scenario and once more
//! when the run ends, so a failed, interrupted or killed run still leaves
//! both, complete up to its last scenario. Converts the run's scenario
//! records into the report model. Uses `scenario`, `measurement`.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::Utc;

use super::json::{
    Exchange, HubIdentity, HubRecord, Outcome, RunRecord, RunStatus, ScenarioRecord,
};
use super::ReportError;
use crate::client;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::scenario::{HubFacts, Record, Verdict};

/// The report files asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct ReportPaths {
    /// `--report-json FILE`
    pub json: Option<PathBuf>,
    /// `--junit FILE`
    pub junit: Option<PathBuf>,
}

impl ReportPaths {
    pub fn any(&self) -> bool {
        self.json.is_some() || self.junit.is_some()
    }

    /// Refuse, before anything is sent, a report that could not be written.
    pub fn check(&self) -> Result<(), String> {
        if let Some(p) = &self.json {
            super::check_report_path("--report-json", p)?;
        }
        if let Some(p) = &self.junit {
            super::check_report_path("--junit", p)?;
        }
        if let (Some(a), Some(b)) = (&self.json, &self.junit) {
            let same = a == b
                || matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y);
            if same {
                return Err(format!(
                    "--report-json and --junit both name {}: give two files",
                    a.display()
                ));
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
    /// The first write error, reported once at the end.
    failed: Mutex<Option<ReportError>>,
}

impl ReportSink {
    pub fn new(paths: ReportPaths, plan: &Plan, redactor: Redactor) -> ReportSink {
        ReportSink {
            paths,
            redactor,
            record: Mutex::new(RunRecord::start(plan, Utc::now())),
            failed: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunRecord> {
        // A panic elsewhere while holding the lock leaves a usable record.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
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
            scenarios: Vec::new(),
        });
        r.hubs.len() - 1
    }

    /// A scenario of hub `hub` ended: record it and rewrite the files.
    pub fn scenario_done(&self, hub: usize, facts: &HubFacts, record: &Record) {
        {
            let mut r = self.lock();
            let h = &mut r.hubs[hub];
            update_identity(&mut h.identity, &h.target, facts);
            h.scenarios.push(scenario_record(record, &self.redactor));
        }
        self.write();
    }

    /// The run ended (or was interrupted): stamp it and write the files one
    /// last time. Returns the first error any write met.
    pub fn finish(&self, interrupted: bool, exit_code: i32) -> Result<(), ReportError> {
        let status = if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Finished
        };
        self.lock().finish(status, exit_code, Utc::now());
        self.write();
        match self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Keep the connection ledger's verdict of the run's session (call
    /// before [`ReportSink::finish`]).
    pub fn set_ledger(&self, verdict: &crate::ledger::Verdict) {
        self.lock().ledger = Some(ledger_json(verdict));
    }

    /// A copy of the record as it stands.
    pub fn record(&self) -> RunRecord {
        self.lock().clone()
    }

    fn write(&self) {
        let record = self.record();
        let mut results = Vec::new();
        if let Some(p) = &self.paths.json {
            results.push(record.write(p));
        }
        if let Some(p) = &self.paths.junit {
            results.push(super::junit::write(&record, p));
        }
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        for e in results.into_iter().filter_map(Result::err) {
            failed.get_or_insert(e);
        }
    }
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
            let x = Exchange::new(
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
            at += e.elapsed;
            x
        })
        .collect()
}

/// The ledger's verdict as the record's `ledger` object.
pub fn ledger_json(v: &crate::ledger::Verdict) -> serde_json::Value {
    use crate::ledger::CloseCheck;
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
    use crate::ledger::{CloseCheck, ConnRecord, HubUsage, Verdict};
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
}
