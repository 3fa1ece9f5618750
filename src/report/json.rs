//! The JSON run record (`--report-json`): one document per run with the
//! harness version, times, the plan, and per hub its identity and each
//! scenario's outcome, measurements and, for failed scenarios, the HTTP
//! exchanges with secrets redacted. Its schema is
//! `ci/run-record.schema.json`; a test validates records against it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::plan::Plan;
use crate::safety::redact::{Redactor, REDACTED, TEST_VALUE_PREFIX};
use crate::scenario::measurement::MeasurementRecord;

/// Bumped when a field changes meaning or disappears; additions keep it.
pub const RECORD_VERSION: u32 = 1;
/// Longest body kept in a record; the rest is cut (and says so).
const MAX_BODY_CHARS: usize = 16 * 1024;

/// One run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub record_version: u32,
    pub harness: Harness,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// `None` while the run is going on.
    pub finished_at: Option<String>,
    pub status: RunStatus,
    /// The process exit code, once known.
    pub exit_code: Option<i32>,
    /// What ended the run early on the harness's side (status `error`), or
    /// the reason of an `aborted` run.
    pub error: Option<String>,
    /// Wall-clock time of the whole run, once it ended.
    pub duration_ms: Option<u64>,
    /// The test station and operator (`--station`, `--operator`).
    pub station: Option<String>,
    pub operator: Option<String>,
    /// Counts over every hub, the same the console, JUnit and HTML show.
    pub summary: Summary,
    pub plan: PlanRecord,
    pub hubs: Vec<HubRecord>,
    /// The connection ledger's summary for the run's session, when kept.
    pub ledger: Option<Value>,
    /// `--repeat`/`--repeat-for` only: every cycle and the trend check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::report::soak_record::SoakReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Harness {
    pub name: &'static str,
    pub version: &'static str,
}

/// Where a run stands; a record written while it runs says `running`, so a
/// record left by a killed process is recognisable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Every selected scenario ran (whatever their outcome).
    Finished,
    /// A first Ctrl-C/SIGTERM stopped the run; cleanup ran.
    Interrupted,
    /// A second signal: the process exited at once, cleanup not finished.
    Aborted,
    /// The harness itself failed after the run began (a broken output pipe,
    /// a harness bug); `error` says what.
    Error,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Aborted => "aborted",
            RunStatus::Error => "error",
        }
    }
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub hubs: usize,
    pub scenarios: usize,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Passed only after a retry, reconnect or reboot (counted in `passed` too).
    pub flaky: usize,
    /// Hubs whose cleanup could not be verified.
    pub hubs_left_modified: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanRecord {
    /// The plan file, or `scenarios/default.json (built in)`.
    pub source: String,
    pub description: Option<String>,
    /// Scenario names in plan order.
    pub scenarios: Vec<String>,
    /// The plan document as written.
    pub document: Value,
}

/// One hub and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct HubRecord {
    /// How the hub was addressed: `HOST:PORT`, a discovered instance, or the
    /// simulator profile.
    pub target: String,
    pub identity: HubIdentity,
    /// Wall-clock time from the hub's first scenario to the end of its
    /// cleanup (`null` while it runs).
    pub duration_ms: Option<u64>,
    pub scenarios: Vec<ScenarioRecord>,
    /// What the run changed on the hub and whether it was verified undone.
    pub cleanup: CleanupRecord,
}

/// A hub's cleanup outcome: every obligation the run took on (a slot that
/// may be on, a config that may be changed) and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CleanupRecord {
    pub status: CleanupStatus,
    pub obligations: Vec<ObligationRecord>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanupStatus {
    /// Nothing was changed on the hub.
    #[default]
    NothingOwed,
    /// Everything changed was verified undone.
    Verified,
    /// The run is still going and something is owed.
    Pending,
    /// Something may be left modified: see the obligations' restore commands.
    LeftModified,
}

impl CleanupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupStatus::NothingOwed => "nothing_owed",
            CleanupStatus::Verified => "verified",
            CleanupStatus::Pending => "pending",
            CleanupStatus::LeftModified => "left_modified",
        }
    }
}

/// One thing the run changed and owed undoing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObligationRecord {
    /// `all actuators off`, `switch actuator slot(s) 0 off`, `restore config from FILE`.
    pub what: String,
    pub kind: ObligationKind,
    /// Verified undone by reading the hub back.
    pub verified: bool,
    /// How it was verified, or why it could not be.
    pub detail: Option<String>,
    /// The scenario that undid it, or `null` for the run's own cleanup.
    pub scenario: Option<String>,
    /// The command that puts the original config back, when one is owed.
    pub restore_command: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObligationKind {
    Actuators,
    Config,
}

