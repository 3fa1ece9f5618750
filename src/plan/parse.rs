//! Plan files (`scenarios/*.json`) read and validated into a [`Plan`]:
//! completely, before anything is sent to a hub; any error names the file,
//! the JSON path and what was expected, on one line.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Params, Plan, Step, MAX_RETRIES, MAX_SECONDS, TEST_VALUE_PREFIX};
use crate::scenario::actuators::{self, Slots};
use crate::scenario::measurement::MeasurementSpec;
use crate::scenario::setup;
use crate::scenario::Scenario;
use crate::session::client::{DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRIES};

/// The plan run when none is given, built into the binary so a release build
/// works from any directory.
pub const DEFAULT_PLAN_JSON: &str = include_str!("../../scenarios/default.json");
/// How the built-in default plan is named in errors and records.
pub const DEFAULT_PLAN_SOURCE: &str = "scenarios/default.json (built in)";

/// Marker a setup test server URL must contain.
const TEST_URL_MARKER: &str = "VEGEHUB_HARNESS_TEST";

/// Why a plan was refused. Displayed as one line.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("plan {file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// `path` is a JSON path such as `scenarios[4].slots[1]`, empty for the
    /// document itself.
    #[error("plan {file}: {}{message}", if path.is_empty() { String::new() } else { format!("at {path}: ") })]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
}

impl PlanError {
    /// The JSON path of an invalid plan, if that is what it is.
    pub fn path(&self) -> Option<&str> {
        match self {
            PlanError::Invalid { path, .. } => Some(path),
            PlanError::Read { .. } => None,
        }
    }
}

/// A problem at a JSON path, before the file name is known to it.
struct At {
    path: String,
    message: String,
}

fn at(path: impl Into<String>, message: impl Into<String>) -> At {
    At {
        path: path.into(),
        message: message.into(),
    }
}

impl Plan {
    /// Read and validate a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let file = path.display().to_string();
        let text =
            crate::device::file::read_text_bounded(path).map_err(|source| PlanError::Read {
                file: file.clone(),
                source,
            })?;
        Plan::parse(&text, &file)
    }

    /// The built-in default plan.
    pub fn builtin_default() -> Plan {
        Plan::parse(DEFAULT_PLAN_JSON, DEFAULT_PLAN_SOURCE)
            .expect("the built-in default plan is valid (a unit test checks it)")
    }

    /// Validate a plan document; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Plan, PlanError> {
        parse(text, source).map_err(|At { path, message }| PlanError::Invalid {
            file: source.to_string(),
            path,
            message,
        })
    }
}

/// The document level of a plan file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    #[serde(default)]
    description: Option<String>,
    /// Defaults for every step.
    #[serde(default)]
    timeout_seconds: Option<f64>,
    #[serde(default)]
    retries: Option<u32>,
    /// Checked step by step (the `scenario` key picks the step's fields).
    scenarios: Vec<Value>,
}

