//! The hubs a run talks to: the run's one session (runtime, connection
//! ledger, HTTP client, `.local` names resolved), the targets given or
//! discovered, each started as a [`Hub`] with its client and permissions
//! (a simulated hub started in-process, on its own thread and runtime), and
//! several hubs named by their MAC.

use std::time::Duration;

use crate::error::FatalError;
use crate::scenario::facts::{display_name, unique_names};
use crate::scenario::{Options, Permission};
use crate::session::client::{self, HubClient, Observer, SessionConfig};
use crate::session::lag::LagMonitor;
use crate::session::ledger::Ledger;

use super::{RunConfig, Target, TargetSpec};

/// The run's session: one runtime for the whole run (the client belongs to
/// it, and every scenario runs on it through a Handle), the ledger that
/// accounts for every connection, and the one HTTP client.
pub(super) struct Session {
    pub(super) http: reqwest::Client,
    /// How far the harness itself falls behind, so its lag is never a hub's.
    pub(super) lag: LagMonitor,
    pub(super) ledger: Ledger,
    pub(super) runtime: tokio::runtime::Runtime,
}

/// Open the session: start the runtime, resolve the `.local` names the
/// system resolver cannot (the harness's own mDNS finds them, and the client
/// is told the address), build the client.
pub(super) fn open_session(cfg: &mut RunConfig) -> Result<Session, FatalError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("vegehub-harness-rt")
        .enable_all()
        .build()
        .map_err(|e| FatalError::Other(anyhow::anyhow!("starting the async runtime: {e}")))?;
    let ledger = Ledger::new(cfg.conn.budget);
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
    let lag = LagMonitor::start(runtime.handle());
    let http = {
        let _enter = runtime.enter();
        client::build_http(&cfg.session, ledger.new_session())
            .map_err(|e| FatalError::Other(e.into()))?
    };
    Ok(Session {
        http,
        lag,
        ledger,
        runtime,
    })
}

/// A target and, when it was discovered, what discovery said about it (its
/// name, addresses and TXT, for the reports).
pub(super) type Found = Vec<(Target, Option<crate::discovery::DiscoveredHub>)>;

/// Find the targets: the ones given, or (no target flag) the hubs
/// discovered and chosen.
pub(super) fn find_targets(cfg: &mut RunConfig, session: &Session) -> Result<Found, FatalError> {
    Ok(
        match std::mem::replace(&mut cfg.targets, TargetSpec::Given(Vec::new())) {
            TargetSpec::Given(t) => t.into_iter().map(|t| (t, None)).collect(),
            TargetSpec::Discover(mut plan) => discover(
                &session.runtime,
                &session.http,
                &cfg.session,
                &session.ledger,
                &mut plan,
            )?
            .into_iter()
            .map(|(t, h)| (t, Some(h)))
            .collect(),
        },
    )
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

/// `host:port` of a device target (`[v6]:port`), a simulated hub's profile.
pub(super) fn host_port(t: &Target) -> String {
    match t {
        Target::Device { host, port } if host.contains(':') => format!("[{host}]:{port}"),
        Target::Device { host, port } => format!("{host}:{port}"),
        Target::Sim { profile } => profile.clone(),
    }
}

/// A hub to run against, with its client and permissions.
pub(super) struct Hub {
    /// A real hub (not the in-process simulator): changes need consent.
    pub(super) real: bool,
    /// What discovery said about it, when it was discovered.
    pub(super) found: Option<crate::discovery::DiscoveredHub>,
    pub(super) label: String,
    pub(super) source: String,
    pub(super) name: Option<String>,
    /// Its MAC when known before the run (a simulated hub's profile, or
    /// the identification of several hubs).
    pub(super) mac: Option<crate::device::Mac>,
    /// The name it goes by in result lines and the summary.
    pub(super) shown: String,
    pub(super) client: HubClient,
    pub(super) options: Options,
    pub(super) ledger: Ledger,
    /// `--debug-leak`: leave a request in flight from the first scenario on.
    pub(super) debug_leak: bool,
}

/// The hubs of a run once started, in target order.
pub(super) struct Started {
    pub(super) hubs: Vec<Hub>,
    /// The simulated hubs started for the run, beside their hubs (`None`
    /// for a device): stopped after the session closed.
    pub(super) sims: Vec<Option<SimHub>>,
    /// Backups of in-process simulated hubs go to a directory of this run,
    /// not the user's backup dir: nothing real is there to restore.
    pub(super) sim_backups: Option<tempfile::TempDir>,
}

/// Start the targets: each becomes a [`Hub`] with its client and
/// permissions; a simulated hub is started in-process first.
pub(super) fn start_targets(
    cfg: &RunConfig,
    session: &Session,
    targets: &Found,
    observer: Option<Observer>,
) -> Result<Started, FatalError> {
    let safety = &cfg.safety;
    let mut sims = Vec::new();
    let mut hubs = Vec::new();
    let mut sim_backups: Option<tempfile::TempDir> = None;
    for (t, found) in targets {
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
                    ..Options::default()
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
                    ..Options::default()
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
            session.http.clone(),
            format!("http://{host_port}"),
            host_port.clone(),
            cfg.session.clone(),
            observer.clone(),
        )
        .with_ledger(session.ledger.clone())
        .with_lag_monitor(session.lag.clone())
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
            ledger: session.ledger.clone(),
            debug_leak: cfg.conn.debug_leak,
        });
    }
    Ok(Started {
        hubs,
        sims,
        sim_backups,
    })
}

/// Name the hubs: with several, the ones known only by their address are
/// asked for their MAC, so every result line names its hub; each gets a
/// unique name, which its undo obligations carry too.
pub(super) fn name_hubs(cfg: &RunConfig, session: &Session, hubs: &mut [Hub]) {
    if hubs.len() > 1 {
        let unnamed: Vec<usize> = (0..hubs.len())
            .filter(|&i| hubs[i].name.is_none() && hubs[i].mac.is_none())
            .collect();
        let clients: Vec<HubClient> = unnamed.iter().map(|&i| hubs[i].client.clone()).collect();
        let macs = session
            .runtime
            .block_on(identify(&clients, &session.ledger, &cfg.session));
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
        cfg.safety.obligations.set_label(
            &hub.label,
            if shown == hub.label {
                shown.clone()
            } else {
                format!("{shown} at {}", hub.label)
            },
        );
        hub.shown = shown;
    }
}

/// How long identifying a hub may take: it only names the hub, so a hub
/// that does not answer soon keeps its address as its name (and its
/// scenarios say why).
const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(2);

/// Several hubs given by address: ask each for its MAC (one read-only
/// `info/get` of the wifi section, all at once), so that result lines,
/// `--list` and the summary can name it. `None` where no MAC came back.
/// The answer is not kept in any scenario's record.
pub(super) async fn identify(
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

/// The simulated hub, started as a device on its own thread and runtime.
pub(super) struct SimHub {
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
    pub(super) fn stop(self) -> String {
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
