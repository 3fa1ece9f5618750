//! mDNS discovery of hubs: browse `_vege._tcp.local.` with mdns-sd, merge
//! what responders say into one `DiscoveredHub` per instance, and decide
//! when the picture is complete. What a browse found is `hub`; choosing a
//! run's hubs from it is `select`; `.local` names for `--device` are
//! `local_names`. Uses `device` (and `session::wait`, for local_names'
//! progress); never prints.
//!
//! When to stop, in order: the `timeout` bound; `expect` hubs settled; or,
//! without `expect`, at least one hub found, every hub settled, and no new
//! hub for `quiet`. A hub is *settled* once it has an IPv4 address, or
//! `ipv4_grace` after it first resolved with IPv6 only (real responders and
//! mdns-sd may report one address family first; after the grace the hub is
//! usable over IPv6 with its interface scope). A hub resolved with IPv6
//! only also gets an A query for its host name: mdns-sd counts such a hub
//! as resolved and would not ask again, and the querier's browse retries
//! carry the service as a known answer, so a responder would never send the
//! missing A record by itself.
//!
//! The mdns-sd daemon has no `Drop`: `discover` always stops the browse,
//! shuts the daemon down and waits for both its thread and the event
//! forwarder before returning, whatever the outcome.

mod hub;
pub mod local_names;
mod other_case;
pub mod select;

pub use hub::{DiscoveredHub, Discovery, HubAddr, StopReason};

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use mdns_sd::{DaemonStatus, IfKind, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::device::mdns::{HubTxt, SERVICE_TYPE};

/// Default bound on a browse.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Stop this long after the last new hub (without `--expect`). Measured:
/// every responder on the link answers the first query within ~100 ms;
/// mdns-sd re-queries at ~1 s, so 1.2 s after the last new hub still
/// catches a hub that missed the first query and answers the second.
pub const QUIET_PERIOD: Duration = Duration::from_millis(1200);
/// How long a hub resolved with IPv6 addresses only waits for its IPv4 one.
/// A responder sends A and AAAA together; the second family arrives within
/// milliseconds when it exists at all.
pub const IPV4_GRACE: Duration = Duration::from_millis(500);
/// Bound on the daemon's shutdown.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// How to browse.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// Upper bound on the whole browse.
    pub timeout: Duration,
    /// Stop as soon as this many hubs are settled.
    pub expect: Option<usize>,
    /// Browse on this interface only.
    pub interface: Option<String>,
    /// Quiet period after the last new hub.
    pub quiet: Duration,
    /// Wait for IPv4 after an IPv6-only resolution.
    pub ipv4_grace: Duration,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            timeout: DEFAULT_TIMEOUT,
            expect: None,
            interface: None,
            quiet: QUIET_PERIOD,
            ipv4_grace: IPV4_GRACE,
        }
    }
}

/// Most hub instances one browse keeps: a responder announcing thousands
/// must not grow a browse (or an `--all` run) without bound.
pub const MAX_HUBS: usize = 256;

/// What the caller may show while browsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A new hub resolved; `count` hubs known now.
    Found { instance: String, count: usize },
    /// A known hub re-announced (addresses, TXT or port may have changed).
    Updated { instance: String, count: usize },
    /// A hub said goodbye during the browse.
    Removed { instance: String, count: usize },
}

/// Browsing could not start or broke.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `--interface` names no interface with an address.
    #[error("--interface {name}: no such interface with an address (have: {})", known.join(", "))]
    UnknownInterface { name: String, known: Vec<String> },
    /// The mdns-sd daemon failed.
    #[error("mdns browse: {0}")]
    Mdns(String),
}

