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
//!   in [`os`] (netlink sock_diag on Linux, libproc on macOS, the owner-PID
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
//! Reuse: hyper-util's pool races a new connect against the return of the
//! connection the previous request used (it goes back to the pool a moment
//! after the body is read, from another task). Left alone, a sequential run
//! opens a second connection now and then, overlapping the first. A request
//! run inside [`for_hub`] lets the connector see that this session already
//! has a connection to the hub that may still serve it (not known closed,
//! and its last answer did not say `Connection: close`): the connect then
//! waits, woken by the hub's next answer (no polling), and is abandoned if
//! the request was served on the reused connection. If no answer comes
//! soon, the ledger asks the OS whether that connection is still
//! established (a lookup of that socket alone, at growing intervals); a
//! connection gone or half-closed ends the wait at once, so a hub that drops
//! idle connections costs no grace.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Connections a hub may have open at once before the run fails. Small
/// embedded HTTP servers run out of sockets quickly.
pub const DEFAULT_CONN_BUDGET: usize = 2;

/// How long the run waits, after the session is closed, for every
/// connection to close before calling the ones still open leaks.
pub const DEFAULT_CLOSE_DEADLINE: Duration = Duration::from_secs(5);

/// How often the socket table is read while waiting for closes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long a new connect waits for the session's established connection
/// to the same hub to come back to the pool.
const REUSE_GRACE: Duration = Duration::from_secs(1);

/// When that wait first asks the OS whether the connection is still
/// established; the gap doubles after each look.
const REUSE_FIRST_LOOK: Duration = Duration::from_millis(200);

tokio::task_local! {
    /// The hub the request being sent on this task goes to.
    static REQUEST_HUB: String;
}

/// Send one request to `hub` (the label given to [`Ledger::set_scenario`])
/// so that a connect it triggers knows its hub and can prefer reuse.
pub async fn for_hub<F: Future>(hub: &str, request: F) -> F::Output {
    REQUEST_HUB.scope(hub.to_string(), request).await
}

/// A connect abandoned because its request was served on a reused
/// connection; hyper-util drops such a background connect silently.
#[derive(Debug, thiserror::Error)]
#[error("connection not needed: the request was served on a reused connection")]
pub struct ConnectNotNeeded;

/// The socket table could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read the socket table: {0}")]
pub struct SocketTableError(pub String);

/// One TCP connection as the operating system lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpEntry {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The TCP state as the OS names it (`ESTABLISHED`, `TIME_WAIT`, ...).
    pub state: String,
    /// Our side of the connection has not closed it yet.
    pub open: bool,
}

/// Reads the operating system's table of TCP connections. A trait so tests
/// can stand in a platform whose table cannot be read.
pub trait SocketTable: Send + Sync + 'static {
    /// How closes are confirmed, in words for the report.
    fn mechanism(&self) -> String;
    /// Every TCP connection the OS lists, whichever process owns it.
    fn tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError>;
    /// The TCP connections owned by this process.
    fn own_tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError>;
    /// This process's TCP connections to any of `remotes` (the strays
    /// check at the end of a run). The default filters
    /// [`SocketTable::own_tcp_entries`]; a platform that can ask the OS for
    /// just those overrides it.
    fn own_tcp_entries_to(
        &self,
        remotes: &[SocketAddr],
    ) -> Result<Vec<TcpEntry>, SocketTableError> {
        Ok(self
            .own_tcp_entries()?
            .into_iter()
            .filter(|e| remotes.contains(&e.remote))
            .collect())
    }
    /// The entries of exactly these connections (local, remote); one the OS
    /// no longer lists is absent. The default reads the whole table; a
    /// platform that can ask for single sockets overrides it.
    fn lookup(
        &self,
        pairs: &[(SocketAddr, SocketAddr)],
    ) -> Result<Vec<TcpEntry>, SocketTableError> {
        let wanted: std::collections::HashSet<&(SocketAddr, SocketAddr)> = pairs.iter().collect();
        Ok(self
            .tcp_entries()?
            .into_iter()
            .filter(|e| wanted.contains(&(e.local, e.remote)))
            .collect())
    }
}

