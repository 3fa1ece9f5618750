//! A hostile mDNS responder for tests inside a network namespace: it
//! answers with exactly the records it is given (an address of 0.0.0.0, a
//! multicast group ...), which no well-behaved responder library sends. It
//! answers the harness's legacy unicast query (`discovery::other_case`),
//! sent from an ephemeral port, directly to that port, with the service
//! type spelt `_VEGE._tcp.local` as that path expects. It listens on the
//! namespace's loopback (or on a test link's address), nowhere else.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use simple_dns::rdata::{RData, A, AAAA, PTR, SRV, TXT};
use simple_dns::{Name, Packet, ResourceRecord, CLASS};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);

/// One announced hub, records as given.
pub struct RawHub {
    pub instance: &'static str,
    pub host: &'static str,
    pub ips: Vec<IpAddr>,
    pub port: u16,
}

/// A running responder; stops (and its thread ends) when dropped.
pub struct RawResponder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RawResponder {
    /// Answer every legacy query for the hub service on the loopback with
    /// `hubs`.
    pub fn start(hubs: Vec<RawHub>) -> RawResponder {
        RawResponder::start_on(Ipv4Addr::LOCALHOST, hubs)
    }

    /// The same, for queries that arrive on the interface with address
    /// `interface` (a test link's, in the namespace).
    pub fn start_on(interface: Ipv4Addr, hubs: Vec<RawHub>) -> RawResponder {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .expect("a UDP socket");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        #[cfg(unix)]
        socket.set_reuse_port(true).expect("SO_REUSEPORT");
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5353);
        socket
            .bind(&any.into())
            .expect("bind 5353 in the namespace");
        socket
            .join_multicast_v4(&GROUP, &interface)
            .expect("join the mDNS group");
        let socket: UdpSocket = socket.into();
        // The stop flag is looked at between reads.
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 9000];
            while !flag.load(Ordering::SeqCst) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if from.port() != 5353 && asks_for_hubs(&buf[..n]) {
                    for hub in &hubs {
                        let _ = socket.send_to(&reply(hub), from);
                    }
                }
            }
        });
        RawResponder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RawResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn asks_for_hubs(packet: &[u8]) -> bool {
    Packet::parse(packet).is_ok_and(|p| {
        p.questions
            .iter()
            .any(|q| q.qname.to_string().eq_ignore_ascii_case("_vege._tcp.local"))
    })
}

/// The answer: the PTR, then the instance's SRV and TXT and the host's
/// addresses as additionals, every record exactly as given.
fn reply(hub: &RawHub) -> Vec<u8> {
    let ty = "_VEGE._tcp.local";
    let fullname = format!("{}.{ty}", hub.instance);
    let txt = ["version=5.1.1", "type=hub"]
        .into_iter()
        .try_fold(TXT::new(), |t, s| t.with_string(s))
        .expect("TXT strings");
    let srv = SRV {
        priority: 0,
        weight: 0,
        port: hub.port,
        target: Name::new_unchecked(hub.host),
    };
    let mut extra = vec![
        (fullname.as_str(), RData::SRV(srv)),
        (&fullname, RData::TXT(txt)),
    ];
    extra.extend(hub.ips.iter().map(|ip| {
        let data = match *ip {
            IpAddr::V4(v4) => RData::A(A { address: v4.into() }),
            IpAddr::V6(v6) => RData::AAAA(AAAA { address: v6.into() }),
        };
        (hub.host, data)
    }));
    let rr = |name, data| ResourceRecord::new(Name::new_unchecked(name), CLASS::IN, 120, data);
    let mut p = Packet::new_reply(0);
    p.answers
        .push(rr(ty, RData::PTR(PTR(Name::new_unchecked(&fullname)))));
    p.additional_records
        .extend(extra.into_iter().map(|(name, data)| rr(name, data)));
    p.build_bytes_vec().expect("a reply packet")
}