/// A step kind's own fields, then the fields every step has
/// (`measurements`, `timeout_seconds`, `retries`,
/// `scenario_timeout_seconds`), in that order. Each kind
/// is its own struct so that `deny_unknown_fields` names exactly that
/// kind's fields (serde's `flatten` cannot be combined with it);
/// `every_step!` takes the shared fields out again.
macro_rules! step_kind {
    (struct $name:ident { $($(#[$attr:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($(#[$attr])* $field: $ty,)*
            #[serde(default)]
            measurements: Vec<MeasurementSpec>,
            #[serde(default)]
            timeout_seconds: Option<f64>,
            #[serde(default)]
            retries: Option<u32>,
            #[serde(default)]
            scenario_timeout_seconds: Option<f64>,
        }
    };
}

step_kind! {
    struct ReadOnlyStep {}
}

step_kind! {
    struct ConfigRoundTripStep {
        allow_changes: bool,
    }
}

step_kind! {
    struct ActuatorsStep {
        allow_changes: bool,
        #[serde(default)]
        slots: Option<Slots>,
        #[serde(default)]
        on_seconds: Option<u32>,
        #[serde(default)]
        auto_off_check: Option<bool>,
        #[serde(default)]
        auto_off_slot: Option<u32>,
        #[serde(default)]
        auto_off_seconds: Option<u32>,
        #[serde(default)]
        verify_timeout_seconds: Option<f64>,
    }
}

step_kind! {
    struct SetupStep {
        allow_changes: bool,
        #[serde(default)]
        restore: Option<bool>,
        #[serde(default)]
        test_api_key: Option<String>,
        #[serde(default)]
        test_server_url: Option<String>,
        #[serde(default)]
        deliver_check: Option<crate::scenario::deliver::DeliverCheck>,
        #[serde(default)]
        deliver_timeout_seconds: Option<f64>,
    }
}

/// The fields every kind of step has, out of a deserialised step (see
/// `step_kind!`), with its `allow_changes`.
macro_rules! every_step {
    ($step:ident, $allow_changes:expr) => {
        (
            $step.measurements,
            $step.timeout_seconds,
            $step.retries,
            $step.scenario_timeout_seconds,
            $allow_changes,
        )
    };
}

/// Deserialize with the JSON path of any error. `prefix` is the path of
/// `value` inside the document.
fn typed<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, At> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (_, ".") => prefix.to_string(),
            (true, inner) => inner.to_string(),
            (false, inner) if inner.starts_with('[') => format!("{prefix}{inner}"),
            (false, inner) => format!("{prefix}.{inner}"),
        };
        // serde names Rust types; a technician editing a plan reads words.
        let message = e
            .into_inner()
            .to_string()
            .replace("expected u32", "expected a whole number, 0 or more")
            .replace("expected f64", "expected a number");
        at(path, message)
    })
}

fn parse(text: &str, source: &str) -> Result<Plan, At> {
    let document: Value = serde_json::from_str(text).map_err(|e| at("", e.to_string()))?;
    // The parser keeps the last of two values; which one the writer meant
    // (`"allow_changes": false` near the top, `true` further down) is
    // unknown, so a plan says each thing once.
    if let Some((key, _)) = crate::device::json_diff::duplicate_key(text) {
        return Err(at(
            "",
            format!("key {key:?} appears twice in one object; give it once"),
        ));
    }
    if !document.is_object() {
        return Err(at("", "expected a JSON object with a \"scenarios\" list"));
    }
    let raw: RawPlan = typed(document.clone(), "")?;
    let timeout =
        seconds(raw.timeout_seconds, "timeout_seconds")?.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
    let retries = retries(raw.retries, "retries")?.unwrap_or(DEFAULT_RETRIES);
    if raw.scenarios.is_empty() {
        return Err(at("scenarios", "expected at least one scenario"));
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut names = Vec::new();
    for (i, value) in raw.scenarios.into_iter().enumerate() {
        let path = format!("scenarios[{i}]");
        let step = parse_step(value, &path, timeout, retries)?;
        if let Some(first) = steps.iter().position(|s| s.scenario() == step.scenario()) {
            return Err(at(
                format!("{path}.scenario"),
                format!(
                    "\"{}\" is already listed at scenarios[{first}]; each scenario runs once",
                    step.scenario()
                ),
            ));
        }
        for m in &step.measurements {
            names.push(m.name.clone());
        }
        steps.push(step);
    }
    // Names identify measurements in records; two with one name would be
    // ambiguous there.
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(at(
                "scenarios",
                format!("measurement name \"{name}\" is used twice; give each a unique \"name\""),
            ));
        }
    }
    Ok(Plan {
        source: source.to_string(),
        description: raw.description,
        timeout,
        retries,
        steps,
        document,
    })
}

