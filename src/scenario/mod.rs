//! The scenarios of a run, in plan order, and what they produce: structured
//! results (outcome, reason, duration, exchanges, cleanup) that reports are
//! rendered from. Each scenario takes the hub's client and the hub's facts,
//! and gathers the facts it needs itself when run alone. Uses `client`,
//! `device`.

pub mod actuator_status;
pub mod actuators;
pub mod config_round_trip;
pub mod deliver;
pub mod diff;
pub mod facts;
pub mod info;
pub mod mac;
pub mod measurement;
pub mod setup;
pub mod wait;

use std::time::{Duration, Instant};

use crate::session::client::{Exchange, HubClient};
pub use facts::{Gathered, HubFacts, HubInfo};

/// A scenario of the plan. Names are the libtest trial names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    Mac,
    Info,
    ActuatorStatus,
    ConfigRoundTrip,
    Actuators,
    Setup,
}

impl Scenario {
    /// The plan, in the order it runs.
    pub const ALL: [Scenario; 6] = [
        Scenario::Mac,
        Scenario::Info,
        Scenario::ActuatorStatus,
        Scenario::ConfigRoundTrip,
        Scenario::Actuators,
        Scenario::Setup,
    ];

    /// The trial name, as used in plan files, filters and reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Mac => "mac",
            Scenario::Info => "info",
            Scenario::ActuatorStatus => "actuator-status",
            Scenario::ConfigRoundTrip => "config-round-trip",
            Scenario::Actuators => "actuators",
            Scenario::Setup => "setup",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the scenario writes to the hub (config or relays). A plan
    /// must say for each of these whether it is allowed to.
    pub fn writes_to_hub(self) -> bool {
        matches!(
            self,
            Scenario::ConfigRoundTrip | Scenario::Actuators | Scenario::Setup
        )
    }

    /// Run the scenario against one hub. Never panics outward for a hub
    /// misbehaving; a panic in harness code is caught by the caller.
    pub async fn run(self, client: &HubClient, facts: &mut HubFacts, opts: &Options) -> Record {
        let started = Instant::now();
        let mut cx = Cx {
            client,
            facts,
            opts,
            cleanup: Vec::new(),
            notes: Vec::new(),
        };
        let verdict = match self {
            Scenario::Mac => mac::run(&mut cx).await,
            Scenario::Info => info::run(&mut cx).await,
            Scenario::ActuatorStatus => actuator_status::run(&mut cx).await,
            Scenario::ConfigRoundTrip => config_round_trip::run(&mut cx).await,
            Scenario::Actuators => actuators::run(&mut cx).await,
            Scenario::Setup => setup::run(&mut cx).await,
        };
        let verdict = match verdict {
            Ok(()) => Verdict::Pass,
            Err(Stop::Fail(m)) => Verdict::Fail(m),
            Err(Stop::Skip(m)) => Verdict::Skip(m),
        };
        let Cx { cleanup, notes, .. } = cx;
        Record {
            scenario: self,
            verdict,
            duration: started.elapsed(),
            exchanges: client.take_exchanges(),
            incidents: client.take_incidents(),
            cleanup,
            notes,
            measurements: Vec::new(),
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a hub-changing scenario may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    Allowed,
    /// Skipped with this reason, e.g. `not enabled (--actuators)`.
    Denied(String),
}

/// What a scenario runs with on one hub: the parameters of the scenario
/// (its plan step's, with the command line's overrides), and what is per
/// run: permissions, polling, safety.
#[derive(Debug, Clone)]
pub struct Options {
    /// Whether `config-round-trip` may write the config back.
    pub config_write: Permission,
    pub actuators: Permission,
    pub setup: Permission,
    /// Pause between two status polls while waiting.
    pub poll_interval: Duration,
    /// The parameters of `actuators`.
    pub actuator_params: actuators::Params,
    /// The parameters of `setup`.
    pub setup_params: setup::Params,
    /// Backups before config writes, undo obligations, redaction. The run
    /// sets the run's own; the default is a fresh one.
    pub safety: crate::safety::Safety,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config_write: Permission::Allowed,
            actuators: Permission::Allowed,
            setup: Permission::Allowed,
            poll_interval: Duration::from_millis(100),
            actuator_params: actuators::Params::default(),
            setup_params: setup::Params::default(),
            safety: crate::safety::Safety::new(&crate::safety::SafetyArgs::default()),
        }
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "fail",
            Verdict::Skip(_) => "skip",
        }
    }

    /// The failure message or skip reason.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::Fail(m) | Verdict::Skip(m) => Some(m),
        }
    }
}

