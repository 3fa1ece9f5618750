//! Connection accounting and the leak verdict: every TCP connection the
//! shared client opens (hub, local and remote address, the scenario running
//! when it opened, requests it carried, when it closed), the sessions
//! created, and at the end of a run whether any connection leaked, more than
//! one session was made, or a hub's connection budget was exceeded.
//!
//! Opens and closes come from two sources, because neither alone is enough:
//! - **Opens**: each session's client carries a [`SessionLayer`] (reqwest's
//!   `ClientBuilder::connector_layer`), which sees every connection the
//!   client establishes and reads its addresses from hyper-util's
//!   `HttpInfo`. reqwest hands the layer its own private stream type, which
//!   the layer must return as is, so the layer cannot see the stream being
//!   dropped.
//! - **Closes**: the operating system's socket table, IPv4 and IPv6, read
//!   in `os` (netlink sock_diag on Linux, libproc on macOS, the owner-PID
//!   TCP tables on Windows). A connection counts as closed once *our* side has closed it:
//!   it is gone from the table or in a state only reached after our close
//!   (FIN_WAIT_1/2, CLOSING, LAST_ACK, TIME_WAIT). ESTABLISHED and
//!   CLOSE_WAIT (the hub hung up, we did not) are open. Where the table
//!   cannot be read the verdict says closes were not confirmed; it never
//!   claims zero.
//!
//! Requests are attributed to their connection from each response's
//! `HttpInfo` (local and remote address), via [`Ledger::record_response`].
//!
//! What it costs: nothing on the request path when a hub keeps one
//! connection. The table is never walked while the run is under way:
//! - at a connect, only when an earlier connection to the same hub is not
//!   known to be closed, the ledger asks the OS about exactly those
//!   connections ([`SocketTable::lookup`]: on Linux one sock_diag query per
//!   socket, found by its address pair in the kernel's hash, whatever else
//!   is on the host; elsewhere one table read);
//! - while waiting for closes after the session closed, the same lookup;
//! - the verdict at the very end reads the whole table once (and this
//!   process's own sockets once, for strays): the authoritative word of the
//!   operating system.
//!
//! Nothing holds the ledger's lock while the OS is asked.
//!
//! This file keeps the accounting; beside it: `connector` (the layer each
//! session's client is built with, and the wait for reuse), `verdict` (the
//! leak verdict and its text), `os` (the socket table, per platform),
//! `linux` and `sock_diag` (single-socket lookups on Linux).

mod connector;
#[cfg(target_os = "linux")]
mod linux;
mod os;
#[cfg(target_os = "linux")]
mod sock_diag;
mod verdict;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpInfo;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use connector::{for_hub, ConnectNotNeeded, SessionConnector, SessionLayer};
use os::canonical;
pub use os::{os_socket_table, SocketTable, SocketTableError, TcpEntry};
pub use verdict::{CloseCheck, HubUsage, Verdict};

/// Connections a hub may have open at once before the run fails. Small
/// embedded HTTP servers run out of sockets quickly.
pub const DEFAULT_CONN_BUDGET: usize = 2;

/// How long the run waits, after the session is closed, for every
/// connection to close before calling the ones still open leaks.
pub const DEFAULT_CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// How often the socket table is read while waiting for closes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The label a hub goes by in the ledger: `host:port` of its URL, the same
/// string the run passes to [`Ledger::set_scenario`].
pub fn hub_label(url: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port_or_known_default().unwrap_or(80)
    )
}

/// One TCP connection a session opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnRecord {
    /// Which session (1-based, in creation order) opened it.
    pub session: u32,
    /// The hub it went to (see [`hub_label`]); the remote address until a
    /// response on it named the hub.
    pub hub: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The scenario running when it opened.
    pub scenario: Option<String>,
    /// The scenario of the last request it carried.
    pub last_scenario: Option<String>,
    /// Responses received on it.
    pub requests: u64,
    /// When it opened, from the ledger's creation.
    pub opened_at: Duration,
    /// When it was first seen closed, from the ledger's creation.
    pub closed_at: Option<Duration>,
    /// The TCP state it was last seen in while open.
    pub last_state: Option<String>,
}

