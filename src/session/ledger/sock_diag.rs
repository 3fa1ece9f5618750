//! Linux: the state of exactly the connections asked about. One netlink
//! sock_diag request per connection, without `NLM_F_DUMP`: the kernel looks
//! the socket up by its address pair in its connection hash (the
//! `inet_diag_find_one` path, what `ss` uses for one socket), so the cost
//! does not grow with the other TCP sockets on the host. A full dump of the
//! table (netstat2) stays for the end of the run.

use std::io;
use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NetlinkAddr};

use super::TcpEntry;

/// ENOENT: the kernel has no socket with that address pair.
const ENOENT: i32 = 2;

/// Whether the kernel can find this pair by address alone. A link-local
/// IPv6 connection is bound to its interface, which the ledger does not
/// keep (addresses are compared without scope): those go to the full read.
pub fn can_look_up(local: SocketAddr, remote: SocketAddr) -> bool {
    let link_local = |a: SocketAddr| match a.ip() {
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
        IpAddr::V4(_) => false,
    };
    local.is_ipv4() == remote.is_ipv4() && !link_local(local) && !link_local(remote)
}

/// One netlink socket, kept for the run's lookups (each is then one send
/// and one receive).
pub struct Diag {
    socket: Socket,
    buf: Vec<u8>,
    /// Sequence number of the last request; answers to others are skipped.
    seq: u32,
}

impl Diag {
    pub fn open() -> io::Result<Diag> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&NetlinkAddr::new(0, 0))?;
        Ok(Diag {
            socket,
            buf: vec![0; 8192],
            seq: 0,
        })
    }

    /// The connection `local` -> `remote` as the kernel lists it, or `None`
    /// when the kernel has no such socket (it closed and is gone).
    pub fn find(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<TcpEntry>> {
        if let (IpAddr::V4(l), IpAddr::V4(r)) = (local.ip(), remote.ip()) {
            if let Some(e) = self.query(AF_INET, local, remote)? {
                return Ok(Some(e));
            }
            // The same connection on an IPv6 socket with mapped addresses.
            let mapped =
                |ip: std::net::Ipv4Addr, port| SocketAddr::new(ip.to_ipv6_mapped().into(), port);
            return self.query(AF_INET6, mapped(l, local.port()), mapped(r, remote.port()));
        }
        self.query(AF_INET6, local, remote)
    }

    fn query(
        &mut self,
        family: u8,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<Option<TcpEntry>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: SocketId {
                    source_port: local.port(),
                    destination_port: remote.port(),
                    source_address: local.ip(),
                    destination_address: remote.ip(),
                    interface_id: 0,
                    // INET_DIAG_NOCOOKIE: match by addresses only.
                    cookie: [0xff; 8],
                },
            })
            .into(),
        );
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out[..]);
        self.socket.send(&out, 0)?;
        loop {
            let size = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut offset = 0;
            while offset < size {
                let message =
                    NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..size])
                        .map_err(|e| io::Error::other(format!("sock_diag answer: {e}")))?;
                let len = message.header.length as usize;
                if message.header.sequence_number != self.seq {
                    // A late answer to an earlier request.
                    if len == 0 {
                        break;
                    }
                    offset += len;
                    continue;
                }
                match message.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        let id = &r.header.socket_id;
                        // The kernel's state codes (include/net/tcp_states.h),
                        // read as netstat2 reads them in a full dump.
                        return Ok(super::os::netstat::state_entry(
                            SocketAddr::new(id.source_address, id.source_port),
                            SocketAddr::new(id.destination_address, id.destination_port),
                            netstat2::TcpState::from(r.header.state),
                        ));
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code.map(|c| -c.get()) {
                            Some(ENOENT) => Ok(None),
                            Some(code) => Err(io::Error::from_raw_os_error(code)),
                            None => Ok(None),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(None),
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}
