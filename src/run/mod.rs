//! The harness run: its configuration (`RunConfig`, validated by
//! `cli::run_args` before any I/O) and [`run`], the run as a short sequence
//! of named phases, each in the file that owns it: the listing (`list`), the
//! session and the hubs to run against, simulated ones started in-process
//! (`targets`), the operator's consent (`consent`), the trials and their
//! cycles (`trials`), each hub's own thread (`hub`) and what it owes undone
//! whatever ended it (`cleanup`), and the session closed
//! under the connection gate (`gate`). Produces the `RunReport` every report
//! is rendered from.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::FatalError;
use crate::plan::Plan;
use crate::report::json::RunStatus;
use crate::report::model::RunReport;
use crate::report::sink::{ReportPaths, ReportSink};
use crate::safety::redact::Redactor;
use crate::safety::teardown::Obligations;
use crate::scenario::setup::panic_message;
use crate::scenario::Scenario;
use crate::session::client::{Observer, SessionConfig};
use crate::session::ledger;

mod cleanup;
pub mod consent;
mod gate;
mod hub;
mod list;
mod targets;
mod trials;

/// A validated run, built by `run_args` before any I/O.
pub struct RunConfig {
    pub targets: TargetSpec,
    /// `--jobs`: hubs in flight at once (`None`: all).
    pub jobs: Option<usize>,
    pub session: SessionConfig,
    /// `--write-config` given: `config-round-trip` may write to real hubs.
    pub allow_write_config: bool,
    /// `--actuators` given: `actuators` may run on real hubs.
    pub allow_actuators: bool,
    /// `--setup` given: `setup` may run on real hubs.
    pub allow_setup: bool,
    /// How long a `.local` name may take to resolve over mDNS
    /// (`--discover-timeout`).
    pub mdns_timeout: Duration,
    /// A person is at the terminal (stdin and stderr): a real hub's
    /// changes not allowed by a flag are asked for, per hub.
    pub interactive: bool,
    pub verbose: bool,
    pub libtest: libtest_mimic::Arguments,
    /// The scenarios to run, in order, with their parameters and
    /// measurements (the command line's overrides applied).
    pub plan: Plan,
    /// `--report-json`, `--junit`, `--report-html`, `--station`, `--operator`.
    pub reports: ReportPaths,
    /// Hides secrets in the report files.
    pub redactor: Redactor,
    /// Backups, actuator limit, undo obligations, signals, redaction.
    pub safety: crate::safety::Safety,
    pub conn: ConnConfig,
    /// `--repeat`, `--repeat-for`.
    pub soak: SoakConfig,
}

/// How often the plan runs, and the soak test's own test-only leak.
#[derive(Debug, Clone, Default)]
pub struct SoakConfig {
    pub repeat: crate::report::soak_record::Repeat,
    /// `--debug-soak-leak`: leak after every cycle.
    pub debug_leak: Option<crate::report::soak_record::DebugLeak>,
}

/// The connection gate's settings.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// Connections a hub may have open at once (`--conn-budget`).
    pub budget: usize,
    /// How long to wait for every connection to close after the session
    /// closed (`--close-timeout`).
    pub close_timeout: Duration,
    /// Test-only: leave a request in flight past the end of the run.
    pub debug_leak: bool,
    /// Test-only: a new client per request.
    pub debug_session_per_request: bool,
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            budget: ledger::DEFAULT_CONN_BUDGET,
            close_timeout: ledger::DEFAULT_CLOSE_DEADLINE,
            debug_leak: false,
            debug_session_per_request: false,
        }
    }
}

impl RunConfig {
    /// The plan's scenarios, in plan order.
    fn scenarios(&self) -> Vec<Scenario> {
        self.plan.steps.iter().map(|s| s.scenario()).collect()
    }
}

/// Which hubs to run against.
pub enum TargetSpec {
    Given(Vec<Target>),
    /// No target flag: find hubs on the network and choose among them
    /// (see `targets::discover`).
    Discover(crate::discovery::select::DiscoverPlan),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The simulated hub with this profile, started for the run.
    Sim {
        profile: String,
    },
    Device {
        host: String,
        port: u16,
    },
}

/// Run the plan. Returns the report, or a fatal error before any scenario
/// (bad profile, no target, a runtime that would not start).
pub fn run(cfg: RunConfig, observer: Option<Observer>) -> Result<RunReport, FatalError> {
    let started = Instant::now();
    if cfg.libtest.list {
        return list::list_only(&cfg, started);
    }
    let sink = open_reports(&cfg);
    let obligations = cfg.safety.obligations.clone();
    // A panic past the run's own guards (a harness bug) still ends with
    // the reports finished, a documented exit code and what may be left.
    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_with_reports(cfg, observer, sink.clone(), started)
    }))
    .unwrap_or_else(|p| Err(escaped_panic(&*p, &obligations)));
    match ran {
        Ok(r) => Ok(r),
        Err(e) => {
            // Already failing: the error is the news, not a report write.
            let _ = sink.finish(RunStatus::Error, e.exit_code(), Some(format!("{e:#}")));
            Err(e)
        }
    }
}