impl ConnRecord {
    fn scenario_name(&self) -> &str {
        self.scenario.as_deref().unwrap_or("(no scenario)")
    }
}

/// Connections a hub made to the harness's data receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub hub: String,
    /// The receiver's URL.
    pub receiver: String,
    pub connections: usize,
}

/// Records the run's sessions and connections. Cheap to clone; every clone
/// is the same ledger.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    table: Box<dyn SocketTable>,
    budget: usize,
    created: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    sessions: u32,
    conns: Vec<ConnRecord>,
    /// Connections the connector reported without addresses (not plain TCP).
    unidentified: u32,
    /// Responses that came over a connection no session opened.
    unledgered_requests: u64,
    /// Hub label by remote address, learned from responses.
    hubs: HashMap<SocketAddr, String>,
    /// Responses received from each hub, by hub label.
    served: HashMap<String, u64>,
    /// The scenario running against each hub, by hub label.
    scenarios: HashMap<String, String>,
    /// Most connections open at once, by remote address.
    peak: HashMap<SocketAddr, usize>,
    /// Why the socket table could not be read, the last time it failed.
    table_error: Option<String>,
    /// Connections whose last answer said `Connection: close`: the client
    /// will not send another request on them.
    closing: HashSet<(SocketAddr, SocketAddr)>,
    /// Connections hubs made to the data receiver, per setup run.
    inbound: Vec<Inbound>,
    /// Woken on every answer from a hub, by hub label (the reuse wait).
    answered: HashMap<String, Arc<Notify>>,
}

impl State {
    fn answered(&mut self, hub: &str) -> Arc<Notify> {
        self.answered.entry(hub.to_string()).or_default().clone()
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("Ledger")
            .field("sessions", &st.sessions)
            .field("connections", &st.conns.len())
            .field("budget", &self.inner.budget)
            .finish()
    }
}

impl Ledger {
    /// A ledger reading this machine's socket table, failing the run when a
    /// hub has more than `budget` connections open at once.
    pub fn new(budget: usize) -> Ledger {
        Ledger::with_table(budget, os_socket_table())
    }