fn parse_step(
    value: Value,
    path: &str,
    timeout: Duration,
    retries_default: u32,
) -> Result<Step, At> {
    let Value::Object(mut map) = value else {
        return Err(at(
            path,
            "expected an object such as {\"scenario\": \"info\"}",
        ));
    };
    let kind = scenario_name(&mut map, path)?;
    let rest = Value::Object(map);
    let (params, (specs, step_timeout, step_retries, budget, allow_changes)) = match kind {
        Scenario::Mac | Scenario::Info | Scenario::ActuatorStatus => {
            let s: ReadOnlyStep = typed(rest, path)?;
            let params = match kind {
                Scenario::Mac => Params::Mac,
                Scenario::Info => Params::Info,
                _ => Params::ActuatorStatus,
            };
            (params, every_step!(s, false))
        }
        Scenario::ConfigRoundTrip => {
            let s: ConfigRoundTripStep = typed(rest, path)?;
            (Params::ConfigRoundTrip, every_step!(s, s.allow_changes))
        }
        Scenario::Actuators => {
            let s: ActuatorsStep = typed(rest, path)?;
            let params = actuator_params(&s, path)?;
            (Params::Actuators(params), every_step!(s, s.allow_changes))
        }
        Scenario::Setup => {
            let s: SetupStep = typed(rest, path)?;
            let params = setup_params(&s, path)?;
            (Params::Setup(params), every_step!(s, s.allow_changes))
        }
    };
    let mut measurements = Vec::new();
    for (j, spec) in specs.iter().enumerate() {
        let mpath = format!("{path}.measurements[{j}]");
        if spec.fact.measured_by() != kind.name() {
            return Err(at(
                format!("{mpath}.fact"),
                format!(
                    "{} is measured by the \"{}\" scenario, not \"{kind}\"",
                    spec.fact,
                    spec.fact.measured_by()
                ),
            ));
        }
        let m = spec.validate().map_err(|e| {
            at(
                format!("{mpath}.{}", e.field),
                format!("expected {}", e.expected),
            )
        })?;
        measurements.push(m);
    }
    Ok(Step {
        params,
        measurements,
        timeout: seconds(step_timeout, &format!("{path}.timeout_seconds"))?.unwrap_or(timeout),
        retries: retries(step_retries, &format!("{path}.retries"))?.unwrap_or(retries_default),
        scenario_timeout: seconds(budget, &format!("{path}.scenario_timeout_seconds"))?,
        allow_changes,
    })
}

fn scenario_name(map: &mut Map<String, Value>, path: &str) -> Result<Scenario, At> {
    let known = || {
        Scenario::ALL
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match map.remove("scenario") {
        None => Err(at(
            path,
            format!("missing field `scenario` (one of {})", known()),
        )),
        Some(Value::String(name)) => Scenario::from_name(&name).ok_or_else(|| {
            at(
                format!("{path}.scenario"),
                format!("unknown scenario \"{name}\", expected one of {}", known()),
            )
        }),
        Some(other) => Err(at(
            format!("{path}.scenario"),
            format!(
                "expected a scenario name (one of {}), found {other}",
                known()
            ),
        )),
    }
}

fn actuator_params(s: &ActuatorsStep, path: &str) -> Result<actuators::Params, At> {
    let d = actuators::Params::default();
    let slots = s.slots.clone().unwrap_or(d.slots);
    if let Slots::List(list) = &slots {
        if list.is_empty() {
            return Err(at(
                format!("{path}.slots"),
                "expected at least one slot, or \"all\"",
            ));
        }
        for (i, slot) in list.iter().enumerate() {
            if list[..i].contains(slot) {
                return Err(at(
                    format!("{path}.slots[{i}]"),
                    format!("slot {slot} is listed twice"),
                ));
            }
        }
    }
    let whole_seconds = |v: Option<u32>, default: u32, field: &str| {
        let n = v.unwrap_or(default);
        if n == 0 || n > MAX_SECONDS {
            return Err(at(
                format!("{path}.{field}"),
                format!("expected whole seconds from 1 to {MAX_SECONDS}"),
            ));
        }
        Ok(n)
    };
    let on_seconds = whole_seconds(s.on_seconds, d.on_seconds, "on_seconds")?;
    let auto_off_seconds =
        whole_seconds(s.auto_off_seconds, d.auto_off_seconds, "auto_off_seconds")?;
    if let (Some(slot), Slots::List(list)) = (s.auto_off_slot, &slots) {
        if !list.contains(&slot) {
            return Err(at(
                format!("{path}.auto_off_slot"),
                format!("expected one of the slots tested ({list:?}), found {slot}"),
            ));
        }
    }
    Ok(actuators::Params {
        slots,
        on_seconds,
        auto_off_check: s.auto_off_check.unwrap_or(d.auto_off_check),
        auto_off_slot: s.auto_off_slot,
        auto_off_seconds,
        verify_timeout: seconds(
            s.verify_timeout_seconds,
            &format!("{path}.verify_timeout_seconds"),
        )?
        .unwrap_or(d.verify_timeout),
    })
}

fn setup_params(s: &SetupStep, path: &str) -> Result<setup::Params, At> {
    let d = setup::Params::default();
    let test_api_key = s.test_api_key.clone().unwrap_or(d.test_api_key);
    if !test_api_key.starts_with(TEST_VALUE_PREFIX) {
        return Err(at(
            format!("{path}.test_api_key"),
            format!("expected a test key starting with {TEST_VALUE_PREFIX} (never a real key)"),
        ));
    }
    let test_server_url = s.test_server_url.clone().unwrap_or(d.test_server_url);
    let host = test_server_url
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', ':']).next().unwrap_or(""));
    if host.is_none_or(str::is_empty) || !test_server_url.contains(TEST_URL_MARKER) {
        return Err(at(
            format!("{path}.test_server_url"),
            format!("expected an http:// URL containing {TEST_URL_MARKER}, so the hub's config shows it is a test value"),
        ));
    }
    Ok(setup::Params {
        test_api_key,
        test_server_url,
        restore: s.restore.unwrap_or(d.restore),
        deliver_check: s.deliver_check.unwrap_or(d.deliver_check),
        deliver_timeout: seconds(
            s.deliver_timeout_seconds,
            &format!("{path}.deliver_timeout_seconds"),
        )?
        .unwrap_or(d.deliver_timeout),
    })
}

fn seconds(v: Option<f64>, path: &str) -> Result<Option<Duration>, At> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s <= f64::from(MAX_SECONDS) => {
            Ok(Some(Duration::from_secs_f64(s)))
        }
        Some(s) => Err(at(
            path,
            format!("expected seconds above 0 and at most {MAX_SECONDS}, found {s}"),
        )),
    }
}