/// The socket table of the machine the harness runs on.
pub fn os_socket_table() -> Box<dyn SocketTable> {
    #[cfg(target_os = "linux")]
    return Box::new(linux::Targeted::new(os::OsSocketTable));
    #[cfg(not(target_os = "linux"))]
    Box::new(os::OsSocketTable)
}

#[cfg(target_os = "linux")]
mod sock_diag;

/// Linux: single-socket lookups through sock_diag, and this process's own
/// sockets found by the inodes of its own descriptors instead of a walk of
/// every process's descriptors; the table reads themselves are `os`'s.
#[cfg(target_os = "linux")]
mod linux {
    use super::{sock_diag, SocketTable, SocketTableError, TcpEntry};
    use std::collections::HashSet;
    use std::net::SocketAddr;

    pub struct Targeted<T>(T, std::sync::Mutex<Option<sock_diag::Diag>>);

    impl<T> Targeted<T> {
        pub fn new(table: T) -> Targeted<T> {
            Targeted(table, std::sync::Mutex::new(None))
        }
    }

    /// This process's descriptors that are sockets (`/proc/self/fd`).
    fn own_socket_fds() -> std::io::Result<Vec<i32>> {
        let mut out = Vec::new();
        for fd in std::fs::read_dir("/proc/self/fd")? {
            let fd = fd?;
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue; // closed since the listing
            };
            if target.to_string_lossy().starts_with("socket:[") {
                if let Some(n) = fd.file_name().to_str().and_then(|n| n.parse().ok()) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    type NameFn = unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32;

    /// The local or peer address (`getsockname`/`getpeername`) of the
    /// socket `fd` of this process, if it is a connected IPv4/IPv6 socket.
    fn sock_addr(fd: i32, name: NameFn) -> Option<SocketAddr> {
        use std::net::{Ipv4Addr, Ipv6Addr};
        // SAFETY: all-zero bytes are a valid sockaddr_storage.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: the call writes at most `len` bytes into `storage` and
        // only reads the descriptor (one of this process's, possibly closed
        // meanwhile: then it fails and nothing is read).
        let rc = unsafe {
            name(
                fd,
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        match storage.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a: &libc::sockaddr_in = unsafe { &*(&storage as *const _ as *const _) };
                Some(SocketAddr::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).into(),
                    u16::from_be(a.sin_port),
                ))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a: &libc::sockaddr_in6 = unsafe { &*(&storage as *const _ as *const _) };
                Some(SocketAddr::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr).into(),
                    u16::from_be(a.sin6_port),
                ))
            }
            _ => None,
        }
    }

    /// Inodes of the sockets this process holds (`/proc/self/fd`).
    fn own_socket_inodes() -> std::io::Result<HashSet<u32>> {
        let mut out = HashSet::new();
        for fd in std::fs::read_dir("/proc/self/fd")? {
            let Ok(target) = std::fs::read_link(fd?.path()) else {
                continue; // closed since the listing
            };
            let target = target.to_string_lossy();
            if let Some(n) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
            {
                out.insert(n);
            }
        }
        Ok(out)
    }

    impl<T: SocketTable> SocketTable for Targeted<T> {
        fn mechanism(&self) -> String {
            self.0.mechanism()
        }

        fn tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            self.0.tcp_entries()
        }

        fn own_tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            use netstat2::{AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState};
            let err = |e: netstat2::error::Error| SocketTableError(e.to_string());
            let own =
                own_socket_inodes().map_err(|e| SocketTableError(format!("/proc/self/fd: {e}")))?;
            let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
            let mut out = Vec::new();
            for info in
                netstat2::iterate_sockets_info_without_pids(af, ProtocolFlags::TCP).map_err(err)?
            {
                let info = info.map_err(err)?;
                let ProtocolSocketInfo::Tcp(tcp) = &info.protocol_socket_info else {
                    continue;
                };
                if tcp.state == TcpState::Listen || !own.contains(&info.inode) {
                    continue;
                }
                let open = !matches!(
                    tcp.state,
                    TcpState::Closed
                        | TcpState::FinWait1
                        | TcpState::FinWait2
                        | TcpState::Closing
                        | TcpState::LastAck
                        | TcpState::TimeWait
                        | TcpState::DeleteTcb
                );
                out.push(TcpEntry {
                    local: super::canonical(SocketAddr::new(tcp.local_addr, tcp.local_port)),
                    remote: super::canonical(SocketAddr::new(tcp.remote_addr, tcp.remote_port)),
                    state: tcp.state.to_string(),
                    open,
                });
            }
            Ok(out)
        }

        fn own_tcp_entries_to(
            &self,
            remotes: &[SocketAddr],
        ) -> Result<Vec<TcpEntry>, SocketTableError> {
            // This process's own descriptors, asked for their peer: no
            // walk of the host's sockets at all. Each connection to a hub
            // found this way is then looked up for its state.
            let wanted: HashSet<SocketAddr> = remotes.iter().copied().collect();
            let pairs: Vec<(SocketAddr, SocketAddr)> = own_socket_fds()
                .map_err(|e| SocketTableError(format!("/proc/self/fd: {e}")))?
                .into_iter()
                .filter_map(|fd| {
                    let remote = super::canonical(sock_addr(fd, libc::getpeername)?);
                    if !wanted.contains(&remote) {
                        return None;
                    }
                    Some((super::canonical(sock_addr(fd, libc::getsockname)?), remote))
                })
                .collect();
            if pairs.is_empty() {
                return Ok(Vec::new());
            }
            self.lookup(&pairs)
        }

        fn lookup(
            &self,
            pairs: &[(SocketAddr, SocketAddr)],
        ) -> Result<Vec<TcpEntry>, SocketTableError> {
            // One netlink socket for the run, opened at the first lookup;
            // dropped after an error (a fresh one next time).
            let mut cached = self.1.lock().unwrap_or_else(|p| p.into_inner());
            if cached.is_none() {
                match sock_diag::Diag::open() {
                    Ok(d) => *cached = Some(d),
                    // No sock_diag for single sockets here: the whole table.
                    Err(_) => {
                        drop(cached);
                        return self.0.lookup(pairs);
                    }
                }
            }
            let mut out = Vec::new();
            let mut rest = Vec::new();
            for &(local, remote) in pairs {
                let diag = match cached.as_mut() {
                    Some(d) if sock_diag::can_look_up(local, remote) => d,
                    _ => {
                        rest.push((local, remote));
                        continue;
                    }
                };
                match diag.find(local, remote) {
                    Ok(found) => out.extend(found),
                    Err(_) => {
                        *cached = None;
                        rest.push((local, remote));
                    }
                }
            }
            drop(cached);
            if !rest.is_empty() {
                out.extend(self.0.lookup(&rest)?);
            }
            Ok(out)
        }
    }
}