/// What is known about who a hub is. Fields stay `None` until a scenario
/// (or discovery) learns them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HubIdentity {
    pub name: Option<String>,
    /// 12 upper-case hex digits.
    pub mac: Option<String>,
    pub firmware: Option<String>,
    pub addresses: Vec<String>,
    /// mDNS TXT properties, when the hub was discovered.
    pub txt: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRecord {
    pub name: String,
    pub outcome: Outcome,
    pub duration_ms: u64,
    /// The failure message, or the reason of a skip.
    pub message: Option<String>,
    pub measurements: Vec<MeasurementRecord>,
    /// Only for failed scenarios: the HTTP exchanges they made.
    pub exchanges: Vec<Exchange>,
    /// Passed, but only after a retry, reconnect or reboot.
    pub flaky: bool,
    /// Every retry, reconnect and detected reboot, in order.
    pub incidents: Vec<IncidentRecord>,
}

/// A retry, reconnect or detected reboot during a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentRecord {
    pub kind: crate::session::client::IncidentKind,
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// Milliseconds from the start of the run.
    pub at_ms: u64,
}

impl IncidentRecord {
    /// The kind as the JSON record spells it (`retry`, `reconnect`, ...).
    pub fn kind_name(&self) -> String {
        serde_json::to_value(self.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

impl ScenarioRecord {
    /// A scenario's record. Exchanges are kept only when it failed: they are
    /// there to diagnose failures, and passing runs stay small.
    pub fn new(
        name: impl Into<String>,
        outcome: Outcome,
        duration: Duration,
        message: Option<String>,
        measurements: Vec<MeasurementRecord>,
        exchanges: Vec<Exchange>,
    ) -> ScenarioRecord {
        ScenarioRecord {
            name: name.into(),
            outcome,
            duration_ms: duration.as_millis().try_into().unwrap_or(u64::MAX),
            message,
            measurements,
            exchanges: if outcome == Outcome::Failed {
                exchanges
            } else {
                Vec::new()
            },
            flaky: false,
            incidents: Vec::new(),
        }
    }

    /// Add the scenario's incidents; a passed scenario with any is flaky.
    pub fn with_incidents(mut self, incidents: Vec<IncidentRecord>) -> ScenarioRecord {
        self.flaky = self.outcome == Outcome::Passed && !incidents.is_empty();
        self.incidents = incidents;
        self
    }
}

/// One HTTP request and its answer (or the error instead of one).
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// `None` when no answer came (timeout, connection error).
    pub status: Option<u16>,
    pub error: Option<String>,
    /// Milliseconds from the start of the scenario to the request.
    pub at_ms: u64,
    pub duration_ms: u64,
    pub request_body: Option<Value>,
    pub response_body: Option<Value>,
}

impl Exchange {
    /// Record an exchange; bodies are parsed as JSON when they are JSON,
    /// redacted (unless `--show-secrets`), and cut to a bounded length.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        method: &str,
        path: &str,
        status: Option<u16>,
        error: Option<String>,
        at: Duration,
        duration: Duration,
        request_body: Option<&[u8]>,
        response_body: Option<&[u8]>,
        redactor: &Redactor,
    ) -> Exchange {
        let ms = |d: Duration| d.as_millis().try_into().unwrap_or(u64::MAX);
        Exchange {
            method: method.to_string(),
            path: path.to_string(),
            status,
            error,
            at_ms: ms(at),
            duration_ms: ms(duration),
            request_body: request_body.map(|b| body(b, redactor)),
            response_body: response_body.map(|b| body(b, redactor)),
        }
    }
}

fn body(bytes: &[u8], redactor: &Redactor) -> Value {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => redact_body(&v, redactor),
        // Never recorded raw: an unparseable body may hold anything
        // (a cut-off config with its keys); its length and hash only.
        Err(_) if !redactor.shows_secrets() => Value::String(crate::session::client::opaque(bytes)),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let mut cut: String = text.chars().take(MAX_BODY_CHARS).collect();
            if cut.len() < text.len() {
                cut.push_str("…[cut]");
            }
            Value::String(cut)
        }
    }
}

