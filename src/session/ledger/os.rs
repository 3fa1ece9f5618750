//! The operating system's table of TCP connections, IPv4 and IPv6, as the
//! connection ledger reads it: netlink sock_diag on Linux and the owner-PID
//! TCP tables (GetExtendedTcpTable) on Windows, both through netstat2;
//! libproc (`proc_pidfdinfo`) on macOS, through the libproc crate, which
//! needs no C headers to build.
//!
//! Turning each platform's rows into [`TcpEntry`] values is plain code
//! compiled on every OS, so the Linux test run checks the macOS and Windows
//! translations too; only the system calls are per-OS.

use std::net::SocketAddr;

pub use imp::OsSocketTable;

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
    return Box::new(super::linux::Targeted::new(OsSocketTable));
    #[cfg(not(target_os = "linux"))]
    Box::new(OsSocketTable)
}

/// Addresses compared the way the socket table reports them: IPv4-mapped
/// IPv6 as IPv4, no IPv6 scope or flow label.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// Build an entry from one row; `None` for a listening socket, which is no
/// connection.
fn tcp_entry(
    local: SocketAddr,
    remote: SocketAddr,
    state: &str,
    closed_by_us: bool,
) -> Option<TcpEntry> {
    (state != "LISTEN").then(|| TcpEntry {
        local: canonical(local),
        remote: canonical(remote),
        state: state.to_string(),
        open: !closed_by_us,
    })
}

/// netstat2's rows (Linux, Windows).
#[cfg(any(target_os = "linux", target_os = "windows"))]
pub(super) mod netstat {
    use super::tcp_entry;
    use super::TcpEntry;
    use netstat2::{ProtocolSocketInfo, SocketInfo, TcpState};
    use std::net::SocketAddr;

    /// States our side only reaches after it closed the socket (or the OS
    /// dropped it); anything else, including CLOSE_WAIT, is still open.
    fn closed_by_us(state: TcpState) -> bool {
        matches!(
            state,
            TcpState::Closed
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::Closing
                | TcpState::LastAck
                | TcpState::TimeWait
                | TcpState::DeleteTcb
        )
    }

    /// One row and the processes that own it (empty or `[0]` for a socket
    /// no process owns any more, such as one in TIME_WAIT).
    pub fn entry(info: &SocketInfo) -> Option<(TcpEntry, Vec<u32>)> {
        let ProtocolSocketInfo::Tcp(tcp) = &info.protocol_socket_info else {
            return None;
        };
        let entry = state_entry(
            SocketAddr::new(tcp.local_addr, tcp.local_port),
            SocketAddr::new(tcp.remote_addr, tcp.remote_port),
            tcp.state,
        )?;
        Some((entry, info.associated_pids.clone()))
    }

    /// A row by its state: netstat2's name for it, open unless our side
    /// closed it (the Linux lookups of one socket read the same states).
    pub fn state_entry(local: SocketAddr, remote: SocketAddr, state: TcpState) -> Option<TcpEntry> {
        tcp_entry(local, remote, &state.to_string(), closed_by_us(state))
    }
}

#[cfg(any(target_os = "linux", target_os = "windows"))]
mod imp {
    use super::netstat::entry;
    use super::{SocketTable, SocketTableError, TcpEntry};
    use netstat2::{AddressFamilyFlags, ProtocolFlags, SocketInfo};

    pub struct OsSocketTable;

    const MECHANISM: &str = if cfg!(target_os = "linux") {
        "the Linux socket table (netlink sock_diag)"
    } else {
        "the Windows TCP tables (GetExtendedTcpTable, IPv4 and IPv6)"
    };