mod os;

/// Addresses compared the way the socket table reports them: IPv4-mapped
/// IPv6 as IPv4, no IPv6 scope or flow label.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

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

/// How closes were confirmed, if they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseCheck {
    /// The socket table was read; the counts are measured.
    Confirmed { mechanism: String },
    /// The socket table could not be read; whether connections closed is
    /// unknown.
    Unconfirmed { reason: String },
}

/// Connections a hub made to the harness's data receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub hub: String,
    /// The receiver's URL.
    pub receiver: String,
    pub connections: usize,
}

/// One hub's use of connections over the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubUsage {
    pub hub: String,
    pub connections: usize,
    pub requests: u64,
    /// Most connections open to it at once; `None` when the socket table
    /// could not be read (closes unknown, so neither is overlap).
    pub peak_open: Option<usize>,
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

    /// If `session` has a connection to `hub` that may still serve a
    /// request (not known closed, not closing), the number of answers
    /// `hub` has given so far, and the hub's answer signal.
    fn reusable(&self, session: u32, hub: &str) -> Option<(u64, Arc<Notify>)> {
        let mut st = self.lock();
        let candidate = st.conns.iter().any(|c| {
            c.session == session
                && c.hub == hub
                && c.closed_at.is_none()
                && !st.closing.contains(&(c.local, c.remote))
        });
        if !candidate {
            return None;
        }
        let seen = st.served.get(hub).copied().unwrap_or(0);
        Some((seen, st.answered(hub)))
    }

    /// Whether `session`'s candidate connections to `hub` include one the OS
    /// still lists as ESTABLISHED (asked about those sockets alone). An
    /// unreadable table answers yes: the grace then bounds the wait.
    fn still_established(&self, session: u32, hub: &str) -> bool {
        let pairs: Vec<(SocketAddr, SocketAddr)> = {
            let st = self.lock();
            st.conns
                .iter()
                .filter(|c| {
                    c.session == session
                        && c.hub == hub
                        && c.closed_at.is_none()
                        && !st.closing.contains(&(c.local, c.remote))
                })
                .map(|c| (c.local, c.remote))
                .collect()
        };
        if pairs.is_empty() || self.look_up(&pairs).is_err() {
            return !pairs.is_empty();
        }
        let st = self.lock();
        st.conns.iter().any(|c| {
            pairs.contains(&(c.local, c.remote))
                && c.closed_at.is_none()
                && c.last_state.as_deref() == Some("ESTABLISHED")
        })
    }

    /// Wait up to [`REUSE_GRACE`] for `hub` to answer a request (proof the
    /// request that wanted a new connection was served on the old one),
    /// woken by each answer. `false` at the deadline, or as soon as the OS
    /// says no established connection is left to serve it.
    async fn served_by_reuse(
        &self,
        session: u32,
        hub: &str,
        seen: u64,
        answered: Arc<Notify>,
    ) -> bool {
        let start = Instant::now();
        let deadline = start + REUSE_GRACE;
        let mut gap = REUSE_FIRST_LOOK;
        let mut look_at = start + gap;
        loop {
            let notified = answered.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().served.get(hub).copied().unwrap_or(0) > seen {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            if now >= look_at {
                if !self.still_established(session, hub) {
                    return false;
                }
                gap *= 2;
                look_at = now + gap;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(look_at.min(deadline)) => {}
            }
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

    /// The verdict as things stand, without waiting.
    pub fn verdict(&self, waited: Duration) -> Verdict {
        let mut st = self.lock();
        let confirmed = self.refresh(&mut st).is_ok();
        let close_check = match (&st.table_error, confirmed) {
            (_, true) => CloseCheck::Confirmed {
                mechanism: self.inner.table.mechanism(),
            },
            (Some(reason), false) => CloseCheck::Unconfirmed {
                reason: reason.clone(),
            },
            (None, false) => unreachable!("refresh failed without an error"),
        };
        // Connections from this process to a hub that no session opened: a
        // client built without the ledger's layer.
        let mut strays = Vec::new();
        let hub_addrs: Vec<SocketAddr> = st
            .conns
            .iter()
            .map(|c| c.remote)
            .chain(st.hubs.keys().copied())
            .collect();
        if confirmed && !hub_addrs.is_empty() {
            let mut remotes = hub_addrs.clone();
            remotes.sort();
            remotes.dedup();
            match self.inner.table.own_tcp_entries_to(&remotes) {
                Ok(own) => strays.extend(own.into_iter().filter(|e| {
                    e.open
                        && hub_addrs.contains(&e.remote)
                        && !st
                            .conns
                            .iter()
                            .any(|c| c.local == e.local && c.remote == e.remote)
                })),
                Err(e) => st.table_error = Some(e.0),
            }
        }
        let mut hubs: BTreeMap<String, HubUsage> = BTreeMap::new();
        for conn in &st.conns {
            let usage = hubs.entry(conn.hub.clone()).or_insert_with(|| HubUsage {
                hub: conn.hub.clone(),
                connections: 0,
                requests: 0,
                peak_open: confirmed.then_some(0),
            });
            usage.connections += 1;
            usage.requests += conn.requests;
            if let Some(peak) = usage.peak_open.as_mut() {
                *peak = (*peak).max(st.peak.get(&conn.remote).copied().unwrap_or(1));
            }
        }
        Verdict {
            close_check,
            inbound: st.inbound.clone(),
            sessions: st.sessions,
            connections: st.conns.clone(),
            unidentified: st.unidentified,
            unledgered_requests: st.unledgered_requests,
            strays,
            hubs: hubs.into_values().collect(),
            budget: self.inner.budget,
            waited,
        }
    }
}

/// The connector layer of one session: records each connection its client
/// opens. Get it from [`Ledger::new_session`].
#[derive(Clone, Debug)]
pub struct SessionLayer {
    ledger: Ledger,
    session: u32,
}

impl<S> tower::Layer<S> for SessionLayer {
    type Service = SessionConnector<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionConnector {
            inner,
            ledger: self.ledger.clone(),
            session: self.session,
        }
    }
}

/// The connector service [`SessionLayer`] wraps around reqwest's own.
#[derive(Clone, Debug)]
pub struct SessionConnector<S> {
    inner: S,
    ledger: Ledger,
    session: u32,
}

impl<S, R> tower::Service<R> for SessionConnector<S>
where
    S: tower::Service<R> + Clone + Send + 'static,
    R: Send + 'static,
    S::Response: Connection + Send + 'static,
    S::Error: From<ConnectNotNeeded> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // Called on the requesting task, so the task-local hub is visible.
        let reuse = REQUEST_HUB
            .try_with(|hub| hub.clone())
            .ok()
            .and_then(|hub| Some((self.ledger.reusable(self.session, &hub)?, hub)));
        // The service that was polled ready goes into the future; a clone
        // stays for the next call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let ledger = self.ledger.clone();
        let session = self.session;
        Box::pin(async move {
            if let Some(((seen, answered), hub)) = reuse {
                if ledger.served_by_reuse(session, &hub, seen, answered).await {
                    return Err(ConnectNotNeeded.into());
                }
            }
            let conn = inner.call(request).await?;
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            let addrs = extras
                .get::<HttpInfo>()
                .map(|info| (info.local_addr(), info.remote_addr()));
            ledger.opened(session, addrs);
            Ok(conn)
        })
    }
}