/// A cleanup step (all actuators off, config restored) and whether it was
/// verified. An unverified cleanup means the hub may be left modified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleanup {
    /// What was undone, e.g. `all actuators off`.
    pub what: String,
    pub verified: bool,
    /// How it was verified, or why it could not be.
    pub detail: String,
}

/// The result of one scenario on one hub: what every report renders.
#[derive(Debug, Clone)]
pub struct Record {
    pub scenario: Scenario,
    pub verdict: Verdict,
    pub duration: Duration,
    /// Every HTTP exchange the scenario made, in order.
    pub exchanges: Vec<Exchange>,
    /// Retries, reconnects and detected reboots, in order: a scenario that
    /// passed after one is flaky.
    pub incidents: Vec<crate::session::client::Incident>,
    pub cleanup: Vec<Cleanup>,
    /// Facts observed along the way (`mac A1B2C3D4E5F6`).
    pub notes: Vec<String>,
    /// The plan's measurements for this scenario, evaluated after it ran.
    pub measurements: Vec<crate::scenario::measurement::MeasurementRecord>,
}

impl Record {
    /// Passed, but only after a retry, reconnect or reboot.
    pub fn flaky(&self) -> bool {
        self.verdict == Verdict::Pass && !self.incidents.is_empty()
    }

    /// A record for a scenario that did not run (skipped before starting,
    /// or its runner panicked).
    pub fn not_run(scenario: Scenario, verdict: Verdict) -> Record {
        Record {
            scenario,
            verdict,
            duration: Duration::ZERO,
            exchanges: Vec::new(),
            incidents: Vec::new(),
            cleanup: Vec::new(),
            notes: Vec::new(),
            measurements: Vec::new(),
        }
    }
}

/// Why a scenario stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    Fail(String),
    Skip(String),
}

impl From<crate::session::client::CallError> for Stop {
    fn from(e: crate::session::client::CallError) -> Stop {
        Stop::Fail(e.to_string())
    }
}

pub(crate) type Step<T = ()> = Result<T, Stop>;

/// Run the part of a scenario that changes the hub so that whatever it does
/// (fail, return an error, panic) control comes back here and the caller's
/// cleanup (all-off, restore) runs next. A panic becomes a failure naming
/// the scenario.
pub(crate) async fn caught<F>(scenario: &str, body: F) -> Step
where
    F: std::future::Future<Output = Step>,
{
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(body)
        .catch_unwind()
        .await
        .unwrap_or_else(|p| {
            Err(Stop::Fail(format!(
                "{scenario} panicked: {}",
                setup::panic_message(&*p)
            )))
        })
}

/// What a running scenario works with.
pub struct Cx<'a> {
    pub client: &'a HubClient,
    pub facts: &'a mut HubFacts,
    pub opts: &'a Options,
    pub cleanup: Vec<Cleanup>,
    pub notes: Vec<String>,
}