fn retries(v: Option<u32>, path: &str) -> Result<Option<u32>, At> {
    match v {
        Some(n) if n > MAX_RETRIES => Err(at(
            path,
            format!("expected at most {MAX_RETRIES} retries, found {n}"),
        )),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::measurement::Fact;

    fn err(text: &str) -> String {
        let e = Plan::parse(text, "bad.json").expect_err(text);
        let line = e.to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        assert!(line.starts_with("plan bad.json: "), "{line}");
        line
    }

    fn assert_err(text: &str, path: &str, expected: &str) {
        let e = Plan::parse(text, "bad.json").expect_err(text);
        assert_eq!(e.path(), Some(path), "{e}");
        let line = err(text);
        assert!(line.contains(expected), "{line:?} lacks {expected:?}");
    }

    #[test]
    fn shipped_plans_are_valid() {
        let default = Plan::builtin_default();
        let names: Vec<&str> = default.steps.iter().map(|s| s.scenario().name()).collect();
        assert_eq!(
            names,
            [
                "mac",
                "info",
                "actuator-status",
                "config-round-trip",
                "actuators",
                "setup"
            ]
        );
        assert!(default
            .steps
            .iter()
            .filter(|s| s.scenario().writes_to_hub())
            .all(|s| s.allow_changes));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let smoke = Plan::load(&dir.join("smoke.json")).unwrap();
        assert!(
            smoke.steps.iter().all(|s| !s.scenario().writes_to_hub()),
            "smoke is read-only"
        );
        let prod = Plan::load(&dir.join("production-4-relay-ac.json")).unwrap();
        let facts: Vec<Fact> = prod
            .steps
            .iter()
            .flat_map(|s| s.measurements.iter().map(|m| m.fact))
            .collect();
        for f in [
            Fact::FirmwareVersion,
            Fact::ActuatorCount,
            Fact::PowerSource,
        ] {
            assert!(facts.contains(&f), "production plan measures {f}");
        }
        // The embedded copy is the file on disk.
        assert_eq!(
            std::fs::read_to_string(dir.join("default.json")).unwrap(),
            DEFAULT_PLAN_JSON
        );
    }

    #[test]
    fn parameters_and_defaults() {
        let p = Plan::parse(
            r#"{"timeout_seconds": 2, "retries": 1, "scenarios": [
                {"scenario": "info", "timeout_seconds": 0.5},
                {"scenario": "actuators", "allow_changes": true, "slots": [2, 0],
                 "on_seconds": 3, "auto_off_slot": 0, "auto_off_check": false},
                {"scenario": "setup", "allow_changes": false, "restore": false},
                {"scenario": "mac", "retries": 0}
            ]}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(p.steps[0].timeout, Duration::from_millis(500));
        assert_eq!(p.steps[0].retries, 1);
        let Params::Actuators(a) = &p.steps[1].params else {
            panic!()
        };
        assert_eq!(a.slots, Slots::List(vec![2, 0]));
        assert_eq!(
            (a.on_seconds, a.auto_off_check, a.auto_off_slot),
            (3, false, Some(0))
        );
        assert_eq!(p.steps[1].timeout, Duration::from_secs(2));
        let Params::Setup(s) = &p.steps[2].params else {
            panic!()
        };
        assert!(!s.restore && !p.steps[2].allow_changes);
        assert!(s.test_api_key.starts_with(TEST_VALUE_PREFIX));
        assert_eq!(p.steps[3].retries, 0);
        assert_eq!(p.steps[3].scenario(), Scenario::Mac);
        assert!(p.step(Scenario::ConfigRoundTrip).is_none());
    }

    #[test]
    fn not_json() {
        let line = err("{\"scenarios\": [");
        assert!(line.contains("line 1"), "{line}");
        err("[]");
    }

    #[test]
    fn unknown_top_level_field() {
        assert_err(
            r#"{"scenarios": [{"scenario": "mac"}], "scenaros": []}"#,
            "scenaros",
            "unknown field `scenaros`",
        );
    }

    #[test]
    fn missing_or_empty_scenarios() {
        assert_err(r#"{}"#, "", "missing field `scenarios`");
        assert_err(r#"{"scenarios": []}"#, "scenarios", "at least one scenario");
    }

    #[test]
    fn unknown_scenario() {
        assert_err(
            r#"{"scenarios": [{"scenario": "mac"}, {"scenario": "reboot"}]}"#,
            "scenarios[1].scenario",
            "unknown scenario \"reboot\", expected one of \"mac\", \"info\"",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": 3}]}"#,
            "scenarios[0].scenario",
            "expected a scenario name",
        );
        assert_err(
            r#"{"scenarios": [{"slots": "all"}]}"#,
            "scenarios[0]",
            "missing field `scenario`",
        );
        assert_err(
            r#"{"scenarios": ["mac"]}"#,
            "scenarios[0]",
            "expected an object",
        );
    }

    #[test]
    fn duplicate_scenario() {
        assert_err(
            r#"{"scenarios": [{"scenario": "mac"}, {"scenario": "mac"}]}"#,
            "scenarios[1].scenario",
            "already listed at scenarios[0]",
        );
    }

    #[test]
    fn unknown_step_field() {
        assert_err(
            r#"{"scenarios": [{"scenario": "actuators", "allow_changes": true, "slot": [1]}]}"#,
            "scenarios[0].slot",
            "unknown field `slot`",
        );
        // A read-only scenario has no allow_changes to give.
        assert_err(
            r#"{"scenarios": [{"scenario": "info", "allow_changes": true}]}"#,
            "scenarios[0].allow_changes",
            "unknown field `allow_changes`",
        );
    }

    #[test]
    fn changing_scenarios_must_say_whether_they_may() {
        for name in ["config-round-trip", "actuators", "setup"] {
            assert_err(
                &format!(r#"{{"scenarios": [{{"scenario": "{name}"}}]}}"#),
                "scenarios[0]",
                "missing field `allow_changes`",
            );
        }
    }

    #[test]
    fn wrong_types() {
        assert_err(
            r#"{"scenarios": [{"scenario": "actuators", "allow_changes": "yes"}]}"#,
            "scenarios[0].allow_changes",
            "expected a boolean",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": "actuators", "allow_changes": true, "slots": [0, "one"]}]}"#,
            "scenarios[0].slots[1]",
            "invalid type: string \"one\", expected a whole number, 0 or more",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": "actuators", "allow_changes": true, "slots": "some"}]}"#,
            "scenarios[0].slots",
            "expected \"all\" or a list of slot numbers",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": "actuators", "allow_changes": true, "on_seconds": -1}]}"#,
            "scenarios[0].on_seconds",
            "expected a whole number",
        );
        assert_err(
            r#"{"timeout_seconds": "5", "scenarios": [{"scenario": "mac"}]}"#,
            "timeout_seconds",
            "expected a number",
        );
        assert_err(
            r#"{"scenarios": {"scenario": "mac"}}"#,
            "scenarios",
            "expected a sequence",
        );
    }

    #[test]
    fn out_of_range_values() {
        assert_err(
            r#"{"timeout_seconds": 0, "scenarios": [{"scenario": "mac"}]}"#,
            "timeout_seconds",
            "above 0",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": "mac", "retries": 50}]}"#,
            "scenarios[0].retries",
            "at most 10 retries",
        );
        let act = |extra: &str| {
            format!(
                r#"{{"scenarios": [{{"scenario": "actuators", "allow_changes": true, {extra}}}]}}"#
            )
        };
        assert_err(
            &act(r#""on_seconds": 0"#),
            "scenarios[0].on_seconds",
            "from 1",
        );
        assert_err(
            &act(r#""slots": []"#),
            "scenarios[0].slots",
            "at least one slot",
        );
        assert_err(
            &act(r#""slots": [1, 1]"#),
            "scenarios[0].slots[1]",
            "listed twice",
        );
        assert_err(
            &act(r#""slots": [0, 1], "auto_off_slot": 3"#),
            "scenarios[0].auto_off_slot",
            "one of the slots tested",
        );
        assert_err(
            &act(r#""verify_timeout_seconds": 1000"#),
            "scenarios[0].verify_timeout_seconds",
            "at most 600",
        );
    }

    #[test]
    fn setup_values_must_be_test_values() {
        assert_err(
            r#"{"scenarios": [{"scenario": "setup", "allow_changes": true, "test_api_key": "4f1e9a"}]}"#,
            "scenarios[0].test_api_key",
            "starting with VEGEHUB_HARNESS_TEST_",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": "setup", "allow_changes": true, "test_server_url": "ftp://x/VEGEHUB_HARNESS_TEST_"}]}"#,
            "scenarios[0].test_server_url",
            "http:// URL",
        );
        assert_err(
            r#"{"scenarios": [{"scenario": "setup", "allow_changes": true, "test_server_url": "http://x/real"}]}"#,
            "scenarios[0].test_server_url",
            "containing VEGEHUB_HARNESS_TEST,",
        );
    }

    #[test]
    fn bad_measurements() {
        let with = |m: &str| {
            format!(r#"{{"scenarios": [{{"scenario": "info", "measurements": [{m}]}}]}}"#)
        };
        assert_err(
            &with(r#"{"fact": "firmware_version", "at_least": "five"}"#),
            "scenarios[0].measurements[0].at_least",
            "expected a version string such as \"5.1.1\"",
        );
        assert_err(
            &with(r#"{"fact": "relay_count", "equals": 4}"#),
            "scenarios[0].measurements[0].fact",
            "unknown variant `relay_count`, expected one of `mac`",
        );
        assert_err(
            &with(r#"{"fact": "actuator_count", "equal": 4}"#),
            "scenarios[0].measurements[0].equal",
            "unknown field `equal`",
        );
        assert_err(
            &with(r#"{"fact": "actuator_count", "equals": "four"}"#),
            "scenarios[0].measurements[0].equals",
            "expected a whole number for actuator_count",
        );
        assert_err(
            &with(r#"{"fact": "power_source", "equals": "solar"}"#),
            "scenarios[0].measurements[0].equals",
            "expected one of \"ac\", \"battery\"",
        );
        assert_err(
            &with(r#"{"fact": "mac", "starts_with": "A1"}"#),
            "scenarios[0].measurements[0].fact",
            "mac is measured by the \"mac\" scenario, not \"info\"",
        );
        assert_err(
            &with(r#"{"fact": "ssid", "equals": "a"}, {"fact": "ssid", "equals": "b"}"#),
            "scenarios",
            "measurement name \"ssid\" is used twice",
        );
    }
}