/// What the ledger concluded at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub close_check: CloseCheck,
    /// Sessions (clients) created; a run must create exactly one.
    pub sessions: u32,
    pub connections: Vec<ConnRecord>,
    /// Connections the connector reported without addresses; they cannot
    /// be checked.
    pub unidentified: u32,
    /// Responses over connections no session opened.
    pub unledgered_requests: u64,
    /// Open connections from this process to a hub that no session opened.
    pub strays: Vec<TcpEntry>,
    /// Connections hubs made to the harness's data receiver: reported
    /// apart, never the client's, never a leak.
    pub inbound: Vec<Inbound>,
    pub hubs: Vec<HubUsage>,
    /// Connections a hub may have open at once.
    pub budget: usize,
    /// How long the ledger waited for closes.
    pub waited: Duration,
}

impl Verdict {
    pub fn opened(&self) -> usize {
        self.connections.len()
    }

    pub fn closed(&self) -> usize {
        self.connections
            .iter()
            .filter(|c| c.closed_at.is_some())
            .count()
    }

    /// Connections still open after the wait (only meaningful when closes
    /// were confirmed).
    pub fn still_open(&self) -> impl Iterator<Item = &ConnRecord> {
        self.connections.iter().filter(|c| c.closed_at.is_none())
    }