    /// Every TCP row, IPv4 and IPv6, with its owners when `with_pids`.
    /// An error means the dump itself failed: the read fails and closes are
    /// reported unconfirmed rather than guessed.
    fn read(with_pids: bool) -> Result<Vec<(TcpEntry, Vec<u32>)>, SocketTableError> {
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let err = |e: netstat2::error::Error| SocketTableError(e.to_string());
        // On Linux finding each socket's process is the slow part (a walk of
        // /proc), so only the sweep for unledgered connections asks for it.
        // On Windows the owner-PID tables are the only ones with IPv6 rows
        // (the plain table netstat2 reads without PIDs is IPv4 only), and
        // they cost the same.
        #[cfg(target_os = "linux")]
        let rows = if with_pids {
            netstat2::iterate_sockets_info(af, ProtocolFlags::TCP)
                .map_err(err)?
                .collect::<Result<Vec<SocketInfo>, _>>()
        } else {
            netstat2::iterate_sockets_info_without_pids(af, ProtocolFlags::TCP)
                .map_err(err)?
                .collect::<Result<Vec<SocketInfo>, _>>()
        };
        #[cfg(target_os = "windows")]
        let rows = {
            let _ = with_pids;
            netstat2::iterate_sockets_info(af, ProtocolFlags::TCP)
                .map_err(err)?
                .collect::<Result<Vec<SocketInfo>, _>>()
        };
        let infos = rows.map_err(err)?;
        Ok(infos.iter().filter_map(entry).collect())
    }

    impl SocketTable for OsSocketTable {
        fn mechanism(&self) -> String {
            MECHANISM.to_string()
        }

        fn tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            Ok(read(false)?.into_iter().map(|(e, _)| e).collect())
        }

        fn own_tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            let me = std::process::id();
            Ok(read(true)?
                .into_iter()
                .filter(|(_, pids)| pids.contains(&me))
                .map(|(e, _)| e)
                .collect())
        }
    }
}

/// macOS's rows, as the plain numbers `proc_pidfdinfo` returns for a TCP
/// socket (`struct tcp_sockinfo` in `<sys/proc_info.h>`).
#[cfg(any(target_os = "macos", test))]
mod darwin {
    use super::{tcp_entry, TcpEntry};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    /// `insi_vflag` bits: which of the address union's forms is in use. An
    /// IPv6 socket talking IPv4 says IPv4 here and keeps the address in
    /// the IPv4 form, so the flag, not the socket's family, decides.
    const INI_IPV4: u8 = 0x1;
    const INI_IPV6: u8 = 0x2;

    /// One TCP socket as libproc reports it.
    #[derive(Debug, Clone, Copy)]
    pub struct RawTcp {
        pub vflag: u8,
        /// `insi_laddr` / `insi_faddr` as bytes: an `in6_addr`, or three
        /// 32-bit pads followed by an `in_addr`.
        pub local_addr: [u8; 16],
        pub remote_addr: [u8; 16],
        /// `insi_lport` / `insi_fport`: a network-order port in an int.
        pub local_port: i32,
        pub remote_port: i32,
        /// `tcpsi_state` (TSI_S_*).
        pub state: i32,
    }

    fn addr(vflag: u8, bytes: [u8; 16]) -> Option<IpAddr> {
        if vflag & INI_IPV4 != 0 {
            let [.., a, b, c, d] = bytes;
            Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
        } else if vflag & INI_IPV6 != 0 {
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        } else {
            None
        }
    }

    fn port(raw: i32) -> u16 {
        // The kernel copies the 16-bit network-order port into an int; the
        // low 16 bits, read as network order, are the port.
        u16::from_be(raw as u16)
    }

    /// The TSI_S_* state's name, and whether our side has closed.
    fn state(raw: i32) -> (&'static str, bool) {
        match raw {
            0 => ("CLOSED", true),
            1 => ("LISTEN", false),
            2 => ("SYN_SENT", false),
            3 => ("SYN_RCVD", false),
            4 => ("ESTABLISHED", false),
            5 => ("CLOSE_WAIT", false),
            6 => ("FIN_WAIT_1", true),
            7 => ("CLOSING", true),
            8 => ("LAST_ACK", true),
            9 => ("FIN_WAIT_2", true),
            10 => ("TIME_WAIT", true),
            // An unknown state is not claimed closed.
            _ => ("UNKNOWN", false),
        }
    }