/// Browse for hubs until the stop rule says the picture is complete, then
/// shut the mdns-sd daemon down and wait for it.
pub async fn discover(
    opts: &DiscoverOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<Discovery, DiscoveryError> {
    if let Some(name) = &opts.interface {
        check_interface(name)?;
    }
    let mdns = |e: mdns_sd::Error| DiscoveryError::Mdns(e.to_string());
    let daemon = ServiceDaemon::new().map_err(mdns)?;
    let browse = (|| {
        if let Some(name) = &opts.interface {
            daemon.disable_interface(IfKind::All)?;
            daemon.enable_interface(name.as_str())?;
        }
        daemon.browse(SERVICE_TYPE)
    })();
    let collected = match browse {
        Ok(events) => {
            let (tx, rx) = mpsc::channel(64);
            let probe = other_case::Probe::start(opts.interface.clone(), opts.timeout, tx.clone());
            // flume's async side is not enabled in mdns-sd; a blocking
            // forwarder ends when the daemon drops the browse channel.
            let forwarder = tokio::task::spawn_blocking(move || {
                while let Ok(ev) = events.recv() {
                    if let Some(ev) = BrowseEvent::from_mdns(ev) {
                        if tx.blocking_send(ev).is_err() {
                            break;
                        }
                    }
                }
            });
            // Hostname queries for IPv6-only hubs; their answers reach the
            // browse channel as updated resolutions. Kept until shutdown.
            let mut host_queries = Vec::new();
            let mut ask_ipv4 = |host: &str| {
                let ms = opts.timeout.as_millis() as u64;
                if let Ok(rx) = daemon.resolve_hostname(host, Some(ms)) {
                    host_queries.push(rx);
                }
            };
            let collected = collect(rx, opts, &mut progress, &mut ask_ipv4).await;
            probe.stop().await;
            let _ = daemon.stop_browse(SERVICE_TYPE);
            let stopped = stop_daemon(&daemon).await;
            let _ = forwarder.await;
            drop(host_queries);
            stopped.and(collected)
        }
        Err(e) => {
            let _ = stop_daemon(&daemon).await;
            Err(mdns(e))
        }
    };
    collected
}

fn check_interface(name: &str) -> Result<(), DiscoveryError> {
    let intfs = if_addrs::get_if_addrs().unwrap_or_default();
    if intfs.iter().any(|i| i.name == name) {
        return Ok(());
    }
    let known: BTreeSet<String> = intfs.into_iter().map(|i| i.name).collect();
    Err(DiscoveryError::UnknownInterface {
        name: name.to_string(),
        known: known.into_iter().collect(),
    })
}

async fn stop_daemon(daemon: &ServiceDaemon) -> Result<(), DiscoveryError> {
    let status = daemon
        .shutdown()
        .map_err(|e| DiscoveryError::Mdns(format!("daemon shutdown: {e}")))?;
    let answer = tokio::task::spawn_blocking(move || status.recv_timeout(SHUTDOWN_DEADLINE))
        .await
        .map_err(|e| DiscoveryError::Mdns(format!("daemon shutdown: {e}")))?;
    match answer {
        Ok(DaemonStatus::Shutdown) => Ok(()),
        Ok(other) => Err(DiscoveryError::Mdns(format!(
            "daemon shutdown: daemon answered {other:?}"
        ))),
        Err(e) => Err(DiscoveryError::Mdns(format!("daemon shutdown: {e}"))),
    }
}

/// What the collector consumes; built from mdns-sd events, or by tests.
#[derive(Debug, Clone)]
enum BrowseEvent {
    Resolved(Sighting),
    Removed { fullname: String },
}

/// One resolution of one instance, as mdns-sd reports it: the whole
/// current picture from its cache, not a delta.
#[derive(Debug, Clone)]
struct Sighting {
    fullname: String,
    host: String,
    port: u16,
    addrs: Vec<HubAddr>,
    txt: Vec<(String, String)>,
}

impl BrowseEvent {
    fn from_mdns(ev: ServiceEvent) -> Option<BrowseEvent> {
        match ev {
            ServiceEvent::ServiceResolved(r) => Some(BrowseEvent::Resolved(Sighting::from(*r))),
            ServiceEvent::ServiceRemoved(_, fullname) => Some(BrowseEvent::Removed { fullname }),
            _ => None,
        }
    }
}

impl From<ResolvedService> for Sighting {
    fn from(r: ResolvedService) -> Sighting {
        let mut addrs: Vec<HubAddr> = Vec::new();
        for a in r.get_addresses() {
            let (ip, intfs, scope_id) = match a {
                ScopedIp::V4(v4) => (
                    IpAddr::V4(*v4.addr()),
                    v4.interface_ids().iter().map(|i| i.name.clone()).collect(),
                    0,
                ),
                ScopedIp::V6(v6) => (
                    IpAddr::V6(*v6.addr()),
                    vec![v6.scope_id().name.clone()],
                    v6.scope_id().index,
                ),
                _ => continue,
            };
            let intfs: Vec<String> = intfs.into_iter().filter(|n| !n.is_empty()).collect();
            addrs.push(HubAddr {
                ip,
                interfaces: intfs,
                scope_id,
            });
        }
        Sighting {
            fullname: r.get_fullname().to_string(),
            host: r.get_hostname().to_string(),
            port: r.get_port(),
            addrs,
            txt: r
                .get_properties()
                .iter()
                .map(|p| (p.key().to_string(), p.val_str().to_string()))
                .collect(),
        }
    }
}

/// `Desk\.Temp._vege._tcp.local.` -> `Desk.Temp`.
fn instance_of(fullname: &str) -> String {
    let escaped = other_case::strip_type(fullname);
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Merge the same address learnt on several interfaces (the same hub seen
/// twice, or IPv6 link-local reported once per scope) and order them.
fn merge_addrs(addrs: Vec<HubAddr>) -> Vec<HubAddr> {
    let mut out: Vec<HubAddr> = Vec::new();
    for a in addrs {
        let same_scope = |o: &HubAddr| o.ip == a.ip && (a.ip.is_ipv4() || o.scope_id == a.scope_id);
        match out.iter_mut().find(|o| same_scope(o)) {
            Some(o) => {
                for i in a.interfaces {
                    if !o.interfaces.contains(&i) {
                        o.interfaces.push(i);
                    }
                }
            }
            None => out.push(a),
        }
    }
    for a in &mut out {
        a.interfaces.sort();
    }
    out.sort_by_key(|a| (a.rank(), a.ip, a.scope_id));
    out
}

struct Tracked {
    hub: DiscoveredHub,
    first_seen: Instant,
}

struct Collector<'a> {
    opts: &'a DiscoverOptions,
    start: Instant,
    hubs: Vec<Tracked>,
    last_new: Option<Instant>,
    /// Host names already asked for their IPv4 address.
    asked_ipv4: Vec<String>,
}

impl Collector<'_> {
    fn deadline(&self) -> Instant {
        self.start + self.opts.timeout
    }

    fn settled(&self, t: &Tracked, now: Instant) -> bool {
        t.hub.has_ipv4() || now >= t.first_seen + self.opts.ipv4_grace
    }

    fn stop(&self, now: Instant) -> Option<StopReason> {
        let settled = self.hubs.iter().filter(|t| self.settled(t, now)).count();
        match (self.opts.expect, self.last_new) {
            _ if self.hubs.len() >= MAX_HUBS => Some(StopReason::TooMany),
            (Some(n), _) if settled >= n => Some(StopReason::Expected),
            _ if now >= self.deadline() => Some(StopReason::Timeout),
            (None, Some(last)) if settled == self.hubs.len() && now >= last + self.opts.quiet => {
                Some(StopReason::Quiet)
            }
            _ => None,
        }
    }

    /// Host names of IPv6-only hubs not asked for IPv4 yet; marks them asked.
    fn hosts_missing_ipv4(&mut self) -> Vec<String> {
        let missing: Vec<String> = self
            .hubs
            .iter()
            .filter(|t| !t.hub.has_ipv4() && !t.hub.host.is_empty())
            .map(|t| t.hub.host.clone())
            .filter(|h| !self.asked_ipv4.contains(h))
            .collect();
        self.asked_ipv4.extend(missing.iter().cloned());
        missing
    }

    /// The next instant at which `stop` may change its answer without an event.
    fn next_wake(&self, now: Instant) -> Instant {
        let mut wake = self.deadline();
        if let (None, Some(last)) = (self.opts.expect, self.last_new) {
            wake = wake.min(last + self.opts.quiet);
        }
        for t in &self.hubs {
            let grace_end = t.first_seen + self.opts.ipv4_grace;
            if !t.hub.has_ipv4() && grace_end > now {
                wake = wake.min(grace_end);
            }
        }
        wake
    }

    fn apply(&mut self, ev: BrowseEvent, now: Instant) -> Option<Progress> {
        match ev {
            BrowseEvent::Resolved(s) => {
                let instance = instance_of(&s.fullname);
                let hub_txt =
                    HubTxt::from_pairs(s.txt.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let addrs = merge_addrs(s.addrs);
                let known = self
                    .hubs
                    .iter_mut()
                    .find(|t| t.hub.fullname.eq_ignore_ascii_case(&s.fullname));
                match known {
                    Some(t) => {
                        t.hub.host = s.host;
                        t.hub.port = s.port;
                        t.hub.addresses = addrs;
                        t.hub.txt = s.txt;
                        t.hub.hub_txt = hub_txt;
                        Some(Progress::Updated {
                            instance,
                            count: self.hubs.len(),
                        })
                    }
                    None => {
                        self.hubs.push(Tracked {
                            hub: DiscoveredHub {
                                instance: instance.clone(),
                                fullname: s.fullname,
                                host: s.host,
                                port: s.port,
                                addresses: addrs,
                                txt: s.txt,
                                hub_txt,
                                resolved_after: now - self.start,
                            },
                            first_seen: now,
                        });
                        self.last_new = Some(now);
                        Some(Progress::Found {
                            instance,
                            count: self.hubs.len(),
                        })
                    }
                }
            }
            BrowseEvent::Removed { fullname } => {
                let before = self.hubs.len();
                self.hubs
                    .retain(|t| !t.hub.fullname.eq_ignore_ascii_case(&fullname));
                (self.hubs.len() < before).then(|| Progress::Removed {
                    instance: instance_of(&fullname),
                    count: self.hubs.len(),
                })
            }
        }
    }
}

/// The stop rule, driven by events and tokio time (so tests pause time).
async fn collect(
    mut rx: mpsc::Receiver<BrowseEvent>,
    opts: &DiscoverOptions,
    progress: &mut impl FnMut(&Progress),
    ask_ipv4: &mut impl FnMut(&str),
) -> Result<Discovery, DiscoveryError> {
    let mut c = Collector {
        opts,
        start: Instant::now(),
        hubs: Vec::new(),
        last_new: None,
        asked_ipv4: Vec::new(),
    };
    let stopped = loop {
        let now = Instant::now();
        if let Some(reason) = c.stop(now) {
            break reason;
        }
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => {
                    if let Some(p) = c.apply(ev, Instant::now()) {
                        progress(&p);
                    }
                    for host in c.hosts_missing_ipv4() {
                        ask_ipv4(&host);
                    }
                }
                None => return Err(DiscoveryError::Mdns("the mdns daemon stopped during the browse".into())),
            },
            _ = tokio::time::sleep_until(c.next_wake(now)) => {}
        }
    };
    let mut hubs: Vec<DiscoveredHub> = c.hubs.into_iter().map(|t| t.hub).collect();
    hubs.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(Discovery {
        hubs,
        stopped,
        elapsed: Instant::now() - c.start,
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    const LOOP_V4: &str = "127.0.0.1";

    fn addr(ip: &str, intf: &str, scope: u32) -> HubAddr {
        HubAddr {
            ip: ip.parse().unwrap(),
            interfaces: vec![intf.to_string()],
            scope_id: scope,
        }
    }

    fn seen(name: &str, addrs: Vec<HubAddr>) -> BrowseEvent {
        BrowseEvent::Resolved(Sighting {
            fullname: format!("{name}.{SERVICE_TYPE}"),
            host: format!("{name}.local."),
            port: 80,
            addrs,
            txt: vec![("version".into(), "5.1.1".into())],
        })
    }

    fn removed(name: &str) -> BrowseEvent {
        BrowseEvent::Removed {
            fullname: format!("{name}.{SERVICE_TYPE}"),
        }
    }

    /// Feed `script` (delay from the previous event, event) into `collect`
    /// under paused time; returns the result and the elapsed virtual time.
    async fn run(
        opts: DiscoverOptions,
        script: Vec<(u64, BrowseEvent)>,
    ) -> (Discovery, Vec<Progress>) {
        let (d, p, _) = run_asking(opts, script).await;
        (d, p)
    }

    /// As `run`, also returning the host names asked for IPv4.
    async fn run_asking(
        opts: DiscoverOptions,
        script: Vec<(u64, BrowseEvent)>,
    ) -> (Discovery, Vec<Progress>, Vec<String>) {
        let (tx, rx) = mpsc::channel(64);
        let feeder = tokio::spawn(async move {
            for (delay, ev) in script {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
            // Keep the channel open: a real browse never ends by itself.
            std::future::pending::<()>().await;
        });
        let mut seen = Vec::new();
        let mut asked = Vec::new();
        let d = collect(
            rx,
            &opts,
            &mut |p: &Progress| seen.push(p.clone()),
            &mut |h: &str| asked.push(h.to_string()),
        )
        .await
        .unwrap();
        feeder.abort();
        (d, seen, asked)
    }

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_period_ends_the_browse_after_the_last_new_hub() {
        let script = vec![
            (40, seen("Vege_00_01", vec![addr(LOOP_V4, "lo", 0)])),
            (300, seen("Vege_00_02", vec![addr("127.0.0.2", "lo", 0)])),
        ];
        let (d, _, asked) = run_asking(DiscoverOptions::default(), script).await;
        assert_eq!(d.stopped, StopReason::Quiet);
        assert_eq!(ms(d.elapsed), 340 + ms(QUIET_PERIOD));
        assert!(asked.is_empty(), "IPv4 hubs need no A query: {asked:?}");
        assert_eq!(d.hubs.len(), 2);
        assert_eq!(ms(d.hubs[1].resolved_after), 340);
    }

    #[tokio::test(start_paused = true)]
    async fn a_responder_announcing_a_thousand_hubs_is_followed_only_to_the_bound() {
        let script = (0..1000)
            .map(|i| {
                let name = format!("Vege_{:02X}_{:02X}", i / 256, i % 256);
                (1, seen(&name, vec![addr(LOOP_V4, "lo", 0)]))
            })
            .collect();
        let (d, _) = run(DiscoverOptions::default(), script).await;
        assert_eq!(d.stopped, StopReason::TooMany);
        assert_eq!(d.hubs.len(), MAX_HUBS);
        assert_eq!(ms(d.elapsed), MAX_HUBS as u128);
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_hub_restarts_the_quiet_period() {
        let script = vec![
            (40, seen("Vege_00_01", vec![addr(LOOP_V4, "lo", 0)])),
            // Answers the re-query just before the quiet period would end.
            (1100, seen("Vege_00_02", vec![addr("127.0.0.2", "lo", 0)])),
        ];
        let (d, _) = run(DiscoverOptions::default(), script).await;
        assert_eq!(d.hubs.len(), 2);
        assert_eq!(ms(d.elapsed), 1140 + ms(QUIET_PERIOD));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_found_waits_for_the_timeout() {
        let opts = DiscoverOptions {
            timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let (d, _) = run(opts, vec![]).await;
        assert_eq!(d.stopped, StopReason::Timeout);
        assert_eq!(ms(d.elapsed), 2000);
        assert!(d.hubs.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn expect_returns_as_soon_as_the_last_hub_resolves() {
        let opts = DiscoverOptions {
            expect: Some(3),
            ..Default::default()
        };
        let script = vec![
            (30, seen("Vege_00_01", vec![addr(LOOP_V4, "lo", 0)])),
            (10, seen("Vege_00_02", vec![addr("127.0.0.2", "lo", 0)])),
            (2000, seen("Vege_00_03", vec![addr("127.0.0.3", "lo", 0)])),
        ];
        let (d, _) = run(opts, script).await;
        assert_eq!(d.stopped, StopReason::Expected);
        assert_eq!(ms(d.elapsed), 2040, "no quiet period with --expect");
        assert_eq!(d.hubs.len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn expect_not_met_ends_at_the_timeout() {
        let opts = DiscoverOptions {
            expect: Some(2),
            ..Default::default()
        };
        let script = vec![(30, seen("Vege_00_01", vec![addr(LOOP_V4, "lo", 0)]))];
        let (d, _) = run(opts, script).await;
        assert_eq!(d.stopped, StopReason::Timeout);
        assert_eq!(ms(d.elapsed), ms(DEFAULT_TIMEOUT));
        assert_eq!(d.hubs.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_link_local_first_waits_briefly_for_ipv4() {
        let opts = DiscoverOptions {
            expect: Some(1),
            ..Default::default()
        };
        let v6 = || addr("fe80::1", "eth0", 2);
        let script = vec![
            (30, seen("Vege_00_01", vec![v6()])),
            (20, seen("Vege_00_01", vec![v6(), addr(LOOP_V4, "eth0", 0)])),
        ];
        let (d, progress, asked) = run_asking(opts, script).await;
        assert_eq!(ms(d.elapsed), 50, "stops when IPv4 arrives, not before");
        assert_eq!(
            asked,
            ["Vege_00_01.local."],
            "the A record is asked for, once"
        );
        let hub = &d.hubs[0];
        assert_eq!(hub.socket_addr().unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(hub.addresses[1].display(), "fe80::1%eth0");
        assert!(matches!(progress[1], Progress::Updated { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn ipv6_only_hub_is_usable_with_its_scope_after_the_grace() {
        let opts = DiscoverOptions {
            expect: Some(1),
            ..Default::default()
        };
        let script = vec![(30, seen("Vege_00_01", vec![addr("fe80::1", "eth0", 2)]))];
        let (d, _, asked) = run_asking(opts, script).await;
        assert_eq!(d.stopped, StopReason::Expected);
        assert_eq!(ms(d.elapsed), 30 + ms(IPV4_GRACE));
        assert_eq!(asked.len(), 1);
        match d.hubs[0].socket_addr().unwrap() {
            SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), 2),
            other => panic!("expected a scoped IPv6 address, got {other}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reannounce_updates_without_restarting_the_quiet_period() {
        let script = vec![
            (30, seen("Vege_00_01", vec![addr(LOOP_V4, "lo", 0)])),
            (1000, seen("Vege_00_01", vec![addr("127.0.0.9", "lo", 0)])),
        ];
        let (d, progress) = run(DiscoverOptions::default(), script).await;
        assert_eq!(d.hubs.len(), 1);
        assert_eq!(d.hubs[0].addresses[0].ip.to_string(), "127.0.0.9");
        assert_eq!(ms(d.elapsed), 30 + ms(QUIET_PERIOD));
        assert_eq!(progress.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hub_that_leaves_during_the_browse_is_dropped() {
        let script = vec![
            (30, seen("Vege_00_01", vec![addr(LOOP_V4, "lo", 0)])),
            (10, seen("Vege_00_02", vec![addr("127.0.0.2", "lo", 0)])),
            (100, removed("Vege_00_01")),
        ];
        let (d, progress) = run(DiscoverOptions::default(), script).await;
        assert_eq!(d.hubs.len(), 1);
        assert_eq!(d.hubs[0].instance, "Vege_00_02");
        assert_eq!(
            progress.last(),
            Some(&Progress::Removed {
                instance: "Vege_00_01".into(),
                count: 1
            })
        );
    }

    #[test]
    fn same_address_on_two_interfaces_is_one_address() {
        let merged = merge_addrs(vec![
            addr("fe80::1", "eth1", 3),
            addr(LOOP_V4, "eth1", 0),
            addr(LOOP_V4, "eth0", 0),
            addr("fe80::1", "eth0", 2),
        ]);
        assert_eq!(merged.len(), 3);
        assert_eq!(merged[0].interfaces, ["eth0", "eth1"]);
        assert_eq!(merged[1].scope_id, 2);
        assert_eq!(merged[2].scope_id, 3);
    }

    #[test]
    fn same_name_on_two_interfaces_with_different_addresses_is_a_conflict() {
        let hub = |addrs| DiscoveredHub {
            instance: "Desk".into(),
            fullname: format!("Desk.{SERVICE_TYPE}"),
            host: "Desk.local.".into(),
            port: 80,
            addresses: merge_addrs(addrs),
            txt: vec![],
            hub_txt: HubTxt::default(),
            resolved_after: Duration::ZERO,
        };
        let one_hub_two_paths = hub(vec![addr(LOOP_V4, "eth0", 0), addr(LOOP_V4, "eth1", 0)]);
        assert_eq!(one_hub_two_paths.name_conflict(), None);
        let two_hubs = hub(vec![addr(LOOP_V4, "eth0", 0), addr("127.0.0.2", "eth1", 0)]);
        let msg = two_hubs.name_conflict().unwrap();
        assert!(msg.contains("127.0.0.1 on eth0") && msg.contains("127.0.0.2 on eth1"));
        assert_eq!(two_hubs.interfaces(), ["eth0", "eth1"]);
    }

    #[test]
    fn instance_names_are_unescaped() {
        assert_eq!(
            instance_of(&format!("Vege_A6_20.{SERVICE_TYPE}")),
            "Vege_A6_20"
        );
        assert_eq!(
            instance_of(&format!("Desk\\.Temp.{SERVICE_TYPE}")),
            "Desk.Temp"
        );
    }

    #[test]
    fn unknown_interface_is_named() {
        let e = check_interface("no-such-intf0").unwrap_err().to_string();
        assert!(
            e.starts_with("--interface no-such-intf0: no such interface"),
            "{e}"
        );
    }
}
