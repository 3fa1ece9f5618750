//! Plans: which scenarios run against each hub, in which order, with which
//! parameters, whether each may change the hub, and the measurements each
//! checks (the validated `Plan` and its `Step`s). Reading and validating plan
//! files is `parse`. Uses `scenario` (its parameters and measurements); hands
//! the run its scenario options (`scenario::Options`).

mod parse;

use std::time::Duration;

use serde_json::Value;

use crate::scenario::measurement::{MeasuredFacts, Measurement, MeasurementRecord};
use crate::scenario::{actuators, setup, Options, Scenario};

pub use parse::{PlanError, DEFAULT_PLAN_JSON, DEFAULT_PLAN_SOURCE};

/// Prefix every setup test value must carry, so a plan can never hold a real
/// key and a hub left with a test value is recognisable (and redaction lets
/// it through).
pub use crate::safety::redact::TEST_VALUE_PREFIX;

/// Per-request timeout when a plan gives none: the session's default.
pub const DEFAULT_TIMEOUT: Duration = crate::session::client::DEFAULT_REQUEST_TIMEOUT;
/// Retries after a connection error when a plan gives none.
pub const DEFAULT_RETRIES: u32 = 2;
/// Most retries a plan may ask for: more only hides a sick hub.
pub const MAX_RETRIES: u32 = 10;

/// A validated plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The file it came from, or [`DEFAULT_PLAN_SOURCE`].
    pub source: String,
    pub description: Option<String>,
    /// The plan-level request timeout and retries (steps may differ).
    pub timeout: Duration,
    pub retries: u32,
    /// In the order they run.
    pub steps: Vec<Step>,
    /// The document as written, for the run record.
    pub document: Value,
}

/// One scenario of a plan with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub params: Params,
    /// Measurements this scenario checks; any failure fails the scenario.
    pub measurements: Vec<Measurement>,
    /// Timeout of every request the scenario sends.
    pub timeout: Duration,
    /// Retries after a connection error, per request.
    pub retries: u32,
    /// For scenarios that change the hub: whether the plan allows it. Always
    /// false for read-only scenarios (they never need it).
    pub allow_changes: bool,
}

impl Step {
    pub fn scenario(&self) -> Scenario {
        match self.params {
            Params::Mac => Scenario::Mac,
            Params::Info => Scenario::Info,
            Params::ActuatorStatus => Scenario::ActuatorStatus,
            Params::ConfigRoundTrip => Scenario::ConfigRoundTrip,
            Params::Actuators(_) => Scenario::Actuators,
            Params::Setup(_) => Scenario::Setup,
        }
    }
}

/// Scenario parameters given on the command line; each one given wins over
/// the plan for this run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParamOverrides {
    /// `--timeout`
    pub timeout: Option<Duration>,
    /// `--retries`
    pub retries: Option<u32>,
    /// `--verify-timeout`
    pub verify_timeout: Option<Duration>,
    /// `--on-seconds`
    pub on_seconds: Option<u32>,
    /// `--auto-off-seconds`
    pub auto_off_seconds: Option<u32>,
}

impl Step {
    /// The request timeout and retries of this step's requests.
    pub fn limits(&self, o: &ParamOverrides) -> (Duration, u32) {
        (
            o.timeout.unwrap_or(self.timeout),
            o.retries.unwrap_or(self.retries),
        )
    }

    /// The scenario options of this step: the plan's parameters, then the
    /// command line's overrides, on top of `base` (permissions, polling).
    pub fn options(&self, base: &Options, o: &ParamOverrides) -> Options {
        let mut opts = base.clone();
        match &self.params {
            Params::Actuators(a) => opts.actuator_params = a.clone(),
            Params::Setup(p) => opts.setup_params = p.clone(),
            _ => {}
        }
        let a = &mut opts.actuator_params;
        if let Some(v) = o.on_seconds {
            a.on_seconds = v;
        }
        if let Some(v) = o.auto_off_seconds {
            a.auto_off_seconds = v;
        }
        if let Some(v) = o.verify_timeout {
            a.verify_timeout = v;
        }
        opts
    }

    /// The reason this step is skipped without running, if the plan does
    /// not allow it to change the hub.
    pub fn denied_by_plan(&self) -> Option<String> {
        (self.scenario().writes_to_hub() && !self.allow_changes).then(|| {
            "the plan does not allow it to change the hub (allow_changes: false)".to_string()
        })
    }

    /// Evaluate this step's measurements against what the run has gathered.
    pub fn measure(&self, facts: &crate::scenario::HubFacts) -> Vec<MeasurementRecord> {
        let measured = MeasuredFacts::from_run(facts);
        self.measurements
            .iter()
            .map(|m| m.evaluate(measured.get(m.fact).as_ref()))
            .collect()
    }
}

/// Scenario-specific parameters, in each hub-changing scenario's own type
/// (the plan validates straight into it; its `Default` is the only one).
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    Mac,
    Info,
    ActuatorStatus,
    ConfigRoundTrip,
    Actuators(actuators::Params),
    Setup(setup::Params),
}

impl Plan {
    /// The step of a scenario, if the plan runs it.
    pub fn step(&self, kind: Scenario) -> Option<&Step> {
        self.steps.iter().find(|s| s.scenario() == kind)
    }
}