    pub fn confirmed(&self) -> bool {
        matches!(self.close_check, CloseCheck::Confirmed { .. })
    }

    /// A connection to a hub was still open after the wait.
    pub fn leaked(&self) -> bool {
        self.confirmed() && (self.still_open().next().is_some() || !self.strays.is_empty())
    }

    /// Every reason the connection gate fails the run, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.confirmed() {
            for c in self.still_open() {
                let last_used = match &c.last_scenario {
                    Some(last) if c.scenario.as_ref() != Some(last) => {
                        format!(", last used during {last}")
                    }
                    _ => String::new(),
                };
                out.push(format!(
                    "connection leak: {} -> hub {} ({}), opened during {}{last_used}, \
                     still {} {:.1}s after the session closed",
                    c.local,
                    c.hub,
                    c.remote,
                    c.scenario_name(),
                    c.last_state.as_deref().unwrap_or("open"),
                    self.waited.as_secs_f64(),
                ));
            }
            for s in &self.strays {
                out.push(format!(
                    "connection leak: {} -> {} ({}) was opened outside the session",
                    s.local, s.remote, s.state
                ));
            }
        }
        if self.sessions > 1 {
            out.push(format!(
                "{} sessions created, expected 1: every client is a new pool and new connections",
                self.sessions
            ));
        }
        if self.unledgered_requests > 0 {
            out.push(format!(
                "{} requests travelled on connections no session opened (a client built outside the session)",
                self.unledgered_requests
            ));
        }
        for hub in &self.hubs {
            if let Some(peak) = hub.peak_open.filter(|p| *p > self.budget) {
                out.push(format!(
                    "hub {}: {} connections open at once, budget {} (--conn-budget)",
                    hub.hub, peak, self.budget
                ));
            }
        }
        out
    }

    /// The connection gate fails the run.
    pub fn failed(&self) -> bool {
        !self.problems().is_empty()
    }

    /// The summary lines for the report.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut out = vec![format!("sessions: {}", self.sessions)];
        match &self.close_check {
            CloseCheck::Confirmed { mechanism } => {
                out.push(format!(
                    "connections: opened {}, closed {}, still open {}",
                    self.opened(),
                    self.closed(),
                    self.opened() - self.closed() + self.strays.len()
                ));
                out.push(format!("closes confirmed from {mechanism}"));
            }
            CloseCheck::Unconfirmed { reason } => {
                out.push(format!(
                    "connections: opened {}, closes NOT confirmed on this platform ({reason}); leaks cannot be ruled out",
                    self.opened()
                ));
            }
        }
        if self.unidentified > 0 {
            out.push(format!(
                "{} connections without addresses could not be checked",
                self.unidentified
            ));
        }
        for i in &self.inbound {
            out.push(format!(
                "receiver {} (setup's delivery check): {} inbound connection(s) from hub {}; not the client's, not counted above",
                i.receiver, i.connections, i.hub
            ));
        }
        for hub in &self.hubs {
            let per_conn = hub.requests as f64 / hub.connections.max(1) as f64;
            let peak = match hub.peak_open {
                Some(p) => format!("at most {p} open at once"),
                None => "overlap unknown".to_string(),
            };
            out.push(format!(
                "hub {}: {} connections, {} requests ({per_conn:.1} per connection), {peak} (budget {})",
                hub.hub, hub.connections, hub.requests, self.budget
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket table whose entries the test sets, or that cannot be read;
    /// it counts how often it was read.
    #[derive(Clone, Default)]
    struct FakeTable(
        Arc<Mutex<Option<Vec<TcpEntry>>>>,
        Arc<std::sync::atomic::AtomicUsize>,
    );

    impl FakeTable {
        fn set(&self, entries: Option<Vec<TcpEntry>>) {
            *self.0.lock().unwrap() = entries;
        }
        fn reads(&self) -> usize {
            self.1.load(std::sync::atomic::Ordering::SeqCst)
        }
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

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn established(local: &str, remote: &str) -> TcpEntry {
        TcpEntry {
            local: addr(local),
            remote: addr(remote),
            state: "ESTABLISHED".to_string(),
            open: true,
        }
    }

    const HUB: &str = "127.0.0.1:8080";

    #[tokio::test(start_paused = true)]
    async fn an_open_connection_is_a_leak_after_the_deadline_and_not_before_it_closes() {
        let table = FakeTable::default();
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let layer = ledger.new_session();
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
        let table = FakeTable::default();
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let layer = ledger.new_session();
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        table.set(Some(vec![]));
        let start = Instant::now();
        let verdict = ledger.settle(Duration::from_secs(5)).await;
        assert!(start.elapsed() < Duration::from_millis(100));
        assert!(!verdict.leaked());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_table_says_closes_are_unconfirmed_instead_of_claiming_zero() {
        let table = FakeTable::default();
        let ledger = Ledger::with_table(1, Box::new(table.clone()));
        let layer = ledger.new_session();
        for port in [40000, 40001] {
            ledger.opened(
                layer.session,
                Some((addr(&format!("127.0.0.1:{port}")), addr(HUB))),
            );
        }
        let verdict = ledger.settle(Duration::from_secs(5)).await;
        assert!(!verdict.confirmed());
        assert!(!verdict.leaked());
        // Overlap is unknown too, so the budget of 1 is not claimed exceeded.
        assert!(verdict.problems().is_empty(), "{:?}", verdict.problems());
        let lines = verdict.summary_lines().join("\n");
        assert!(lines.contains("closes NOT confirmed on this platform (not on this platform)"));
        assert!(!lines.contains("still open 0"));
        assert!(lines.contains("overlap unknown"));
    }

    #[test]
    fn a_second_session_and_an_exceeded_budget_fail_the_gate() {
        let table = FakeTable::default();
        table.set(Some(vec![]));
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let first = ledger.new_session();
        assert!(ledger.verdict(Duration::ZERO).problems().is_empty());
        let _second = ledger.new_session();
        let problems = ledger.verdict(Duration::ZERO).problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("2 sessions created, expected 1"));

        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let layer = ledger.new_session();
        let mut open = Vec::new();
        for port in [40000, 40001, 40002] {
            let local = format!("127.0.0.1:{port}");
            open.push(established(&local, HUB));
            table.set(Some(open.clone()));
            ledger.opened(layer.session, Some((addr(&local), addr(HUB))));
            let verdict = ledger.verdict(Duration::ZERO);
            let over = verdict.problems().iter().any(|p| p.contains("budget 2"));
            assert_eq!(over, port == 40002, "{port}: {:?}", verdict.problems());
        }
        let _ = first;
    }

    #[tokio::test(start_paused = true)]
    async fn a_connect_racing_the_pool_waits_for_the_answer_without_reading_the_table() {
        let table = FakeTable::default();
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        let ledger = Ledger::with_table(1, Box::new(table.clone()));
        let layer = ledger.new_session();
        // One connection per hub: opening it reads nothing.
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        assert_eq!(table.reads(), 0);
        for _ in 0..50 {
            let (seen, answered) = ledger.reusable(layer.session, HUB).expect("reusable");
            let wait = ledger.served_by_reuse(layer.session, HUB, seen, answered);
            let answer = async {
                tokio::task::yield_now().await;
                ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
            };
            let (served, ()) = tokio::join!(wait, answer);
            assert!(served);
        }
        assert_eq!(table.reads(), 0, "the request path read the socket table");
        let verdict = ledger.verdict(Duration::ZERO);
        assert_eq!(verdict.connections[0].requests, 51);
        assert_eq!(
            table.reads(),
            1 + 1,
            "the verdict reads the table and own sockets"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_the_hub_dropped_ends_the_reuse_wait_at_the_first_look() {
        let table = FakeTable::default();
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let layer = ledger.new_session();
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        // The hub hung up; our side has not closed yet.
        table.set(Some(vec![TcpEntry {
            state: "CLOSE_WAIT".to_string(),
            ..established("127.0.0.1:40000", HUB)
        }]));
        let (seen, answered) = ledger.reusable(layer.session, HUB).expect("reusable");
        let start = Instant::now();
        assert!(
            !ledger
                .served_by_reuse(layer.session, HUB, seen, answered)
                .await
        );
        assert_eq!(start.elapsed(), REUSE_FIRST_LOOK);
        assert_eq!(table.reads(), 1);

        // Still established and never answering: the grace bounds the wait,
        // with a handful of looks, not a poll.
        table.set(Some(vec![established("127.0.0.1:40000", HUB)]));
        let start = Instant::now();
        let answered = ledger.lock().answered(HUB);
        assert!(
            !ledger
                .served_by_reuse(layer.session, HUB, seen, answered)
                .await
        );
        assert_eq!(start.elapsed(), REUSE_GRACE);
        assert!(table.reads() <= 1 + 8, "{} reads", table.reads());
    }

    #[test]
    fn an_answer_saying_connection_close_makes_the_connection_not_reusable() {
        let table = FakeTable::default();
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let layer = ledger.new_session();
        ledger.opened(layer.session, Some((addr("127.0.0.1:40000"), addr(HUB))));
        ledger.record_request(HUB, addr("127.0.0.1:40000"), addr(HUB));
        assert!(ledger.reusable(layer.session, HUB).is_some());
        ledger
            .lock()
            .closing
            .insert((addr("127.0.0.1:40000"), addr(HUB)));
        assert!(ledger.reusable(layer.session, HUB).is_none());
        assert_eq!(table.reads(), 0);
    }

    #[test]
    fn sequential_connections_that_closed_do_not_count_as_overlap() {
        let table = FakeTable::default();
        let ledger = Ledger::with_table(1, Box::new(table.clone()));
        let layer = ledger.new_session();
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
    fn requests_on_unknown_connections_and_strays_are_reported() {
        let table = FakeTable::default();
        table.set(Some(vec![established("127.0.0.1:40009", HUB)]));
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let _layer = ledger.new_session();
        ledger.record_request(HUB, addr("127.0.0.1:40009"), addr(HUB));
        let verdict = ledger.verdict(Duration::ZERO);
        assert!(verdict.leaked());
        let problems = verdict.problems().join("\n");
        assert!(problems.contains(
            "127.0.0.1:40009 -> 127.0.0.1:8080 (ESTABLISHED) was opened outside the session"
        ));
        assert!(problems.contains("1 requests travelled on connections no session opened"));
    }

    #[test]
    fn the_scenario_is_the_one_running_against_the_connections_hub() {
        let table = FakeTable::default();
        table.set(Some(vec![]));
        let ledger = Ledger::with_table(2, Box::new(table.clone()));
        let layer = ledger.new_session();
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

    #[test]
    fn the_os_table_lists_a_connection_of_ours_and_sees_it_close() {
        let table = os_socket_table();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let find = |entries: Vec<TcpEntry>| {
            entries
                .into_iter()
                .find(|e| e.local == local && e.remote == remote)
        };
        let seen = find(table.tcp_entries().unwrap()).expect("connection listed");
        assert!(seen.open, "{seen:?}");
        assert!(find(table.own_tcp_entries().unwrap()).is_some());
        let (server_side, _) = listener.accept().unwrap();
        assert!(find(table.own_tcp_entries().unwrap()).is_some());
        // Own connections to this address alone: ours, not the server's side.
        let to = table.own_tcp_entries_to(&[remote]).unwrap();
        assert!(
            to.iter().any(|e| e.local == local && e.open) && to.iter().all(|e| e.remote == remote),
            "{to:?}"
        );
        let elsewhere = SocketAddr::new(remote.ip(), 1);
        assert!(table.own_tcp_entries_to(&[elsewhere]).unwrap().is_empty());
        // Asked about this one socket alone: the same answer.
        let looked = table.lookup(&[(local, remote)]).unwrap();
        assert_eq!(looked.len(), 1, "{looked:?}");
        assert_eq!(looked[0].state, "ESTABLISHED");
        assert!(looked[0].open);
        // The hub hangs up first: CLOSE_WAIT is still open on our side.
        drop(server_side);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let state = loop {
            let looked = table.lookup(&[(local, remote)]).unwrap();
            if looked.first().is_some_and(|e| e.state != "ESTABLISHED")
                || std::time::Instant::now() > deadline
            {
                break looked;
            }
            std::thread::yield_now();
        };
        assert_eq!(state[0].state, "CLOSE_WAIT", "{state:?}");
        assert!(state[0].open);
        drop(client);
        let after = find(table.tcp_entries().unwrap());
        assert!(after.as_ref().is_none_or(|e| !e.open), "{after:?}");
        let looked = table.lookup(&[(local, remote)]).unwrap();
        assert!(looked.iter().all(|e| !e.open), "{looked:?}");
        // A pair that never existed is simply absent.
        let nothing = table
            .lookup(&[(local, SocketAddr::new(remote.ip(), 1))])
            .unwrap();
        assert!(nothing.is_empty(), "{nothing:?}");
    }
}
