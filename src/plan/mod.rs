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

/// Most retries a plan (or `--retries`) may ask for: more only hides a sick hub.
pub const MAX_RETRIES: u32 = 10;
/// Longest timeout or deadline a plan may ask for, and the longest
/// `on_seconds`/`auto_off_seconds` (also for their flags), in seconds.
pub const MAX_SECONDS: u32 = 600;
/// A scenario's default wall-clock budget is this many of its requests at
/// their full timeout (2 min at the default 5 s), plus the waits the step
/// itself asks for (see [`Step::budget`]). A healthy hub answers in well
/// under a second, so it never comes near; a hub that answers every
/// request just inside the timeout is stopped after about this many.
pub const BUDGET_REQUESTS: u32 = 24;

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
    /// The scenario's wall-clock budget (`scenario_timeout_seconds`,
    /// `--scenario-timeout`); `None`: derived, see [`Step::budget`].
    pub scenario_timeout: Option<Duration>,
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

    /// How long the scenario may run before it is stopped where it is and
    /// failed (cleanup is not counted: it has its own timeouts). The plan's
    /// or the flag's, else [`BUDGET_REQUESTS`] requests at the step's
    /// timeout plus the waits the step asks for: the verify waits before
    /// and around the auto-off check and its duration, the setup delivery
    /// wait. Each verify wait ends at the first read that matches on a
    /// healthy hub, so they are counted once each, not per slot.
    pub fn budget(&self) -> Duration {
        if let Some(b) = self.scenario_timeout {
            return b;
        }
        let waits = match &self.params {
            Params::Actuators(a) => {
                let auto_off = if a.auto_off_check {
                    Duration::from_secs(a.auto_off_seconds.into())
                } else {
                    Duration::ZERO
                };
                a.verify_timeout * 4 + auto_off
            }
            Params::Setup(p) => p.deliver_timeout,
            _ => Duration::ZERO,
        };
        self.timeout * BUDGET_REQUESTS + waits
    }
}

/// Scenario parameters given on the command line; each one given wins over
/// the plan for this run ([`ParamOverrides::apply`]).
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
    /// `--scenario-timeout`
    pub scenario_timeout: Option<Duration>,
}

impl ParamOverrides {
    /// The one place the command line wins over the plan: the plan's and
    /// every step's request timeout and retries, and the `actuators` step's
    /// durations. Applied once, when the run's flags are validated; from
    /// then on the plan says what runs.
    pub fn apply(&self, plan: &mut Plan) {
        // Destructured, so that a new override cannot be forgotten here.
        let ParamOverrides {
            timeout,
            retries,
            verify_timeout,
            on_seconds,
            auto_off_seconds,
            scenario_timeout,
        } = *self;
        plan.timeout = timeout.unwrap_or(plan.timeout);
        plan.retries = retries.unwrap_or(plan.retries);
        for step in &mut plan.steps {
            step.timeout = timeout.unwrap_or(step.timeout);
            step.retries = retries.unwrap_or(step.retries);
            step.scenario_timeout = scenario_timeout.or(step.scenario_timeout);
            if let Params::Actuators(a) = &mut step.params {
                a.verify_timeout = verify_timeout.unwrap_or(a.verify_timeout);
                a.on_seconds = on_seconds.unwrap_or(a.on_seconds);
                a.auto_off_seconds = auto_off_seconds.unwrap_or(a.auto_off_seconds);
            }
        }
    }
}

impl Step {
    /// The scenario options of this step: its parameters on top of `base`
    /// (permissions, polling, safety).
    pub fn options(&self, base: &Options) -> Options {
        let mut opts = base.clone();
        match &self.params {
            Params::Actuators(a) => opts.actuator_params = a.clone(),
            Params::Setup(p) => opts.setup_params = p.clone(),
            _ => {}
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

    /// The parameters of the plan's `actuators` step, if it has one.
    pub fn actuator_params(&self) -> Option<&actuators::Params> {
        self.steps.iter().find_map(|s| match &s.params {
            Params::Actuators(a) => Some(a),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::parse(
            r#"{"timeout_seconds": 3, "retries": 1, "scenarios": [
                {"scenario": "info", "timeout_seconds": 0.5},
                {"scenario": "actuators", "allow_changes": true, "on_seconds": 3,
                 "verify_timeout_seconds": 2}
            ]}"#,
            "p.json",
        )
        .unwrap()
    }

    #[test]
    fn overrides_win_over_the_plan_and_only_where_given() {
        let before = plan();
        let mut p = plan();
        ParamOverrides::default().apply(&mut p);
        assert_eq!(p, before, "no flag, no change");

        let secs = Duration::from_secs;
        ParamOverrides {
            timeout: Some(secs(7)),
            retries: Some(0),
            verify_timeout: Some(secs(9)),
            on_seconds: Some(4),
            auto_off_seconds: None,
            scenario_timeout: None,
        }
        .apply(&mut p);
        assert_eq!((p.timeout, p.retries), (secs(7), 0));
        assert!(p
            .steps
            .iter()
            .all(|s| (s.timeout, s.retries) == (secs(7), 0)));
        let a = p.actuator_params().unwrap();
        assert_eq!((a.on_seconds, a.verify_timeout), (4, secs(9)));
        assert_eq!(
            a.auto_off_seconds,
            actuators::Params::default().auto_off_seconds
        );
        // What a scenario runs with is the step's parameters, overrides included.
        let o = p
            .step(Scenario::Actuators)
            .unwrap()
            .options(&Options::default());
        assert_eq!(&o.actuator_params, a);
    }

    #[test]
    fn a_scenario_budget_is_the_plans_the_flags_or_derived_from_the_step() {
        let secs = Duration::from_secs;
        let mut p = plan();
        // Derived: 24 requests at the step's timeout, plus the step's waits
        // (actuators: 4 verify waits of 2 s and the 1 s auto-off).
        assert_eq!(p.steps[0].budget(), Duration::from_millis(500) * 24);
        assert_eq!(p.steps[1].budget(), secs(3 * 24 + 4 * 2 + 1));
        // The defaults: 2 min for a read-only scenario, more for actuators
        // and setup, whose waits are long on purpose.
        let d = Plan::builtin_default();
        let info = d.step(Scenario::Info).unwrap();
        assert_eq!(info.budget(), secs(120));
        let setup = Plan::parse(
            r#"{"scenarios": [{"scenario": "setup", "allow_changes": true}]}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(setup.steps[0].budget(), secs(120 + 10));
        // The plan's own, per step; the flag wins over it.
        let q = Plan::parse(
            r#"{"scenarios": [{"scenario": "info", "scenario_timeout_seconds": 30}]}"#,
            "p.json",
        )
        .unwrap();
        assert_eq!(q.steps[0].budget(), secs(30));
        let zero = r#"{"scenarios": [{"scenario": "info", "scenario_timeout_seconds": 0}]}"#;
        let e = Plan::parse(zero, "p.json").unwrap_err();
        assert_eq!(
            e.path(),
            Some("scenarios[0].scenario_timeout_seconds"),
            "{e}"
        );
        ParamOverrides {
            scenario_timeout: Some(secs(9)),
            ..ParamOverrides::default()
        }
        .apply(&mut p);
        assert!(p.steps.iter().all(|s| s.budget() == secs(9)));
    }
}