/// Hide secrets in a recorded JSON body: every secret-named field (see
/// `crate::safety::redact`), and the path of any URL, since webhook URLs carry their
/// secret in the path. The harness's own test values stay readable.
fn redact_body(v: &Value, redactor: &Redactor) -> Value {
    let mut v = redactor.json(v);
    if !redactor.shows_secrets() {
        redact_urls(&mut v);
    }
    v
}

fn redact_urls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    Value::String(s)
                        if k.to_ascii_lowercase().contains("url")
                            && !s.contains(TEST_VALUE_PREFIX) =>
                    {
                        *s = redact_url(s);
                    }
                    _ => redact_urls(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_urls),
        _ => {}
    }
}

/// Keep `scheme://host:port` and replace the rest.
fn redact_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return if s.is_empty() {
            String::new()
        } else {
            REDACTED.into()
        };
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    // A user:password@ part is a secret too.
    let host = host.rsplit('@').next().unwrap_or(host);
    if rest.len() > host.len() || rest.contains('@') {
        format!("{scheme}://{host}/{REDACTED}")
    } else {
        s.to_string()
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl RunRecord {
    /// The record of a run that starts now with `plan`.
    pub fn start(plan: &Plan, started_at: DateTime<Utc>) -> RunRecord {
        RunRecord {
            record_version: RECORD_VERSION,
            harness: Harness {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            started_at: rfc3339(started_at),
            finished_at: None,
            status: RunStatus::Running,
            exit_code: None,
            error: None,
            duration_ms: None,
            station: None,
            operator: None,
            summary: Summary::default(),
            plan: PlanRecord {
                source: plan.source.clone(),
                description: plan.description.clone(),
                scenarios: plan
                    .steps
                    .iter()
                    .map(|s| s.scenario().name().to_string())
                    .collect(),
                document: plan.document.clone(),
            },
            hubs: Vec::new(),
            ledger: None,
            soak: None,
        }
    }

    /// Mark the run ended.
    pub fn finish(&mut self, status: RunStatus, exit_code: i32, finished_at: DateTime<Utc>) {
        self.status = status;
        self.exit_code = Some(exit_code);
        if let Ok(start) = DateTime::parse_from_rfc3339(&self.started_at) {
            let ms = (finished_at - start.with_timezone(&Utc)).num_milliseconds();
            self.duration_ms = Some(u64::try_from(ms).unwrap_or(0));
        }
        self.finished_at = Some(rfc3339(finished_at));
        self.tally();
    }

    /// Recount [`RunRecord::summary`] from the hubs.
    pub fn tally(&mut self) {
        let all = || self.hubs.iter().flat_map(|h| &h.scenarios);
        let count = |o: Outcome| all().filter(|s| s.outcome == o).count();
        self.summary = Summary {
            hubs: self.hubs.len(),
            scenarios: all().count(),
            passed: count(Outcome::Passed),
            failed: count(Outcome::Failed),
            skipped: count(Outcome::Skipped),
            flaky: all().filter(|s| s.flaky).count(),
            hubs_left_modified: self
                .hubs
                .iter()
                .filter(|h| h.cleanup.status == CleanupStatus::LeftModified)
                .count(),
        };
    }

    pub fn to_json(&self) -> String {
        let mut s = super::escape::json_for_terminal(
            serde_json::to_string_pretty(self).expect("a run record always serializes"),
        );
        s.push('\n');
        s
    }

    /// Write the record atomically.
    pub fn write(&self, path: &Path) -> Result<(), super::ReportError> {
        super::write_atomic(path, self.to_json().as_bytes())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scenario::measurement::{Measured, MeasurementSpec};
    use serde_json::json;

    /// A record with every kind of content: passed, failed (with a failed
    /// measurement and exchanges), skipped, a second hub, a ledger.
    pub(crate) fn sample_record() -> RunRecord {
        let plan = Plan::builtin_default();
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut r = RunRecord::start(&plan, t0);
        let fw: MeasurementSpec = serde_json::from_value(
            json!({"name": "firmware", "fact": "firmware_version", "at_least": "5.1.1"}),
        )
        .unwrap();
        let fw = fw.validate().unwrap();
        let relays: MeasurementSpec =
            serde_json::from_value(json!({"fact": "actuator_count", "equals": 4})).unwrap();
        let relays = relays.validate().unwrap();
        let exchange = Exchange::new(
            "POST",
            "/api/config/set",
            Some(500),
            None,
            Duration::from_millis(3),
            Duration::from_millis(12),
            Some(br#"{"api_key":"real-secret","hub":{"server_url":"http://ha.local:8123/api/webhook/abc"}}"#),
            Some(b"internal error"),
            &Redactor::new(false),
        );
        let timeout = Exchange::new(
            "POST",
            "/api/config/get",
            None,
            Some("timed out after 5s".into()),
            Duration::from_millis(20),
            Duration::from_secs(5),
            Some(br#"{"hub":[]}"#),
            None,
            &Redactor::new(false),
        );
        r.hubs.push(HubRecord {
            target: "127.0.0.1:8080".into(),
            identity: HubIdentity {
                name: Some("Vege_A6_20".into()),
                mac: Some("A1B2C3D4A620".into()),
                firmware: Some("3.4.5".into()),
                addresses: vec!["127.0.0.1".into()],
                txt: [("version".to_string(), "3.4.5".to_string())].into(),
            },
            duration_ms: Some(1950),
            scenarios: vec![
                ScenarioRecord::new("mac", Outcome::Passed, Duration::from_millis(4), None, vec![], vec![exchange.clone()])
                    .with_incidents(vec![IncidentRecord {
                        kind: crate::session::client::IncidentKind::Reboot,
                        reason: "POST /api/info/get: the hub dropped the connection, refused new ones, then answered again (attempt 3)".into(),
                        at: "2026-11-22T03:00:00.120Z".into(),
                        at_ms: 120,
                    }]),
                ScenarioRecord::new(
                    "info",
                    Outcome::Failed,
                    Duration::from_millis(9),
                    Some("measurement firmware failed: firmware_version 3.4.5 is below the limit at_least 5.1.1".into()),
                    vec![
                        fw.evaluate(Some(&Measured::Version("3.4.5".into()))),
                        relays.evaluate(Some(&Measured::Integer(4))),
                    ],
                    vec![exchange, timeout],
                ),
                ScenarioRecord::new(
                    "actuators",
                    Outcome::Skipped,
                    Duration::ZERO,
                    Some("not enabled (--actuators)".into()),
                    vec![],
                    vec![],
                ),
            ],
            cleanup: CleanupRecord {
                status: CleanupStatus::Verified,
                obligations: vec![ObligationRecord {
                    what: "all 4 actuators off".into(),
                    kind: ObligationKind::Actuators,
                    verified: true,
                    detail: Some("every slot reads off".into()),
                    scenario: Some("actuators".into()),
                    restore_command: None,
                }],
            },
        });
        r.hubs.push(HubRecord {
            target: "127.0.0.1:8081".into(),
            identity: HubIdentity::default(),
            duration_ms: Some(700),
            scenarios: vec![],
            cleanup: CleanupRecord {
                status: CleanupStatus::LeftModified,
                obligations: vec![ObligationRecord {
                    what: "restore config from /b/x.json".into(),
                    kind: ObligationKind::Config,
                    verified: false,
                    detail: Some("config may be modified".into()),
                    scenario: None,
                    restore_command: Some(
                        "vegehub-harness restore /b/x.json --device 127.0.0.1:8081".into(),
                    ),
                }],
            },
        });
        r.ledger = Some(
            json!({"sessions": 1, "connections_opened": 2, "connections_closed": 2,
            "closes_confirmed": true, "close_check": "the OS socket table", "leaked": false,
            "problems": [], "budget": 2, "waited_ms": 100,
            "hubs": [{"hub": "127.0.0.1:8080", "connections": 2, "requests": 9, "peak_open": 1}]}),
        );
        r.finish(RunStatus::Finished, 1, t0 + chrono::Duration::seconds(3));
        r
    }

    fn schema() -> Value {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/run-record.schema.json"),
        )
        .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn validator() -> jsonschema::Validator {
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema())
            .expect("the schema is a valid JSON Schema")
    }

    pub(crate) fn errors(v: &Value) -> Vec<String> {
        validator()
            .iter_errors(v)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    #[test]
    fn record_validates_against_the_schema() {
        let v: Value = serde_json::from_str(&sample_record().to_json()).unwrap();
        assert_eq!(errors(&v), Vec::<String>::new());
        // A record written mid-run is valid too.
        let running = RunRecord::start(&Plan::builtin_default(), Utc::now());
        let v: Value = serde_json::from_str(&running.to_json()).unwrap();
        assert_eq!(errors(&v), Vec::<String>::new());
    }

    #[test]
    fn schema_rejects_broken_records() {
        let good: Value = serde_json::from_str(&sample_record().to_json()).unwrap();
        let broken = |f: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            f(&mut v);
            assert!(!validator().is_valid(&v), "schema accepted {v:#}");
        };
        broken(&|v| {
            v["harness"].as_object_mut().unwrap().remove("version");
        });
        broken(&|v| v["hubs"][0]["scenarios"][0]["outcome"] = json!("maybe"));
        broken(&|v| v["started_at"] = json!("yesterday"));
        broken(&|v| v["surprise"] = json!(1));
        broken(&|v| v["ledger"]["leaked"] = json!("no"));
        broken(&|v| v["hubs"][0]["scenarios"][1]["measurements"][0]["verdict"] = json!("ok"));
        // Exchanges belong to failed scenarios only.
        broken(&|v| {
            let ex = v["hubs"][0]["scenarios"][1]["exchanges"].clone();
            v["hubs"][0]["scenarios"][0]["exchanges"] = ex;
        });
        // Only a passed scenario can be flaky.
        broken(&|v| v["hubs"][0]["scenarios"][1]["flaky"] = json!(true));
        // A hub left modified names at least one unverified obligation.
        broken(&|v| v["hubs"][0]["cleanup"]["status"] = json!("left_modified"));
        broken(&|v| v["status"] = json!("exploded"));
        broken(&|v| v["hubs"][0]["scenarios"][0]["incidents"][0]["kind"] = json!("hiccup"));
        // A failed measurement carries a message.
        broken(&|v| {
            v["hubs"][0]["scenarios"][1]["measurements"][0]
                .as_object_mut()
                .unwrap()
                .remove("message");
        });
    }

    #[test]
    fn exchanges_kept_only_for_failures_and_redacted() {
        let r = sample_record();
        let hub = &r.hubs[0];
        assert!(
            hub.scenarios[0].exchanges.is_empty(),
            "passed scenario keeps none"
        );
        let ex = &hub.scenarios[1].exchanges;
        assert_eq!(ex.len(), 2);
        let body = ex[0].request_body.as_ref().unwrap();
        assert_eq!(body["api_key"], json!(REDACTED));
        assert_eq!(
            body["hub"]["server_url"],
            json!("http://ha.local:8123/<redacted>")
        );
        assert!(!r.to_json().contains("real-secret"));
        assert!(!r.to_json().contains("webhook/abc"));
        // A body that is not JSON is never recorded raw (issue 10).
        assert_eq!(
            ex[0].response_body,
            Some(json!(crate::session::client::opaque(b"internal error")))
        );
        assert_eq!(ex[1].status, None);
    }

    #[test]
    fn redaction_keeps_test_values_and_non_secrets() {
        let v = json!({
            "endpoints": [{"name": "HomeAssistant", "config": {
                "api_key": "VEGEHUB_HARNESS_TEST_KEY", "url": "http://x/VEGEHUB_HARNESS_TEST_SERVER",
                "data_format": "json"}},
                {"config": {"api_key": "abc123", "url": "http://homeassistant.local:8123/api/webhook/s3cr3t"}}],
            "wifi": {"ssid": "bench", "password": "hunter2", "psk": ""},
            "api_key": null,
            "num_channels": 2
        });
        let v = redact_body(&v, &Redactor::new(false));
        assert_eq!(
            v["endpoints"][0]["config"]["api_key"],
            json!("VEGEHUB_HARNESS_TEST_KEY")
        );
        assert_eq!(
            v["endpoints"][0]["config"]["url"],
            json!("http://x/VEGEHUB_HARNESS_TEST_SERVER")
        );
        assert_eq!(v["endpoints"][0]["config"]["data_format"], json!("json"));
        assert_eq!(v["endpoints"][1]["config"]["api_key"], json!(REDACTED));
        assert_eq!(
            v["endpoints"][1]["config"]["url"],
            json!("http://homeassistant.local:8123/<redacted>")
        );
        assert_eq!(v["wifi"]["password"], json!(REDACTED));
        assert_eq!(v["wifi"]["psk"], json!(""));
        assert_eq!(v["wifi"]["ssid"], json!("bench"));
        assert_eq!(v["api_key"], Value::Null);
        assert_eq!(
            redact_url("http://user:pw@host/x"),
            "http://host/<redacted>"
        );
        assert_eq!(redact_url("http://host:80"), "http://host:80");
    }

    #[test]
    fn written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        sample_record().write(&path).unwrap();
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["status"], json!("finished"));
        assert_eq!(back["exit_code"], json!(1));
        assert_eq!(back["harness"]["version"], json!(env!("CARGO_PKG_VERSION")));
    }
}