impl Cx<'_> {
    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Call before every `config/set`, with the config just read: the
    /// first time on this hub it writes the backup of it (the run's
    /// original); every time it registers the restore of that original as
    /// owed. If the backup cannot be written the scenario fails here,
    /// before anything is written to the hub.
    pub async fn backup_before_write(
        &mut self,
        read: &crate::session::client::ConfigAnswer,
    ) -> Step<crate::safety::Original> {
        let safety = self.opts.safety.clone();
        safety.redactor.learn_text(&read.text);
        if self.facts.mac.is_none() {
            // Run alone, the scenario may not know the MAC yet.
            // No MAC, no backup (it is named and checked by MAC), so no
            // write: a prerequisite failed, as for any dependent scenario.
            let info = self.client.info(&["wifi"]).await.map_err(|e| {
                Stop::Skip(format!(
                    "prerequisite hub MAC unknown, so no backup can be taken and nothing is written ({e})"
                ))
            })?;
            self.facts.mac = info
                .wifi
                .and_then(|w| crate::device::Mac::parse(&w.mac_addr));
        }
        let Some(mac) = self.facts.mac.clone() else {
            return Err(Stop::Skip(
                "prerequisite hub MAC unknown (no valid MAC in info/get), so no backup can be taken and nothing is written".into(),
            ));
        };
        let id = crate::safety::backup::HubIdentity {
            mac: mac.as_str().to_owned(),
            name: self.facts.name.clone(),
            firmware: self.facts.info.known().map(|i| i.hub.version.clone()),
            address: self.client.hub().to_owned(),
        };
        let written = safety
            .before_config_write(&id, &read.text)
            .map_err(|e| Stop::Fail(format!("{e}; nothing written to the hub")))?;
        if written.new {
            self.note(format!(
                "original config backed up to {}",
                written.path.display()
            ));
        }
        Ok(written.original)
    }

    /// The plan leaves the hub modified on purpose (`restore: false`):
    /// nothing is owed.
    pub fn config_left_on_purpose(&self) {
        self.opts
            .safety
            .obligations
            .config_restored(self.client.hub());
    }

    /// After a scenario's config writes: if the hub already reads back the
    /// run's original (exactly), the obligation is discharged with no
    /// write; otherwise the original's exact bytes are written back and
    /// verified. Only a verified match with the original discharges it.
    pub async fn settle_config(&mut self, original: &crate::safety::Original) -> Cleanup {
        if let Ok(now) = self.client.config_get().await {
            if crate::device::json_diff::diff_texts(&original.text, &now.text).is_empty() {
                self.opts
                    .safety
                    .obligations
                    .config_restored(self.client.hub());
                return Cleanup {
                    what: "config restored".into(),
                    verified: true,
                    detail: "reads back deep-equal to the backup taken before the first write \
                             (nothing to write back)"
                        .into(),
                };
            }
        }
        let c = setup::restore(self.client, original).await;
        if c.verified {
            self.opts
                .safety
                .obligations
                .config_restored(self.client.hub());
        }
        c
    }

    /// The hub and wifi sections: from the `info` scenario if it ran, else
    /// read now. A failed `info` makes dependents skip with its reason.
    pub async fn require_info(&mut self) -> Step<HubInfo> {
        match &self.facts.info {
            Gathered::Known(i) => return Ok(i.clone()),
            Gathered::Failed(why) => {
                return Err(Stop::Skip(format!("prerequisite info failed: {why}")))
            }
            Gathered::NotYet => {}
        }
        match info::gather(self.client).await {
            Ok(i) => {
                self.facts.record_info(&i);
                Ok(i)
            }
            Err(why) => Err(Stop::Fail(format!("gathering hub info: {why}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn boom() -> Step {
        panic!("relay table out of range")
    }

    #[tokio::test]
    async fn a_panicking_body_becomes_a_failure_instead_of_unwinding() {
        // Returning (not unwinding) is what lets the scenario's cleanup run next.
        assert_eq!(
            caught("actuators", boom()).await,
            Err(Stop::Fail(
                "actuators panicked: relay table out of range".into()
            ))
        );
        assert_eq!(caught("setup", async { Ok(()) }).await, Ok(()));
        assert_eq!(
            caught("setup", async { Err(Stop::Fail("no".into())) }).await,
            Err(Stop::Fail("no".into()))
        );
    }
}
