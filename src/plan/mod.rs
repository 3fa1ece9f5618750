//! Plans: which scenarios run against each hub, in which order, with which
//! parameters, whether each may change the hub, and the measurements each
//! checks (the validated `Plan` and its `Step`s). Reading and validating plan
//! files is `parse`. Uses `scenario` (its parameters and measurements); hands
//! the run its scenario options (`scenario::Options`).

mod parse;

use std::time::Duration;

use serde_json::Value;

use crate::scenario::measurement::{MeasuredFacts, Measurement, MeasurementRecord};
use crate::scenario::{Options, Scenario};

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
            Params::Actuators(a) => {
                opts.on_seconds = a.on_seconds;
                opts.auto_off_seconds = a.auto_off_seconds;
                opts.verify_timeout = a.verify_timeout;
                opts.slots = match &a.slots {
                    Slots::All => None,
                    Slots::List(l) => Some(l.clone()),
                };
                opts.auto_off_check = a.auto_off_check;
                opts.auto_off_slot = a.auto_off_slot;
            }
            Params::Setup(p) => {
                opts.test_api_key = p.test_api_key.clone();
                opts.test_server_url = p.test_server_url.clone();
                opts.restore = p.restore;
                opts.deliver_check = p.deliver_check;
                opts.deliver_timeout = p.deliver_timeout;
            }
            _ => {}
        }
        if let Some(v) = o.on_seconds {
            opts.on_seconds = v;
        }
        if let Some(v) = o.auto_off_seconds {
            opts.auto_off_seconds = v;
        }
        if let Some(v) = o.verify_timeout {
            opts.verify_timeout = v;
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

/// Scenario-specific parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    Mac,
    Info,
    ActuatorStatus,
    ConfigRoundTrip,
    Actuators(ActuatorParams),
    Setup(SetupParams),
}

/// Which actuator slots the `actuators` scenario switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slots {
    /// Every slot the hub reports.
    All,
    /// These 0-based slots, in this order.
    List(Vec<u32>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ActuatorParams {
    pub slots: Slots,
    /// Device-side duration of each slot's on/off check, in whole seconds
    /// (what `actuators/set` takes); the harness switches the slot off
    /// itself long before, so this only bounds how long a relay stays on if
    /// the harness dies.
    pub on_seconds: u32,
    /// Whether to check that the hub switches a slot off by itself when its
    /// duration ends.
    pub auto_off_check: bool,
    /// The slot the auto-off check uses; `None`: the first slot tested.
    pub auto_off_slot: Option<u32>,
    /// Device-side duration of the auto-off check, in whole seconds.
    pub auto_off_seconds: u32,
    /// Deadline for a relay to follow a command (polling status).
    pub verify_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetupParams {
    /// The API key the scenario configures; starts with [`TEST_VALUE_PREFIX`].
    pub test_api_key: String,
    /// The server address the scenario configures (never contacted by the
    /// harness).
    pub test_server_url: String,
    /// Whether to restore the original config afterwards. Only a plan that
    /// means to leave the hub configured turns this off.
    pub restore: bool,
    /// `deliver_check`: prove the hub posts data to a receiver of the
    /// harness's (`test_server_url` is then replaced by the receiver's).
    pub deliver_check: crate::scenario::deliver::DeliverCheck,
    /// `deliver_timeout_seconds`: how long the hub has to post.
    pub deliver_timeout: Duration,
}

impl Default for ActuatorParams {
    fn default() -> Self {
        ActuatorParams {
            slots: Slots::All,
            on_seconds: 5,
            auto_off_check: true,
            auto_off_slot: None,
            auto_off_seconds: 1,
            verify_timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl Default for SetupParams {
    fn default() -> Self {
        SetupParams {
            test_api_key: crate::scenario::setup::TEST_API_KEY.to_string(),
            test_server_url: crate::scenario::setup::TEST_SERVER_URL.to_string(),
            restore: true,
            deliver_check: crate::scenario::deliver::DeliverCheck::Off,
            deliver_timeout: crate::scenario::deliver::DEFAULT_DELIVER_TIMEOUT,
        }
    }
}

impl Plan {
    /// The step of a scenario, if the plan runs it.
    pub fn step(&self, kind: Scenario) -> Option<&Step> {
        self.steps.iter().find(|s| s.scenario() == kind)
    }
}