/// The error of a panic that escaped the run: exit 5 naming what may be
/// left when anything is still owed, else a harness error (1).
fn escaped_panic(p: &(dyn std::any::Any + Send), obligations: &Obligations) -> FatalError {
    let what = format!("the run panicked: {}", panic_message(p));
    let left = obligations.leftovers();
    if left.is_empty() {
        FatalError::Other(anyhow::anyhow!(what))
    } else {
        // One line: each hub's facts after its name, hubs apart by `;`.
        let left = left.to_string().replace("\n  ", " ").replace('\n', "; ");
        FatalError::HubModified(format!("{what}; may be left: {left}"))
    }
}

/// Open the reports: from here on, whatever ends the run, they are written
/// a last time with how it ended.
fn open_reports(cfg: &RunConfig) -> Arc<ReportSink> {
    let sink = Arc::new(
        ReportSink::new(cfg.reports.clone(), &cfg.plan, cfg.redactor.clone())
            .with_stream(json_stream(cfg)),
    );
    sink.watch(&cfg.safety.obligations);
    sink.activate();
    sink
}

/// The run once its reports exist, phase by phase: open the session, find
/// and start the hubs, name them, build the trials, ask for consent, run
/// the hubs, close the session under the connection gate.
fn run_with_reports(
    mut cfg: RunConfig,
    observer: Option<Observer>,
    sink: Arc<ReportSink>,
    started: Instant,
) -> Result<RunReport, FatalError> {
    let session = targets::open_session(&mut cfg)?;
    let found = targets::find_targets(&mut cfg, &session)?;
    listen_for_signals(&cfg, &session)?;
    let targets::Started {
        mut hubs,
        sims,
        sim_backups,
    } = targets::start_targets(&cfg, &session, &found, observer)?;
    targets::name_hubs(&cfg, &session, &mut hubs);
    let (trials, receivers) = trials::build_trials(&cfg, &hubs)?;
    if cfg.interactive {
        consent::ask_consent(&session.runtime, &mut hubs, &trials.expected, &cfg);
    }
    let tally = Arc::default();
    let workers = hub::spawn_hubs(&cfg, &session, hubs, &trials, receivers, &sink, &tally)?;
    // A panic while the trials run (a harness bug) ends the trials, not
    // the hubs: their channels close as it unwinds, each hub's thread
    // undoes what its hub owes, and the run goes on to the gate.
    let (mut harness_error, soak) = std::panic::catch_unwind(AssertUnwindSafe(|| {
        trials::run_cycles(&cfg, &session, trials, &sink, &tally)
    }))
    .unwrap_or_else(|p| {
        (
            Some(format!("the run panicked: {}", panic_message(&*p))),
            None,
        )
    });
    let rt = session.runtime.handle().clone();
    let mut reports = hub::join_hubs(workers, &rt, &sink, &mut harness_error);
    if cleanup::DebugPanic::from_env().gate {
        panic!("VEGEHUB_HARNESS_DEBUG_PANIC: the run fails on purpose before its gate");
    }
    let connections = gate::close_session(session, &cfg.conn, &sink);
    gate::stop_sims(&mut reports, sims);
    // Kept to the end: the simulated hubs' backups of this run.
    drop(sim_backups);

    Ok(RunReport {
        interrupted: cfg.safety.interrupt.signal(),
        hubs: reports,
        listed_only: false,
        elapsed: started.elapsed(),
        reports: Some(sink),
        connections: Some(connections),
        harness_error,
        soak,
    })
}

/// Listen for signals: from here on a Ctrl-C or SIGTERM stops the
/// scenarios and undoes what they changed; a second one exits at once.
fn listen_for_signals(cfg: &RunConfig, session: &targets::Session) -> Result<(), FatalError> {
    let _enter = session.runtime.enter();
    cfg.safety
        .listen_for_signals()
        .map_err(|e| FatalError::Other(anyhow::anyhow!("listening for Ctrl-C and SIGTERM: {e}")))
}

/// `--format json`: the harness writes its own JSON event stream on stdout
/// instead of libtest's lines.
fn json_stream(cfg: &RunConfig) -> bool {
    matches!(cfg.libtest.format, Some(libtest_mimic::FormatSetting::Json))
}
