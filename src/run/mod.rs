//! The harness run: one tokio runtime and one HTTP client for the whole run,
//! the plan turned into libtest-mimic trials, each hub's scenarios run in
//! order on that hub's own thread, and the session closed and awaited at the
//! end, then the connection gate: every connection the session opened must
//! close. Produces a `RunReport` that every report is rendered from. Uses
//! `client`, `ledger`, `scenario`, `sim` (to start the simulated hub as a
//! device).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use libtest_mimic::{Completion, Trial};
use tokio::runtime::Handle;

use std::sync::{Arc, Mutex};

use crate::error::FatalError;
use crate::plan::{ParamOverrides, Plan};
use crate::report::json::RunStatus;
use crate::report::model::{HubReport, RunReport};
use crate::report::sink::{ReportPaths, ReportSink};
use crate::safety::redact::Redactor;
use crate::scenario::facts::{display_name, unique_names};
use crate::scenario::{self, HubFacts, Options, Permission, Record, Scenario, Verdict};
use crate::session::client::{self, Contact, HubClient, Observer, SessionConfig};
use crate::session::ledger::{self, Ledger};

pub mod consent;

/// A validated run, built by `run_args` before any I/O.
pub struct RunConfig {
    pub targets: TargetSpec,
    /// `--jobs`: hubs in flight at once (`None`: all).
    pub jobs: Option<usize>,
    pub session: SessionConfig,
    /// Scenario parameters shared by every hub (permissions are set per hub).
    pub scenario: Options,
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
    /// The scenarios to run, in order, with their parameters and measurements.
    pub plan: Plan,
    /// Scenario parameters given on the command line (they win over the plan).
    pub overrides: ParamOverrides,
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
    /// (see [`discover`]).
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

/// THE discovery hook: with no target flag, the hubs come from an mDNS
/// browse and `select`. `--select MAC` reads each hub's MAC over the run's
/// own client, on the run's runtime (one session for the whole run).
fn discover(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    session: &SessionConfig,
    ledger: &Ledger,
    plan: &mut crate::discovery::select::DiscoverPlan,
) -> Result<Vec<(Target, crate::discovery::DiscoveredHub)>, FatalError> {
    use crate::discovery::select::{self, SelectError};
    let mac_of = |hub: crate::discovery::DiscoveredHub| {
        let (http, session, ledger) = (http.clone(), session.clone(), ledger.clone());
        async move {
            let target = device_target(&hub).ok()?;
            let hp = host_port(&target);
            ledger.set_scenario(&hp, Some("discovery"));
            let client = HubClient::new(http, format!("http://{hp}"), hp.clone(), session, None)
                .with_ledger(ledger.clone());
            let info = client.info(&["wifi"]).await;
            ledger.set_scenario(&hp, None);
            info.ok()?.wifi.map(|w| w.mac_addr)
        }
    };
    let hubs = runtime
        .block_on(select::discover_and_choose(plan, mac_of))
        .map_err(|e| match e {
            SelectError::Usage(m) => FatalError::Usage(m),
            SelectError::NoHub(m) => FatalError::NoHub(m),
        })?;
    hubs.into_iter()
        .map(|h| device_target(&h).map(|t| (t, h)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FatalError::NoHub(e.to_string()))
}

/// Where to reach a discovered hub (see `select::target_of`).
fn device_target(
    hub: &crate::discovery::DiscoveredHub,
) -> Result<Target, crate::discovery::select::SelectError> {
    crate::discovery::select::target_of(hub).map(|(host, port)| Target::Device { host, port })
}

fn host_port(t: &Target) -> String {
    match t {
        Target::Device { host, port } if host.contains(':') => format!("[{host}]:{port}"),
        Target::Device { host, port } => format!("{host}:{port}"),
        Target::Sim { profile } => profile.clone(),
    }
}

/// A hub to run against, with its client and permissions.
struct Hub {
    /// A real hub (not the in-process simulator): changes need consent.
    real: bool,
    /// What discovery said about it, when it was discovered.
    found: Option<crate::discovery::DiscoveredHub>,
    label: String,
    source: String,
    name: Option<String>,
    /// Its MAC when known before the run (a simulated hub's profile, or
    /// the identification of several hubs).
    mac: Option<crate::device::Mac>,
    /// The name it goes by in result lines and the summary.
    shown: String,
    client: HubClient,
    options: Options,
    ledger: Ledger,
    /// `--debug-leak`: leave a request in flight from the first scenario on.
    debug_leak: bool,
}

/// A trial asking its hub's thread to run one scenario of one cycle.
struct Job {
    cycle: u32,
    scenario: Scenario,
    reply: mpsc::Sender<Verdict>,
}

/// Run the plan. Returns the report, or a fatal error before any scenario
/// (bad profile, no target, a runtime that would not start).
pub fn run(cfg: RunConfig, observer: Option<Observer>) -> Result<RunReport, FatalError> {
    let started = Instant::now();
    if cfg.libtest.list {
        // Listing starts nothing and changes nothing. With several hubs
        // given by address, each is asked for its MAC (read-only), so the
        // names listed are the names the run prints and filters match.
        let n = match &cfg.targets {
            TargetSpec::Given(t) => t.len(),
            TargetSpec::Discover(_) => 1,
        };
        let names = match &cfg.targets {
            TargetSpec::Given(t) if !json_stream(&cfg) => {
                listed_names(t, &cfg.session, cfg.conn.budget)?
            }
            _ => Vec::new(),
        };
        let plan = cfg.scenarios();
        let names = &names;
        let trials = (0..n.max(1))
            .flat_map(|i| {
                plan.iter().map(move |&s| {
                    let t = Trial::test(s.name(), || Ok(()));
                    match names.get(i) {
                        Some(name) => t.with_kind(crate::report::escape::escape(name).into_owned()),
                        None if n > 1 => t.with_kind(format!("hub{}", i + 1)),
                        None => t,
                    }
                })
            })
            .collect::<Vec<_>>();
        let selected: Vec<(String, String)> = trials
            .iter()
            .filter(|t| !cfg.libtest.is_filtered_out(t))
            .map(|t| (t.kind().to_owned(), t.name().to_owned()))
            .collect();
        if selected.is_empty() {
            return Err(nothing_selected(&cfg.libtest));
        }
        if json_stream(&cfg) {
            // The stream names hubs by target, as its run events do.
            let hubs: Vec<Option<String>> = match &cfg.targets {
                TargetSpec::Given(t) => t.iter().map(|t| Some(host_port(t))).collect(),
                TargetSpec::Discover(_) => vec![None],
            };
            let names: Vec<&str> = plan
                .iter()
                .filter(|s| {
                    !cfg.libtest
                        .is_filtered_out(&Trial::test(s.name(), || Ok(())))
                })
                .map(|s| s.name())
                .collect();
            // A closed stdout ends a listing quietly.
            let _ = crate::report::stream::list(&mut std::io::stdout().lock(), &hubs, &names);
        } else {
            crate::report::text::list(&selected);
        }
        return Ok(RunReport {
            hubs: Vec::new(),
            interrupted: None,
            listed_only: true,
            elapsed: started.elapsed(),
            reports: None,
            connections: None,
            harness_error: None,
            soak: None,
        });
    }

    // The reports exist from here on: whatever ends the run, they are
    // written a last time with how it ended.
    let sink = Arc::new(
        ReportSink::new(cfg.reports.clone(), &cfg.plan, cfg.redactor.clone())
            .with_stream(json_stream(&cfg)),
    );
    sink.watch(&cfg.safety.obligations);
    sink.activate();
    match run_hubs(cfg, observer, sink.clone(), started) {
        Ok(r) => Ok(r),
        Err(e) => {
            // Already failing: the error is the news, not a report write.
            let _ = sink.finish(RunStatus::Error, e.exit_code(), Some(format!("{e:#}")));
            Err(e)
        }
    }
}

/// `--format json`: the harness writes its own JSON event stream on stdout
/// instead of libtest's lines.
fn json_stream(cfg: &RunConfig) -> bool {
    matches!(cfg.libtest.format, Some(libtest_mimic::FormatSetting::Json))
}

/// The run once its reports exist: start the hubs, run the plan, close the
/// session.
fn run_hubs(
    mut cfg: RunConfig,
    observer: Option<Observer>,
    sink: Arc<ReportSink>,
    started: Instant,
) -> Result<RunReport, FatalError> {
    let json = json_stream(&cfg);
    // One runtime for the whole run: the client belongs to it, and every
    // scenario runs on it through a Handle.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vegehub-harness-rt")
        .enable_all()
        .build()
        .map_err(|e| FatalError::Other(anyhow::anyhow!("starting the async runtime: {e}")))?;

    let mut sims = Vec::new();
    let mut hubs = Vec::new();
    let ledger = Ledger::new(cfg.conn.budget);
    // `.local` names the system resolver cannot resolve: the harness's own
    // mDNS finds them, and the client is told the address.
    if let TargetSpec::Given(targets) = &cfg.targets {
        let hosts: Vec<(String, u16)> = targets
            .iter()
            .filter_map(|t| match t {
                Target::Device { host, port } => Some((host.clone(), *port)),
                Target::Sim { .. } => None,
            })
            .collect();
        let (resolved, how) = runtime.block_on(crate::discovery::local_names::resolve_all(
            &hosts,
            cfg.mdns_timeout,
        ));
        for r in how {
            // Shown with -v; always when it failed (it is why the hub will
            // be unreachable).
            if cfg.verbose || r.mdns.is_err() {
                crate::report::term::err(&format!("vegehub-harness: {}", r.describe()));
            }
        }
        cfg.session.resolved = resolved;
    }
    // How far the harness itself falls behind, so its lag is never a hub's.
    let lag = crate::session::lag::LagMonitor::start(runtime.handle());
    let http = {
        let _enter = runtime.enter();
        client::build_http(&cfg.session, ledger.new_session())
            .map_err(|e| FatalError::Other(e.into()))?
    };
    // A discovered hub brings its name, addresses and TXT for the reports.
    let targets: Vec<(Target, Option<crate::discovery::DiscoveredHub>)> =
        match std::mem::replace(&mut cfg.targets, TargetSpec::Given(Vec::new())) {
            TargetSpec::Given(t) => t.into_iter().map(|t| (t, None)).collect(),
            TargetSpec::Discover(mut plan) => {
                discover(&runtime, &http, &cfg.session, &ledger, &mut plan)?
                    .into_iter()
                    .map(|(t, h)| (t, Some(h)))
                    .collect()
            }
        };
    // From here on a Ctrl-C or SIGTERM stops the scenarios and undoes
    // what they changed; a second one exits at once.
    let safety = cfg.safety.clone();
    {
        let _enter = runtime.enter();
        safety.listen_for_signals().map_err(|e| {
            FatalError::Other(anyhow::anyhow!("listening for Ctrl-C and SIGTERM: {e}"))
        })?;
    }
    // Backups of in-process simulated hubs go to a directory of this run,
    // not the user's backup dir: nothing real is there to restore.
    let mut sim_backups: Option<tempfile::TempDir> = None;
    for (t, found) in &targets {
        let (host_port, source, name, mac, sim_opts) = match t {
            Target::Device { .. } => {
                let hp = host_port(t);
                let perm = |allowed: bool, flag: &str| {
                    if allowed {
                        Permission::Allowed
                    } else {
                        Permission::Denied(format!("not enabled ({flag})"))
                    }
                };
                let opts = Options {
                    config_write: perm(cfg.allow_write_config, "--write-config"),
                    actuators: perm(cfg.allow_actuators, "--actuators"),
                    setup: perm(cfg.allow_setup, "--setup"),
                    safety: safety.clone(),
                    ..cfg.scenario.clone()
                };
                sims.push(None);
                let name = found.as_ref().map(|h| h.instance.clone());
                (hp, "device".to_owned(), name, None, opts)
            }
            Target::Sim { profile } => {
                let sim = SimHub::start(profile)?;
                let hp = sim.addr.to_string();
                let name = sim.name.clone();
                let mac = Some(sim.mac.clone());
                sims.push(Some(sim));
                let dir = match &sim_backups {
                    Some(d) => d.path().to_owned(),
                    None => {
                        let d = tempfile::Builder::new()
                            .prefix("vegehub-harness-sim-backups-")
                            .tempdir()
                            .map_err(|e| {
                                FatalError::Other(anyhow::anyhow!(
                                    "a backup dir for the simulated hub: {e}"
                                ))
                            })?;
                        let p = d.path().to_owned();
                        sim_backups = Some(d);
                        p
                    }
                };
                // The simulated hub has nothing attached: run everything.
                let opts = Options {
                    actuators: Permission::Allowed,
                    setup: Permission::Allowed,
                    safety: safety.with_backup_dir(dir),
                    ..cfg.scenario.clone()
                };
                (
                    hp,
                    format!("simulator (profile {profile})"),
                    Some(name),
                    mac,
                    opts,
                )
            }
        };
        let client = HubClient::new(
            http.clone(),
            format!("http://{host_port}"),
            host_port.clone(),
            cfg.session.clone(),
            observer.clone(),
        )
        .with_ledger(ledger.clone())
        .with_lag_monitor(lag.clone())
        .with_session_per_request(cfg.conn.debug_session_per_request);
        hubs.push(Hub {
            real: matches!(t, Target::Device { .. }),
            label: host_port,
            source,
            name,
            mac,
            shown: String::new(),
            client,
            options: sim_opts,
            found: found.clone(),
            ledger: ledger.clone(),
            debug_leak: cfg.conn.debug_leak,
        });
    }

    // Several hubs: the ones known only by their address are asked for
    // their MAC, so every result line names its hub.
    let several = hubs.len() > 1;
    if several {
        let unnamed: Vec<usize> = (0..hubs.len())
            .filter(|&i| hubs[i].name.is_none() && hubs[i].mac.is_none())
            .collect();
        let clients: Vec<HubClient> = unnamed.iter().map(|&i| hubs[i].client.clone()).collect();
        let macs = runtime.block_on(identify(&clients, &ledger, &cfg.session));
        for (i, mac) in unnamed.into_iter().zip(macs) {
            hubs[i].mac = mac;
        }
    }
    let shown = unique_names(
        hubs.iter()
            .map(|h| display_name(h.name.as_deref(), h.mac.as_ref(), &h.label))
            .collect(),
    );
    for (hub, shown) in hubs.iter_mut().zip(shown) {
        safety.obligations.set_label(
            &hub.label,
            if shown == hub.label {
                shown.clone()
            } else {
                format!("{shown} at {}", hub.label)
            },
        );
        hub.shown = shown;
    }

    // Trials, and per hub the scenarios the filter keeps (same predicate
    // libtest-mimic applies), so the hub's thread knows what to expect.
    // Trials go scenario by scenario across a batch of --jobs hubs (all by
    // default), one test thread per hub of a batch, so every hub of a batch
    // makes progress at once and no more than --jobs hubs are in flight.
    let plan = Arc::new(cfg.plan.clone());
    let jobs = jobs_for(cfg.jobs, hubs.len());
    let mut libtest = cfg.libtest.clone();
    libtest.test_threads = Some(libtest.test_threads.map_or(jobs, |t| t.min(jobs)));
    let soak = cfg.soak.repeat.is_soak();
    let mut trials = Vec::new();
    // What each cycle runs, in order: (hub, scenario, kind); a soak's
    // cycles repeat it with the cycle in the kind.
    let mut selected: Vec<(usize, Scenario, String)> = Vec::new();
    let mut filtered_out = 0;
    let mut expected = vec![Vec::new(); hubs.len()];
    let (senders, receivers): (Vec<_>, Vec<_>) =
        hubs.iter().map(|_| mpsc::channel::<Job>()).unzip();
    let indices: Vec<usize> = (0..hubs.len()).collect();
    for batch in indices.chunks(jobs) {
        for s in cfg.scenarios() {
            for &i in batch {
                let mut trial = Trial::test(s.name(), || Ok(()));
                if several {
                    trial =
                        trial.with_kind(crate::report::escape::escape(&hubs[i].shown).into_owned());
                }
                if !libtest.is_filtered_out(&trial) {
                    expected[i].push(s);
                    selected.push((i, s, trial.kind().to_owned()));
                } else {
                    filtered_out += 1;
                }
                trials.push(trial);
            }
        }
    }
    // A filter that selects nothing is a mistake, said before any hub is
    // contacted.
    if selected.is_empty() {
        return Err(nothing_selected(&cfg.libtest));
    }
    drop(trials);
    let items_of = |cycle: u32| -> Vec<crate::report::text::Item> {
        selected
            .iter()
            .map(|(i, s, kind)| {
                let (tx, s) = (senders[*i].clone(), *s);
                crate::report::text::Item {
                    kind: match (soak, kind.is_empty()) {
                        (false, _) => kind.clone(),
                        (true, true) => format!("cycle {cycle}"),
                        (true, false) => format!("cycle {cycle} {kind}"),
                    },
                    name: s.name().to_owned(),
                    lane: *i,
                    job: Box::new(move || text_result(ask(&tx, cycle, s))),
                }
            })
            .collect()
    };
    if cfg.interactive {
        ask_consent(&runtime, &mut hubs, &expected, &cfg);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut workers = Vec::new();
    let debug_panic =
        std::env::var_os("VEGEHUB_HARNESS_DEBUG_PANIC").is_some_and(|v| v == "hub-thread");
    for ((hub, expected), rx) in hubs.into_iter().zip(expected.clone()).zip(receivers) {
        let handle = runtime.handle().clone();
        let label = hub.label.clone();
        let facts = HubFacts {
            name: hub.name.clone(),
            ..HubFacts::default()
        };
        let index = sink.add_hub(&hub.label, &facts, hub.found.as_ref());
        let ctx = PlanCx {
            plan: plan.clone(),
            overrides: cfg.overrides.clone(),
            sink: (sink.clone(), index),
            debug_panic,
            tally: tally.clone(),
        };
        let worker = std::thread::Builder::new()
            .name(format!("hub {label}"))
            .spawn(move || hub_thread(handle, hub, expected, rx, ctx))
            .map_err(|e| {
                FatalError::Other(anyhow::anyhow!("starting the thread for {label}: {e}"))
            })?;
        workers.push(worker);
    }

    sink.start(expected.iter().map(Vec::len).sum());

    // The verdicts come from the records; the printed lines only count the
    // same trials. With --format json the harness's own stream replaces
    // libtest's lines, and this drives the hubs instead. The human text is
    // ours too: whole lines through the one terminal writer, which never
    // panics on a closed stdout (it stops the run instead, see main).
    // A soak runs the same selection cycle after cycle, over the same
    // session and hub threads; each cycle is measured when its last
    // scenario has ended.
    let mut harness_error = None;
    let mut cycles = Vec::new();
    let soak_started = Instant::now();
    let mut cycle = 1u32;
    while cfg.soak.repeat.another(cycle, soak_started.elapsed())
        && !safety.interrupt.is_interrupted()
        && harness_error.is_none()
    {
        let cycle_started = Instant::now();
        let opened_before = ledger.open_now().0;
        if json {
            drive(
                senders.clone(),
                expected.clone(),
                cycle,
                libtest.test_threads == Some(1),
                jobs,
            );
            if crate::report::stream::stdout_closed() {
                harness_error =
                    Some("stdout closed (broken pipe): the run stopped early".to_owned());
            }
        } else {
            let parallel = libtest.test_threads.unwrap_or(jobs);
            crate::report::text::run(libtest.quiet, items_of(cycle), filtered_out, parallel);
        }
        if soak {
            let (total, open) = ledger.open_now();
            let t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
            cycles.push(crate::report::soak_record::Cycle {
                cycle,
                passed: t.passed,
                failed: t.failures.len(),
                failures: t.failures,
                duration: cycle_started.elapsed(),
                connections_opened: total - opened_before,
                connections_total: total,
                connections_open: open,
                sockets_open: crate::report::soak_record::sockets_open(),
                rss_bytes: crate::report::soak_record::rss_bytes(),
            });
            if let Some(leak) = cfg.soak.debug_leak {
                leak.leak();
            }
        }
        cycle += 1;
    }
    // No more cycles: each hub's thread ends when its channel closes.
    drop(senders);
    let soak_report = soak.then(|| crate::report::soak_record::SoakReport::new(cycles));
    if let Some(r) = &soak_report {
        sink.set_soak(r);
    }

    let mut reports = Vec::new();
    for w in workers {
        // A hub thread only panics on a harness bug outside any scenario;
        // the run still closes its session and writes its reports.
        match w.join() {
            Ok(r) => reports.push(r),
            Err(p) => {
                harness_error.get_or_insert(format!(
                    "a hub thread panicked: {}",
                    scenario::setup::panic_message(&*p)
                ));
            }
        }
    }

    // Close the session: the last client handle goes, and its connection
    // tasks end on the still-running runtime. The gate then waits, with a
    // deadline, until the socket table shows every connection closed; one
    // still open is a leak. Only then does the runtime shut down (which
    // would close any socket a task still held, hiding the leak), bounded
    // so a stuck resolver cannot hang the exit.
    drop(http);
    let connections = runtime.block_on(ledger.settle(cfg.conn.close_timeout));
    sink.set_ledger(&connections);
    runtime.shutdown_timeout(Duration::from_secs(5));

    // The simulated hubs stop last: the harness's side is closed by now.
    for (rep, sim) in reports.iter_mut().zip(sims) {
        if let Some(sim) = sim {
            rep.sim_note = Some(sim.stop());
        }
    }

    Ok(RunReport {
        interrupted: safety.interrupt.signal(),
        hubs: reports,
        listed_only: false,
        elapsed: started.elapsed(),
        reports: Some(sink),
        connections: Some(connections),
        harness_error,
        soak: soak_report,
    })
}

/// Ask, per real hub and kind of change that will run on it and that no
/// flag allowed, whether it may run; a yes lifts that hub's denial.
fn ask_consent(
    runtime: &tokio::runtime::Runtime,
    hubs: &mut [Hub],
    expected: &[Vec<Scenario>],
    cfg: &RunConfig,
) {
    use consent::{Asker, Change};
    // A Ctrl-C at a question ends the questions (everything left is no)
    // and the run stops as usual.
    let interrupt = cfg.safety.interrupt.clone();
    let mut ask = |q: &str| crate::report::term::ask(q, &|| interrupt.is_interrupted());
    let mut say = |s: &str| crate::report::term::err(s);
    let mut asker = Asker::new(&mut ask, &mut say);
    for (hub, expected) in hubs.iter_mut().zip(expected) {
        if !hub.real {
            continue;
        }
        let pending: Vec<(Change, &crate::plan::Step)> = expected
            .iter()
            .filter_map(|&s| {
                let change = Change::of(s)?;
                let step = cfg.plan.steps.iter().find(|st| st.scenario() == s)?;
                let denied = match change {
                    Change::ConfigWrite => &hub.options.config_write,
                    Change::Actuators => &hub.options.actuators,
                    Change::Setup => &hub.options.setup,
                };
                (step.denied_by_plan().is_none() && *denied != Permission::Allowed)
                    .then_some((change, step))
            })
            .collect();
        if pending.is_empty() {
            continue;
        }
        let id = if pending.iter().all(|(c, _)| asker.settled(*c)) {
            consent::HubId::default()
        } else {
            hub.ledger.set_scenario(&hub.label, Some("identify"));
            let id = runtime.block_on(consent::identify(
                &hub.client,
                hub.name.clone(),
            ));
            hub.ledger.set_scenario(&hub.label, None);
            id
        };
        for (change, step) in pending {
            let o = step.options(&hub.options, &cfg.overrides);
            let what = change.what_happens(&o, id.relays);
            if asker.allow(&id, change, &what) {
                let p = match change {
                    Change::ConfigWrite => &mut hub.options.config_write,
                    Change::Actuators => &mut hub.options.actuators,
                    Change::Setup => &mut hub.options.setup,
                };
                *p = Permission::Allowed;
            } else {
                let p = match change {
                    Change::ConfigWrite => &mut hub.options.config_write,
                    Change::Actuators => &mut hub.options.actuators,
                    Change::Setup => &mut hub.options.setup,
                };
                *p = Permission::Denied(format!(
                    "not allowed at the prompt ({} allows it)",
                    change.flag()
                ));
            }
        }
    }
}

/// The error when the filter and `--skip` leave nothing to run.
fn nothing_selected(args: &libtest_mimic::Arguments) -> FatalError {
    let mut what = Vec::new();
    if let Some(f) = &args.filter {
        what.push(format!(
            "filter {f:?}{}",
            if args.exact { " (--exact)" } else { "" }
        ));
    }
    for s in &args.skip {
        what.push(format!("--skip {s:?}"));
    }
    FatalError::NothingSelected(format!(
        "{} selected no scenario (scenarios of this plan: see --list); nothing was run",
        what.join(" and ")
    ))
}

fn text_result(r: Result<Completion, libtest_mimic::Failed>) -> crate::report::text::TrialResult {
    use crate::report::text::TrialResult;
    match r {
        Ok(Completion::Completed) => TrialResult::Passed,
        Ok(Completion::Ignored { reason }) => TrialResult::Ignored(reason.unwrap_or_default()),
        Err(f) => TrialResult::Failed(f.message().unwrap_or_default().to_owned()),
    }
}

/// `--format json`: ask each hub's thread for its scenarios in plan order,
/// one driver per hub (or all in turn with `--test-threads 1`), until done
/// or stdout is closed.
fn drive(
    senders: Vec<mpsc::Sender<Job>>,
    expected: Vec<Vec<Scenario>>,
    cycle: u32,
    one_thread: bool,
    jobs: usize,
) {
    let closed = crate::report::stream::stdout_closed;
    if one_thread {
        let longest = expected.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..longest {
            for (tx, list) in senders.iter().zip(&expected) {
                if let Some(&s) = list.get(k) {
                    if closed() {
                        return;
                    }
                    let _ = ask(tx, cycle, s);
                }
            }
        }
        return;
    }
    // --jobs: a batch of hubs at a time.
    let mut hubs: Vec<_> = senders.into_iter().zip(expected).collect();
    while !hubs.is_empty() {
        let rest = hubs.split_off(jobs.min(hubs.len()));
        std::thread::scope(|scope| {
            for (tx, list) in hubs {
                scope.spawn(move || {
                    for s in list {
                        if closed() {
                            break;
                        }
                        let _ = ask(&tx, cycle, s);
                    }
                });
            }
        });
        hubs = rest;
    }
}

/// Hubs in flight at once: `--jobs`, at most the number of hubs; all of
/// them by default.
fn jobs_for(jobs: Option<usize>, hubs: usize) -> usize {
    jobs.unwrap_or(hubs).clamp(1, hubs.max(1))
}

/// How long identifying a hub may take: it only names the hub, so a hub
/// that does not answer soon keeps its address as its name (and its
/// scenarios say why).
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Several hubs given by address: ask each for its MAC (one read-only
/// `info/get` of the wifi section, all at once), so that result lines,
/// `--list` and the summary can name it. `None` where no MAC came back.
/// The answer is not kept in any scenario's record.
async fn identify(
    clients: &[HubClient],
    ledger: &Ledger,
    session: &SessionConfig,
) -> Vec<Option<crate::device::Mac>> {
    let asks = clients.iter().map(|c| async move {
        ledger.set_scenario(c.hub(), Some("identify"));
        let client = c.with_limits(
            IDENTIFY_TIMEOUT.min(session.request_timeout),
            session.retries,
        );
        let info = client.info(&["wifi"]).await;
        ledger.set_scenario(c.hub(), None);
        let _ = c.take_exchanges();
        let _ = c.take_incidents();
        info.ok()
            .and_then(|i| i.wifi)
            .and_then(|w| crate::device::Mac::parse(&w.mac_addr))
    });
    futures_util::future::join_all(asks).await
}

/// The names `--list` shows for the hubs of a run: the names the run
/// itself gives them (one hub has none: its lines carry no hub). Several
/// hubs given by address are asked for their MAC first, as the run does.
fn listed_names(
    targets: &[Target],
    session: &SessionConfig,
    budget: usize,
) -> Result<Vec<String>, FatalError> {
    if targets.len() < 2 {
        return Ok(Vec::new());
    }
    let mut names: Vec<(Option<String>, Option<crate::device::Mac>, String)> = Vec::new();
    for t in targets {
        match t {
            Target::Sim { profile } => {
                let p = crate::sim::Profile::load(profile)
                    .map_err(|e| FatalError::Usage(format!("--sim {profile}: {e:#}")))?;
                names.push((
                    Some(p.name().to_owned()),
                    Some(p.mac().clone()),
                    String::new(),
                ));
            }
            Target::Device { .. } => names.push((None, None, host_port(t))),
        }
    }
    let devices: Vec<usize> = (0..targets.len())
        .filter(|&i| matches!(targets[i], Target::Device { .. }))
        .collect();
    if !devices.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FatalError::Other(anyhow::anyhow!("starting the async runtime: {e}")))?;
        let ledger = Ledger::new(budget);
        let http = {
            let _enter = runtime.enter();
            client::build_http(session, ledger.new_session())
                .map_err(|e| FatalError::Other(e.into()))?
        };
        let clients: Vec<HubClient> = devices
            .iter()
            .map(|&i| {
                let hp = &names[i].2;
                HubClient::new(
                    http.clone(),
                    format!("http://{hp}"),
                    hp.clone(),
                    session.clone(),
                    None,
                )
                .with_ledger(ledger.clone())
            })
            .collect();
        let macs = runtime.block_on(identify(&clients, &ledger, session));
        for (i, mac) in devices.into_iter().zip(macs) {
            names[i].1 = mac;
        }
        drop(clients);
        drop(http);
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    Ok(unique_names(
        names
            .iter()
            .map(|(n, m, a)| display_name(n.as_deref(), m.as_ref(), a))
            .collect(),
    ))
}

/// A trial's body: hand the scenario to its hub's thread and wait.
fn ask(
    tx: &mpsc::Sender<Job>,
    cycle: u32,
    scenario: Scenario,
) -> Result<Completion, libtest_mimic::Failed> {
    let (reply, answer) = mpsc::channel();
    tx.send(Job {
        cycle,
        scenario,
        reply,
    })
    .map_err(|_| "the hub's thread has stopped")?;
    match answer.recv() {
        Ok(Verdict::Pass) => Ok(Completion::Completed),
        Ok(Verdict::Skip(why)) => Ok(Completion::ignored_with(
            crate::report::escape::escape(&why).into_owned(),
        )),
        // libtest prints the message: hub text in it is escaped.
        Ok(Verdict::Fail(msg)) => Err(crate::report::escape::escape(&msg).into_owned().into()),
        Err(_) => Err("the hub's thread stopped before answering".into()),
    }
}

/// What a hub's thread takes from the plan: each scenario's parameters and
/// measurements, and where to record each scenario as it ends.
struct PlanCx {
    plan: Arc<Plan>,
    overrides: ParamOverrides,
    /// The reports and this hub's index in them.
    sink: (Arc<ReportSink>, usize),
    /// Test-only (`VEGEHUB_HARNESS_DEBUG_PANIC=hub-thread`): the hub's thread
    /// panics after its first scenario, outside any scenario: a harness
    /// error after the run began.
    debug_panic: bool,
    /// Verdicts of the cycle under way, over every hub (a soak's per-cycle
    /// pass/fail).
    tally: Arc<Mutex<Tally>>,
}

/// Verdicts of one cycle: passed (or skipped) and the failures.
#[derive(Default)]
struct Tally {
    passed: usize,
    /// `HUB SCENARIO: message`.
    failures: Vec<String>,
}

/// One hub's thread: run the expected scenarios in plan order, each when
/// its trial asks, on the run's runtime.
fn hub_thread(
    rt: Handle,
    hub: Hub,
    expected: Vec<Scenario>,
    rx: mpsc::Receiver<Job>,
    ctx: PlanCx,
) -> HubReport {
    let started = Instant::now();
    let (sink, index) = (&ctx.sink.0, ctx.sink.1);
    let mut facts = HubFacts {
        name: hub.name.clone(),
        ..HubFacts::default()
    };
    let mut records = Vec::new();
    let mut waiting: HashMap<(u32, Scenario), mpsc::Sender<Verdict>> = HashMap::new();
    let safety = hub.options.safety.clone();
    let interrupt = safety.interrupt.clone();
    let mut first = true;
    // Cycle after cycle (one without a soak) until the trials stop coming.
    'plan: for cycle in 1u32.. {
        if expected.is_empty() {
            // Nothing of this hub's passes the filter: wait for the end.
            let _ = rx.recv();
            break;
        }
        for &s in &expected {
            // With several test threads, trials may ask out of order: keep the
            // early ones until their turn.
            let reply = loop {
                if let Some(r) = waiting.remove(&(cycle, s)) {
                    break r;
                }
                match rx.recv() {
                    Ok(job) => {
                        waiting.insert((job.cycle, job.scenario), job.reply);
                    }
                    Err(_) => break 'plan,
                }
            };
            let step = ctx
                .plan
                .steps
                .iter()
                .find(|st| st.scenario().name() == s.name())
                .expect("every expected scenario comes from the plan");
            let options = step.options(&hub.options, &ctx.overrides);
            let (timeout, retries) = step.limits(&ctx.overrides);
            let client = hub.client.with_limits(timeout, retries);
            if cycle == 1 {
                sink.scenario_started(index, s);
            }
            let scenario_started = Instant::now();
            let mut record = match hub.client.contact() {
                _ if interrupt.is_interrupted() => Record::not_run(
                    s,
                    Verdict::Skip(format!(
                        "not run: interrupted by {}",
                        interrupt.signal().expect("interrupted")
                    )),
                ),
                // Unreachable before any answer: later scenarios would only
                // pile up connection timeouts.
                Contact::Unreachable(why) => {
                    Record::not_run(s, Verdict::Skip(format!("hub unreachable ({why})")))
                }
                _ if step.denied_by_plan().is_some() => {
                    Record::not_run(s, Verdict::Skip(step.denied_by_plan().unwrap_or_default()))
                }
                // A signal stops the scenario where it is; what it changed is
                // in the obligations and is undone below.
                _ => std::panic::catch_unwind(AssertUnwindSafe(|| {
                    hub.ledger.set_scenario(&hub.label, Some(s.name()));
                    let _ = client.take_lagged();
                    if hub.debug_leak && first {
                        // At the start of the first scenario: the pool is empty,
                        // so the leak gets a connection of its own, opened
                        // during this scenario.
                        let _enter = rt.enter();
                        client.debug_leak();
                    }
                    // The scenario runs as a task on the runtime, beside the
                    // connection tasks it talks through, and this thread waits
                    // for its end: one wake-up per scenario, not per request
                    // (with hundreds of hubs, cross-thread wake-ups were most
                    // of the harness's CPU).
                    let (c, o, i) = (client.clone(), options.clone(), interrupt.clone());
                    let mut f = std::mem::take(&mut facts);
                    let task = rt.spawn(async move {
                        let r = tokio::select! {
                            r = s.run(&c, &mut f, &o) => r,
                            sig = i.wait() => {
                                // Stopped where it was: its true time, and what
                                // it exchanged and ran into so far.
                                let mut r = Record::not_run(
                                    s,
                                    Verdict::Fail(format!("interrupted by {sig}")),
                                );
                                r.duration = scenario_started.elapsed();
                                r.exchanges = c.take_exchanges();
                                r.incidents = c.take_incidents();
                                r
                            }
                        };
                        (r, f)
                    });
                    let (record, f) = match rt.block_on(task) {
                        Ok(done) => done,
                        // A panic in the scenario is this closure's panic.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(e) => std::panic::panic_any(format!("the scenario's task ended: {e}")),
                    };
                    facts = f;
                    hub.ledger.set_scenario(&hub.label, None);
                    record
                }))
                .unwrap_or_else(|p| {
                    let mut r = Record::not_run(
                        s,
                        Verdict::Fail(format!(
                            "{s} panicked: {}",
                            scenario::setup::panic_message(&*p)
                        )),
                    );
                    r.duration = scenario_started.elapsed();
                    r.exchanges = client.take_exchanges();
                    r.incidents = client.take_incidents();
                    r
                }),
            };
            // A scenario that failed on a timeout the harness caused (it fell
            // behind even after giving the hub its time again) is
            // inconclusive: the hub is not blamed for the harness's load.
            let lagged = client.take_lagged();
            if let (Verdict::Fail(msg), Some(first)) = (&record.verdict, lagged.first()) {
                record.verdict = Verdict::Skip(format!(
                    "inconclusive, not counted against the hub: {first} (the scenario said: {msg})"
                ));
            }
            record = redact_record(record, &safety.redactor);
            // The plan's measurements for this scenario: each judged on its own;
            // any that fails fails the scenario. A skipped scenario measured
            // nothing.
            if !matches!(record.verdict, Verdict::Skip(_)) {
                record.measurements = step.measure(&facts);
                if let Some(msg) =
                    crate::scenario::measurement::failure_message(&record.measurements)
                {
                    record.verdict = match record.verdict {
                        Verdict::Fail(m) => Verdict::Fail(format!("{m}; {msg}")),
                        _ => Verdict::Fail(msg),
                    };
                }
            }
            first = false;
            let verdict = record.verdict.clone();
            {
                let mut t = ctx.tally.lock().unwrap_or_else(|e| e.into_inner());
                match &verdict {
                    Verdict::Fail(m) => t.failures.push(format!("{} {s}: {m}", hub.label)),
                    _ => t.passed += 1,
                }
            }
            // A soak keeps the first cycle whole and, of later cycles, what
            // failed or left something owed: memory stays flat over a long
            // soak, and every failure is still in the reports.
            let keep = cycle == 1
                || matches!(record.verdict, Verdict::Fail(_))
                || record.cleanup.iter().any(|c| !c.verified);
            if keep {
                if cycle > 1 {
                    if let Verdict::Fail(m) = &record.verdict {
                        record.verdict = Verdict::Fail(format!("cycle {cycle}: {m}"));
                    }
                }
                sink.scenario_done(index, &facts, &record);
                records.push(record);
            }
            let _ = reply.send(verdict);
            if ctx.debug_panic {
                panic!("VEGEHUB_HARNESS_DEBUG_PANIC: the hub's thread fails on purpose");
            }
        }
    }
    // Another device answering at this address stops every write to it;
    // what is owed stays owed, named with both MACs.
    if let Some((expected, got)) = hub.client.identity_changed() {
        safety
            .obligations
            .identity_changed(&hub.label, expected.to_string(), got.to_string());
    }
    // Whatever the scenarios left owed (an interruption, an error, a
    // panic) is undone now, with cleanup's own timeouts and retries.
    let undo = (!safety.obligations.debt(&hub.label).is_clear()).then(|| {
        hub.ledger.set_scenario(&hub.label, Some("cleanup"));
        let undo = rt.block_on(safety.settle(&hub.label, &hub.client));
        hub.ledger.set_scenario(&hub.label, None);
        undo
    });
    let elapsed = started.elapsed();
    sink.hub_done(index, elapsed, undo.as_ref());
    // What identified the hub before the run, if no scenario read it.
    if facts.mac.is_none() {
        facts.mac = hub.mac.clone();
    }
    HubReport {
        shown: hub.shown,
        elapsed,
        undo,
        base_url: hub.client.base_url().to_owned(),
        contact: hub.client.contact(),
        label: hub.label,
        source: hub.source,
        facts,
        records,
        sim_note: None,
    }
}

/// Keep secrets out of every report: learn them from the configs the
/// scenario exchanged, then scrub the texts a report prints.
fn redact_record(mut r: Record, redactor: &crate::safety::redact::Redactor) -> Record {
    for x in &r.exchanges {
        if let Some(b) = &x.request_body {
            redactor.learn(b);
        }
        if let Some(Ok(v)) = x
            .response_body
            .as_deref()
            .map(serde_json::from_str::<serde_json::Value>)
        {
            redactor.learn(&v);
        }
    }
    r.verdict = match r.verdict {
        Verdict::Fail(m) => Verdict::Fail(redactor.scrub(&m)),
        Verdict::Skip(m) => Verdict::Skip(redactor.scrub(&m)),
        v => v,
    };
    r.notes = r.notes.iter().map(|n| redactor.scrub(n)).collect();
    for c in &mut r.cleanup {
        c.detail = redactor.scrub(&c.detail);
    }
    r
}

/// The simulated hub, started as a device on its own thread and runtime.
struct SimHub {
    addr: std::net::SocketAddr,
    name: String,
    mac: crate::device::Mac,
    handle: crate::sim::SimHandle,
}

impl SimHub {
    fn start(profile: &str) -> Result<SimHub, FatalError> {
        let p = crate::sim::Profile::load(profile)
            .map_err(|e| FatalError::Usage(format!("--sim {profile}: {e:#}")))?;
        let name = p.name().to_owned();
        let mac = p.mac().clone();
        let mut opts = crate::sim::SimOptions::new(p);
        opts.bind = (std::net::Ipv4Addr::LOCALHOST, 0).into();
        opts.advertise = false;
        let handle = crate::sim::start_with(opts).map_err(|e| {
            FatalError::Other(anyhow::anyhow!(
                "starting the simulated hub ({profile}): {e}"
            ))
        })?;
        Ok(SimHub {
            addr: handle.addr(),
            name,
            mac,
            handle,
        })
    }

    /// Shut the simulator down; say what it saw.
    /// Called after the session is closed: the simulator's own count of
    /// open connections must drop to zero (waited for with a deadline, as
    /// it sees each close a moment after the harness makes it).
    fn stop(self) -> String {
        self.handle
            .wait_for(Duration::from_secs(2), |s| s.open == 0);
        let s = self.handle.stats();
        self.handle.shutdown();
        format!(
            "simulator: {} connection(s) accepted, requests per connection {:?}, {} request(s); \
             {} still open after the session closed",
            s.accepted, s.requests_per_connection, s.requests, s.open
        )
    }
}