    pub fn entry(raw: &RawTcp) -> Option<TcpEntry> {
        let local = SocketAddr::new(addr(raw.vflag, raw.local_addr)?, port(raw.local_port));
        let remote = SocketAddr::new(addr(raw.vflag, raw.remote_addr)?, port(raw.remote_port));
        let (name, closed) = state(raw.state);
        tcp_entry(local, remote, name, closed)
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use super::darwin::{entry, RawTcp};
    use super::{SocketTable, SocketTableError, TcpEntry};
    use libproc::bsd_info::BSDInfo;
    use libproc::file_info::{pidfdinfo, ListFDs, ProcFDType};
    use libproc::net_info::{SocketFDInfo, SocketInfoKind};
    use libproc::proc_pid::{listpidinfo, pidinfo};

    pub struct OsSocketTable;

    /// Room for descriptors opened between counting and listing them.
    const FD_SLACK: usize = 32;

    /// This process's TCP sockets. macOS keeps no system-wide table a
    /// process may read: sockets are listed per process, and a socket is
    /// listed only while a descriptor refers to it, so a connection we
    /// closed (FIN_WAIT, TIME_WAIT) is simply gone, which counts as closed.
    fn own() -> Result<Vec<TcpEntry>, SocketTableError> {
        let pid = std::process::id() as i32;
        let err = |what: &str, e: String| SocketTableError(format!("{what}: {e}"));
        let info = pidinfo::<BSDInfo>(pid, 0).map_err(|e| err("proc_pidinfo", e))?;
        let fds = listpidinfo::<ListFDs>(pid, info.pbi_nfiles as usize + FD_SLACK)
            .map_err(|e| err("listing descriptors", e))?;
        let mut out = Vec::new();
        for fd in fds {
            if !matches!(ProcFDType::from(fd.proc_fdtype), ProcFDType::Socket) {
                continue;
            }
            // A descriptor closed between the listing and this read is an
            // error for that one socket, not for the table: skip it.
            let Ok(sock) = pidfdinfo::<SocketFDInfo>(pid, fd.proc_fd) else {
                continue;
            };
            let psi = sock.psi;
            if !matches!(SocketInfoKind::from(psi.soi_kind), SocketInfoKind::Tcp) {
                continue;
            }
            // SAFETY: soi_kind says the union holds tcp_sockinfo; both forms
            // of the address union are 16 plain bytes.
            let (tcp, local_addr, remote_addr) = unsafe {
                let tcp = psi.soi_proto.pri_tcp;
                let ini = tcp.tcpsi_ini;
                (
                    tcp,
                    ini.insi_laddr.ina_6.s6_addr,
                    ini.insi_faddr.ina_6.s6_addr,
                )
            };
            let raw = RawTcp {
                vflag: tcp.tcpsi_ini.insi_vflag,
                local_addr,
                remote_addr,
                local_port: tcp.tcpsi_ini.insi_lport,
                remote_port: tcp.tcpsi_ini.insi_fport,
                state: tcp.tcpsi_state,
            };
            out.extend(entry(&raw));
        }
        Ok(out)
    }

    impl SocketTable for OsSocketTable {
        fn mechanism(&self) -> String {
            "this process's sockets on macOS (libproc)".to_string()
        }

        /// The process's own sockets: see [`own`]. Every connection the
        /// ledger follows is one of them.
        fn tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            own()
        }

        fn own_tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            own()
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod imp {
    use super::{SocketTable, SocketTableError, TcpEntry};

    /// No socket-table reader for this OS: closes cannot be confirmed.
    pub struct OsSocketTable;

    impl SocketTable for OsSocketTable {
        fn mechanism(&self) -> String {
            "no socket-table reader on this operating system".to_string()
        }
        fn tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            Err(SocketTableError(format!(
                "no socket-table reader for {}",
                std::env::consts::OS
            )))
        }
        fn own_tcp_entries(&self) -> Result<Vec<TcpEntry>, SocketTableError> {
            self.tcp_entries()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::darwin::{self, RawTcp};
    use super::*;
    use std::net::IpAddr;
    use std::time::Duration;
    #[cfg(any(target_os = "linux", target_os = "windows"))]
    use {
        super::netstat,
        netstat2::{ProtocolSocketInfo, SocketInfo, TcpSocketInfo, TcpState},
    };

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[cfg(any(target_os = "linux", target_os = "windows"))]
    fn netstat_row(local: SocketAddr, remote: SocketAddr, state: TcpState) -> SocketInfo {
        SocketInfo {
            protocol_socket_info: ProtocolSocketInfo::Tcp(TcpSocketInfo {
                local_addr: local.ip(),
                local_port: local.port(),
                remote_addr: remote.ip(),
                remote_port: remote.port(),
                state,
            }),
            associated_pids: vec![7],
            #[cfg(target_os = "linux")]
            inode: 0,
            #[cfg(target_os = "linux")]
            uid: 0,
        }
    }

    #[cfg(any(target_os = "linux", target_os = "windows"))]
    #[test]
    fn netstat_rows_ipv4_ipv6_and_mapped_become_entries_with_owners() {
        for (local, remote, want_local, want_remote) in [
            (
                "127.0.0.1:40000",
                "127.0.0.1:80",
                "127.0.0.1:40000",
                "127.0.0.1:80",
            ),
            ("[::1]:40000", "[::1]:80", "[::1]:40000", "[::1]:80"),
            // A dual-stack socket talking IPv4 compares as IPv4.
            (
                "[::ffff:127.0.0.1]:40000",
                "[::ffff:127.0.0.1]:80",
                "127.0.0.1:40000",
                "127.0.0.1:80",
            ),
        ] {
            let (e, pids) =
                netstat::entry(&netstat_row(sa(local), sa(remote), TcpState::Established))
                    .expect("an established row is an entry");
            assert_eq!((e.local, e.remote), (sa(want_local), sa(want_remote)));
            assert_eq!(e.state, "ESTABLISHED");
            assert!(e.open);
            assert_eq!(pids, vec![7]);
        }
    }

    #[cfg(any(target_os = "linux", target_os = "windows"))]
    #[test]
    fn netstat_states_open_closed_and_listening() {
        let (l, r) = (sa("[::1]:40000"), sa("[::1]:80"));
        let open = |s| netstat::entry(&netstat_row(l, r, s)).map(|(e, _)| e.open);
        assert_eq!(open(TcpState::Listen), None);
        for s in [
            TcpState::Established,
            TcpState::CloseWait,
            TcpState::SynSent,
        ] {
            assert_eq!(open(s), Some(true), "{s}");
        }
        for s in [
            TcpState::FinWait1,
            TcpState::FinWait2,
            TcpState::TimeWait,
            TcpState::LastAck,
            TcpState::Closing,
            TcpState::DeleteTcb,
        ] {
            assert_eq!(open(s), Some(false), "{s}");
        }
    }

    /// A row laid out as a little-endian Mac fills it: ports in network
    /// order in an int, IPv4 in the last four bytes of the union.
    fn mac_row(vflag: u8, local: SocketAddr, remote: SocketAddr, state: i32) -> RawTcp {
        let bytes = |a: SocketAddr| match a.ip() {
            IpAddr::V4(v4) => {
                let mut b = [0; 16];
                b[12..].copy_from_slice(&v4.octets());
                b
            }
            IpAddr::V6(v6) => v6.octets(),
        };
        let port = |a: SocketAddr| i32::from(u16::from_ne_bytes(a.port().to_be_bytes()));
        RawTcp {
            vflag,
            local_addr: bytes(local),
            remote_addr: bytes(remote),
            local_port: port(local),
            remote_port: port(remote),
            state,
        }
    }

    #[test]
    fn macos_rows_ipv4_and_ipv6_become_entries() {
        let v4 = darwin::entry(&mac_row(1, sa("127.0.0.1:40000"), sa("127.0.0.1:8080"), 4))
            .expect("entry");
        assert_eq!(v4.local, sa("127.0.0.1:40000"));
        assert_eq!(v4.remote, sa("127.0.0.1:8080"));
        assert_eq!(v4.state, "ESTABLISHED");
        assert!(v4.open);

        let v6 =
            darwin::entry(&mac_row(2, sa("[::1]:40001"), sa("[fe80::1]:80"), 5)).expect("entry");
        assert_eq!(v6.local, sa("[::1]:40001"));
        assert_eq!(v6.remote, sa("[fe80::1]:80"));
        assert_eq!(v6.state, "CLOSE_WAIT");
        assert!(v6.open, "the hub hung up, we did not");

        // An IPv6 socket talking IPv4: vflag says IPv4, address in v4 form.
        let dual = mac_row(1, sa("127.0.0.1:40002"), sa("127.0.0.1:80"), 4);
        assert_eq!(darwin::entry(&dual).unwrap().remote, sa("127.0.0.1:80"));
        // Neither form flagged: not guessed.
        assert!(darwin::entry(&RawTcp { vflag: 0, ..dual }).is_none());
    }

    #[test]
    fn macos_states_open_closed_and_listening() {
        let open = |s| darwin::entry(&mac_row(1, sa("127.0.0.1:1"), sa("127.0.0.1:2"), s));
        assert!(open(1).is_none(), "LISTEN is no connection");
        for s in [2, 3, 4, 5, 99] {
            assert!(open(s).unwrap().open, "state {s}");
        }
        for (s, name) in [
            (0, "CLOSED"),
            (6, "FIN_WAIT_1"),
            (9, "FIN_WAIT_2"),
            (10, "TIME_WAIT"),
        ] {
            let e = open(s).unwrap();
            assert!(!e.open, "state {s}");
            assert_eq!(e.state, name);
        }
    }

    /// A loopback connection of ours: the listener at `host` (kept, so the
    /// other side stays) and our client connected to it.
    fn connected(host: &str) -> (std::net::TcpListener, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind(host)
            .unwrap_or_else(|e| panic!("bind {host} (loopback must have IPv4 and IPv6): {e}"));
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener, client)
    }

    /// The entry of the connection `local` -> `remote` in a listing.
    fn entry_of(entries: Vec<TcpEntry>, local: SocketAddr, remote: SocketAddr) -> Option<TcpEntry> {
        entries
            .into_iter()
            .find(|e| e.local == local && e.remote == remote)
    }

    /// The real table, both address families: a connection of ours is
    /// listed open, and after we close it, gone or closed.
    #[test]
    fn the_os_table_sees_ipv4_and_ipv6_connections_open_and_close() {
        let table = OsSocketTable;
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let (_listener, client) = connected(host);
            let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
            let find = |entries| entry_of(entries, local, remote);
            let seen = find(table.tcp_entries().unwrap()).expect("connection listed");
            assert!(seen.open, "{seen:?}");
            assert!(find(table.own_tcp_entries().unwrap()).is_some(), "{host}");
            drop(client);
            let after = find(table.tcp_entries().unwrap());
            assert!(after.as_ref().is_none_or(|e| !e.open), "{after:?}");
        }
    }

    #[test]
    fn the_os_table_lists_a_connection_of_ours_and_sees_it_close() {
        let table = os_socket_table();
        let (listener, client) = connected("127.0.0.1:0");
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let find = |entries| entry_of(entries, local, remote);
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