    /// A ledger reading the given socket table.
    pub fn with_table(budget: usize, table: Box<dyn SocketTable>) -> Ledger {
        Ledger {
            inner: Arc::new(Inner {
                table,
                budget,
                created: Instant::now(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves counts that are
        // still worth reporting.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        self.inner.created.elapsed()
    }

    /// Count a new session (one client) and return the connector layer its
    /// client must be built with: `ClientBuilder::connector_layer(layer)`.
    pub fn new_session(&self) -> SessionLayer {
        let mut st = self.lock();
        st.sessions += 1;
        SessionLayer {
            ledger: self.clone(),
            session: st.sessions,
        }
    }

    /// Count the connections hub `hub` made to the harness's data receiver
    /// at `receiver` (setup's delivery check). Kept apart from the
    /// session's connections.
    pub fn record_inbound(&self, hub: &str, receiver: &str, connections: usize) {
        self.lock().inbound.push(Inbound {
            hub: hub.to_owned(),
            receiver: receiver.to_owned(),
            connections,
        });
    }

    /// Sessions created so far.
    pub fn sessions(&self) -> u32 {
        self.lock().sessions
    }

    /// Say which scenario is running against `hub` (a [`hub_label`]), or
    /// that none is (`None`). Connections opened meanwhile are attributed to it.
    pub fn set_scenario(&self, hub: &str, scenario: Option<&str>) {
        let mut st = self.lock();
        match scenario {
            Some(name) => st.scenarios.insert(hub.to_string(), name.to_string()),
            None => st.scenarios.remove(hub),
        };
    }

    /// Attribute one response from `hub` (the label given to
    /// [`Ledger::set_scenario`]) to the connection it came over.
    pub fn record_response(&self, hub: &str, response: &reqwest::Response) {
        let Some(info) = response.extensions().get::<HttpInfo>() else {
            return;
        };
        // hyper closes a connection after an answer that says so (and after
        // an HTTP/1.0 answer without keep-alive): no request will reuse it.
        let says_close = response
            .headers()
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
            || (response.version() == http::Version::HTTP_10
                && !response
                    .headers()
                    .get(http::header::CONNECTION)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.to_ascii_lowercase().contains("keep-alive")));
        let (local, remote) = (info.local_addr(), info.remote_addr());
        if says_close {
            self.lock()
                .closing
                .insert((canonical(local), canonical(remote)));
        }
        self.record_request(hub, local, remote);
    }

    /// Attribute one request to the connection `local` -> `remote` to `hub`.
    pub fn record_request(&self, hub: &str, local: SocketAddr, remote: SocketAddr) {
        let (local, remote) = (canonical(local), canonical(remote));
        let mut st = self.lock();
        st.hubs.entry(remote).or_insert_with(|| hub.to_string());
        let scenario = st.scenarios.get(hub).cloned();
        *st.served.entry(hub.to_string()).or_default() += 1;
        // The newest record for the pair: a port pair can be reused once the
        // older connection has gone.
        match st
            .conns
            .iter_mut()
            .rev()
            .find(|c| c.local == local && c.remote == remote)
        {
            Some(conn) => {
                conn.requests += 1;
                conn.hub = hub.to_string();
                // Opened while several hubs were busy: the first request
                // on it says whose scenario it was.
                if conn.scenario.is_none() {
                    conn.scenario = scenario.clone();
                }
                conn.last_scenario = scenario;
            }
            None => st.unledgered_requests += 1,
        }
        if let Some(n) = st.answered.get(hub) {
            n.notify_waiters();
        }
    }

    fn opened(&self, session: u32, addrs: Option<(SocketAddr, SocketAddr)>) {
        let opened_at = self.now();
        let mut st = self.lock();
        let Some((local, remote)) = addrs.map(|(l, r)| (canonical(l), canonical(r))) else {
            st.unidentified += 1;
            return;
        };
        // The kernel cannot hold two sockets with the same address pair: an
        // older record for it is closed, whether or not we saw it go.
        for old in st
            .conns
            .iter_mut()
            .filter(|c| c.local == local && c.remote == remote && c.closed_at.is_none())
        {
            old.closed_at = Some(opened_at);
        }
        let hub = st.hubs.get(&remote).cloned();
        let scenario = match &hub {
            Some(h) => st.scenarios.get(h).cloned(),
            // Unknown hub: only unambiguous when a single hub is busy.
            None if st.scenarios.len() == 1 => st.scenarios.values().next().cloned(),
            None => None,
        };
        // Overlap needs to know which older connections to this address
        // are still open: the OS is asked about those alone, and only when
        // there are any (a hub on one kept-alive connection costs nothing).
        let earlier = st
            .conns
            .iter()
            .filter(|c| c.remote == remote && c.closed_at.is_none())
            .map(|c| (c.local, c.remote))
            .collect::<Vec<_>>();
        st.conns.push(ConnRecord {
            session,
            hub: hub.unwrap_or_else(|| remote.to_string()),
            local,
            remote,
            scenario,
            last_scenario: None,
            requests: 0,
            opened_at,
            closed_at: None,
            last_state: None,
        });
        drop(st);
        let open = if earlier.is_empty() {
            Ok(1)
        } else {
            self.look_up(&earlier).map(|still| still + 1)
        };
        if let Ok(open) = open {
            let mut st = self.lock();
            let peak = st.peak.entry(remote).or_default();
            *peak = (*peak).max(open);
        }
    }

    /// Ask the OS about these connections (the socket table's single-socket
    /// lookup, without the ledger's lock held) and mark the ones that have
    /// closed. Returns how many of them are still open.
    fn look_up(&self, pairs: &[(SocketAddr, SocketAddr)]) -> Result<usize, SocketTableError> {
        let entries = self.inner.table.lookup(pairs);
        let mut st = self.lock();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                st.table_error = Some(e.0.clone());
                return Err(e);
            }
        };
        Ok(Self::apply(&mut st, &entries, Some(pairs), self.now()))
    }

    /// Mark closed the connections among `pairs` (every unclosed one when
    /// `pairs` is `None`) that `entries` does not list open.
    fn apply(
        st: &mut State,
        entries: &[TcpEntry],
        pairs: Option<&[(SocketAddr, SocketAddr)]>,
        now: Duration,
    ) -> usize {
        let by_pair: HashMap<(SocketAddr, SocketAddr), &TcpEntry> = entries
            .iter()
            .filter(|e| e.open)
            .map(|e| ((e.local, e.remote), e))
            .collect();
        let asked: Option<HashSet<&(SocketAddr, SocketAddr)>> = pairs.map(|p| p.iter().collect());
        let mut open = 0;
        for conn in st.conns.iter_mut().filter(|c| c.closed_at.is_none()) {
            let pair = (conn.local, conn.remote);
            if asked.as_ref().is_some_and(|a| !a.contains(&pair)) {
                continue;
            }
            match by_pair.get(&pair) {
                Some(e) => {
                    conn.last_state = Some(e.state.clone());
                    open += 1;
                }
                None => conn.closed_at = Some(now),
            }
        }
        open
    }

    /// Read the whole socket table and mark the connections that have
    /// closed. Returns how many are still open. Only the final verdict does
    /// this.
    fn refresh(&self, st: &mut State) -> Result<usize, SocketTableError> {
        if st.conns.iter().all(|c| c.closed_at.is_some()) {
            return Ok(0);
        }
        let entries = match self.inner.table.tcp_entries() {
            Ok(entries) => entries,
            Err(e) => {
                st.table_error = Some(e.0.clone());
                return Err(e);
            }
        };
        Ok(Self::apply(st, &entries, None, self.now()))
    }

    /// Connections the session opened so far, and how many of them the OS
    /// still shows open (`None`: the socket table could not be read). One
    /// per-socket lookup of the unclosed ones; for soak cycles.
    pub fn open_now(&self) -> (usize, Option<usize>) {
        let (opened, pairs): (usize, Vec<_>) = {
            let st = self.lock();
            let pairs = st
                .conns
                .iter()
                .filter(|c| c.closed_at.is_none())
                .map(|c| (c.local, c.remote))
                .collect();
            (st.conns.len(), pairs)
        };
        if pairs.is_empty() {
            return (opened, Some(0));
        }
        (opened, self.look_up(&pairs).ok())
    }

    /// After the session is closed (every client dropped): wait up to
    /// `within` for every connection to close, asking the OS about the
    /// connections still open, then give the verdict (from one read of the
    /// whole table).
    pub async fn settle(&self, within: Duration) -> Verdict {
        let _shown =
            crate::session::wait::begin("every connection to close (close check)", Some(within));
        let start = Instant::now();
        let deadline = start + within;
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            let pairs: Vec<_> = self
                .lock()
                .conns
                .iter()
                .filter(|c| c.closed_at.is_none())
                .map(|c| (c.local, c.remote))
                .collect();
            if pairs.is_empty() {
                break;
            }
            match self.look_up(&pairs) {
                Ok(0) | Err(_) => break,
                Ok(_) if Instant::now() >= deadline => break,
                Ok(_) => {}
            }
        }
        let waited = start.elapsed();
        self.verdict(waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket table whose entries the test sets, or that cannot be read;
    /// it counts how often it was read.
    #[derive(Clone, Default)]
    pub(super) struct FakeTable(
        Arc<Mutex<Option<Vec<TcpEntry>>>>,
        Arc<std::sync::atomic::AtomicUsize>,
    );

    impl FakeTable {
        pub(super) fn set(&self, entries: Option<Vec<TcpEntry>>) {
            *self.0.lock().unwrap() = entries;
        }
        pub(super) fn reads(&self) -> usize {
            self.1.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    /// A ledger reading a fake table (unreadable until the test sets it),
    /// and the run's one session.
    pub(super) fn fake_ledger(budget: usize) -> (FakeTable, Ledger, SessionLayer) {
        let table = FakeTable::default();
        let ledger = Ledger::with_table(budget, Box::new(table.clone()));
        let layer = ledger.new_session();
        (table, ledger, layer)
    }

    impl SocketTable for FakeTable {
        fn mechanism(&self) -> String {
            "a fake table".to_string()
        }
        fn tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0
                .lock()
                .unwrap()
                .clone()
                .ok_or_else(|| SocketTableError("not on this platform".to_string()))
        }
        fn own_tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            self.tcp_entries()
        }
    }

    pub(super) fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    pub(super) fn established(local: &str, remote: &str) -> TcpEntry {
        TcpEntry {
            local: addr(local),
            remote: addr(remote),
            state: "ESTABLISHED".to_string(),
            open: true,
        }
    }

    pub(super) const HUB: &str = "127.0.0.1:8080";

    #[tokio::test(start_paused = true)]
    async fn an_open_connection_is_a_leak_after_the_deadline_and_not_before_it_closes() {
        let (table, ledger, layer) = fake_ledger(2);
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        ledger.set_scenario(HUB, Some("info"));
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));

        let start = Instant::now();
        let verdict = ledger.settle(Duration::from_secs(5)).await;
        assert!(start.elapsed() >= Duration::from_secs(5));
        assert!(verdict.leaked());
        let problems = verdict.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("127.0.0.1:40000 -> hub 127.0.0.1:8080"));
        assert!(problems[0].contains("opened during info"));
        assert!(problems[0].contains("ESTABLISHED"));
        assert!(verdict
            .summary_lines()
            .contains(&"connections: opened 1, closed 0, still open 1".to_string()));

