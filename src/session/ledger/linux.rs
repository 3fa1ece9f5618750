//! Linux: single-socket lookups through sock_diag, and this process's own
//! sockets found by the inodes of its own descriptors instead of a walk of
//! every process's descriptors; the table reads themselves are `os`'s.

use super::{canonical, sock_diag, SocketTable, SocketTableError, TcpEntry};
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
        use netstat2::{AddressFamilyFlags, ProtocolFlags};
        let err = |e: netstat2::error::Error| SocketTableError(e.to_string());
        let own =
            own_socket_inodes().map_err(|e| SocketTableError(format!("/proc/self/fd: {e}")))?;
        let af = AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6;
        let mut out = Vec::new();
        for info in
            netstat2::iterate_sockets_info_without_pids(af, ProtocolFlags::TCP).map_err(err)?
        {
            let info = info.map_err(err)?;
            if !own.contains(&info.inode) {
                continue;
            }
            // One reading of a row for every table: `os`'s (no listener,
            // open unless our side closed it).
            if let Some((entry, _)) = super::os::netstat::entry(&info) {
                out.push(entry);
            }
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
                let remote = canonical(sock_addr(fd, libc::getpeername)?);
                if !wanted.contains(&remote) {
                    return None;
                }
                Some((canonical(sock_addr(fd, libc::getsockname)?), remote))
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