        // The same connection seen in TIME_WAIT: closed by us, no leak.
        table.set(Some(vec![TcpEntry {
            state: "TIME_WAIT".to_string(),
            open: false,
            ..established("127.0.0.1:40000", HUB)
        }]));
        let verdict = ledger.settle(Duration::from_secs(5)).await;
        assert!(!verdict.failed(), "{:?}", verdict.problems());
        assert!(verdict
            .summary_lines()
            .contains(&"connections: opened 1, closed 1, still open 0".to_string()));
        assert_eq!(verdict.hubs[0].requests, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_ends_as_soon_as_everything_closed() {
        let (table, ledger, layer) = fake_ledger(2);
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        table.set(Some(vec![]));
        let start = Instant::now();
        let verdict = ledger.settle(Duration::from_secs(5)).await;
        assert!(start.elapsed() < Duration::from_millis(100));
        assert!(!verdict.leaked());
    }

    #[test]
    fn sequential_connections_that_closed_do_not_count_as_overlap() {
        let (table, ledger, layer) = fake_ledger(1);
        for port in [40000, 40001, 40002] {
            let local = format!("127.0.0.1:{port}");
            // Only the newest is in the table: the previous one closed.
            table.set(Some(vec![established(&local, HUB)]));
            ledger.opened(layer.session, Some((addr(&local), addr(HUB))));
        }
        table.set(Some(vec![]));
        let verdict = ledger.verdict(Duration::ZERO);
        assert!(verdict.problems().is_empty(), "{:?}", verdict.problems());
        assert_eq!(verdict.hubs[0].peak_open, Some(1));
        assert_eq!(verdict.hubs[0].connections, 3);
    }

    #[test]
    fn the_scenario_is_the_one_running_against_the_connections_hub() {
        let (table, ledger, layer) = fake_ledger(2);
        table.set(Some(vec![]));
        let other = "127.0.0.1:9090";
        ledger.set_scenario(HUB, Some("mac"));
        ledger.set_scenario(other, Some("setup"));
        // Two hubs busy and this address never seen: unknown until the
        // first response names the hub.
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        assert_eq!(ledger.verdict(Duration::ZERO).connections[0].scenario, None);
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        ledger.set_scenario(HUB, Some("info"));
        // Now the address is known: attributed at open.
        ledger.opened(layer.session, Some((addr("127.0.0.1:40001"), addr(HUB))));
        let conns = ledger.verdict(Duration::ZERO).connections;
        assert_eq!(conns[0].scenario.as_deref(), Some("mac"));
        assert_eq!(conns[1].scenario.as_deref(), Some("info"));
        assert_eq!(conns[1].hub, HUB);
    }
}
