//! Hubs whose responder spells the service type in another case
//! (`_VEGE._tcp.local.`, `_Vege._TCP.LOCAL.`). DNS names compare
//! case-insensitively (RFC 6762 §16) and python-zeroconf (Home Assistant's
//! mDNS library) finds such a responder, but mdns-sd matches the browsed
//! type byte for byte: it never reports one, and cannot even browse a type
//! that does not end in a lower-case `._tcp.local.`.
//!
//! So beside mdns-sd's browse, discovery sends a legacy unicast query (RFC
//! 6762 §6.7) for the `_vege._tcp.local.` PTR from an ephemeral port, on
//! each IPv4 interface. Responders answer that port directly (mdns-sd's
//! sockets never see it) with the PTR records and, as responders do, the
//! SRV, TXT and address records as additionals. Each instance whose PTR
//! owner is spelt otherwise than [`SERVICE_TYPE`] becomes a sighting (the
//! lower-case spelling is mdns-sd's). The query goes out at the start and
//! once more a second later, as mdns-sd's, and answers are read until the
//! browse ends; a hub found this way is not followed afterwards (its
//! goodbye or a re-announcement is not seen).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, Question, ResourceRecord, CLASS, TYPE};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{BrowseEvent, HubAddr, Sighting};
use crate::device::mdns::SERVICE_TYPE;

const MDNS_GROUP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)), 5353);
/// When the query goes out, from the start of the browse.
const SENDS: [Duration; 2] = [Duration::ZERO, Duration::from_secs(1)];

/// The running query; [`Probe::stop`] ends it.
pub(super) struct Probe {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Query on every IPv4 interface (only `interface` when given) until
    /// `timeout` or [`Probe::stop`], sending each sighting to `tx`.
    pub(super) fn start(
        interface: Option<String>,
        timeout: Duration,
        tx: mpsc::Sender<BrowseEvent>,
    ) -> Probe {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(interface, timeout, stopped, tx));
        Probe { stop, task }
    }

    /// Stop the query and wait for its task.
    pub(super) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// `fullname` without the service type suffix, compared in any case
/// (`Desk._VEGE._TCP.local.` -> `Desk`); `fullname` itself otherwise.
pub(super) fn strip_type(fullname: &str) -> &str {
    let suffix_len = SERVICE_TYPE.len() + 1;
    let cut = fullname.len().wrapping_sub(suffix_len);
    match fullname.get(cut..) {
        Some(tail)
            if fullname.len() > suffix_len
                && tail.eq_ignore_ascii_case(&format!(".{SERVICE_TYPE}")) =>
        {
            &fullname[..cut]
        }
        _ => fullname,
    }
}

/// The query: the `_vege._tcp.local.` PTR with the unicast-response bit
/// (QU) and the query id `id`. Responders suppress a repeat of the same
/// multicast query bytes within a second (python-zeroconf does, for
/// queries without QU); a QU question is always answered, and a legacy
/// querier's answer comes to its own port either way.
pub(super) fn query(id: u16) -> Vec<u8> {
    let mut packet = Packet::new_query(id);
    packet.questions.push(Question::new(
        Name::new_unchecked(SERVICE_TYPE.trim_end_matches('.')),
        TYPE::PTR.into(),
        CLASS::IN.into(),
        true,
    ));
    packet.build_bytes_vec().unwrap_or_default()
}

/// A name as mdns-sd writes it: labels joined by dots (a dot inside a label
/// escaped), with the trailing dot.
fn dotted(name: &Name) -> String {
    format!("{name}.")
}

/// The sightings in one reply, learnt on interface `intf`: each instance
/// of a PTR whose owner is the service type spelt in another case, with
/// the SRV, TXT and addresses the reply holds for it. An instance without
/// an SRV record or an address in the reply is left out.
pub(super) fn sightings(reply: &[u8], intf: &str) -> Vec<Sighting> {
    let Ok(packet) = Packet::parse(reply) else {
        return Vec::new();
    };
    let records: Vec<&ResourceRecord> = packet
        .answers
        .iter()
        .chain(&packet.additional_records)
        .collect();
    let mut out: Vec<Sighting> = Vec::new();
    for r in &records {
        let RData::PTR(ptr) = &r.rdata else { continue };
        let owner = dotted(&r.name);
        if owner == SERVICE_TYPE || !owner.eq_ignore_ascii_case(SERVICE_TYPE) {
            continue;
        }
        let fullname = dotted(&ptr.0);
        if out
            .iter()
            .any(|s| s.fullname.eq_ignore_ascii_case(&fullname))
        {
            continue;
        }
        let Some((host, port)) =
            owned_by(&records, &fullname)
                .into_iter()
                .find_map(|r| match &r.rdata {
                    RData::SRV(srv) => Some((dotted(&srv.target), srv.port)),
                    _ => None,
                })
        else {
            continue;
        };
        let txt = owned_by(&records, &fullname)
            .into_iter()
            .find_map(|r| match &r.rdata {
                RData::TXT(t) => Some(
                    t.iter_raw()
                        .map(|(k, v)| {
                            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                            (text(k), v.map(text).unwrap_or_default())
                        })
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default();
        let mut addrs: Vec<HubAddr> = Vec::new();
        for r in owned_by(&records, &host) {
            let ip = match &r.rdata {
                RData::A(a) => IpAddr::V4(Ipv4Addr::from(a.address)),
                RData::AAAA(a) => IpAddr::V6(std::net::Ipv6Addr::from(a.address)),
                _ => continue,
            };
            if !addrs.iter().any(|a| a.ip == ip) {
                addrs.push(HubAddr {
                    ip,
                    interfaces: vec![intf.to_string()],
                    scope_id: 0,
                });
            }
        }
        if addrs.is_empty() {
            continue;
        }
        out.push(Sighting {
            fullname,
            host,
            port,
            addrs,
            txt,
        });
    }
    out
}

/// The records of `records` whose owner is `name` (in any case).
fn owned_by<'r, 'a>(records: &[&'r ResourceRecord<'a>], name: &str) -> Vec<&'r ResourceRecord<'a>> {
    records
        .iter()
        .copied()
        .filter(|r| dotted(&r.name).eq_ignore_ascii_case(name))
        .collect()
}

/// The IPv4 interfaces to query on: (name, address, netmask).
fn interfaces(only: Option<&str>) -> Vec<(String, Ipv4Addr, Ipv4Addr)> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| only.is_none_or(|n| i.name == n))
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => Some((i.name, v4.ip, v4.netmask)),
            _ => None,
        })
        .collect()
}

async fn run(
    only: Option<String>,
    timeout: Duration,
    mut stopped: oneshot::Receiver<()>,
    tx: mpsc::Sender<BrowseEvent>,
) {
    let start = Instant::now();
    let until = start + timeout;
    let intfs = interfaces(only.as_deref());
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| s.set_nonblocking(true).map(|()| s))
        .and_then(UdpSocket::from_std);
    let Ok(socket) = socket else {
        return;
    };
    // A different id per browse: a responder may suppress repeats.
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.subsec_nanos() as u16 | 1);
    let query = query(id);
    let mut sends = SENDS.iter().map(|d| start + *d);
    let mut next_send = sends.next();
    let mut seen: Vec<String> = Vec::new();
    let mut buf = vec![0u8; 9000];
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tokio::time::sleep_until(until) => return,
            _ = tokio::time::sleep_until(next_send.unwrap_or(until)), if next_send.is_some() => {
                next_send = sends.next();
                for (_, ip, _) in &intfs {
                    if socket2::SockRef::from(&socket).set_multicast_if_v4(ip).is_ok() {
                        let _ = socket.send_to(&query, MDNS_GROUP).await;
                    }
                }
            }
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let intf = match from.ip() {
                    IpAddr::V4(src) => intfs
                        .iter()
                        .find(|(_, ip, mask)| {
                            ip.to_bits() & mask.to_bits() == src.to_bits() & mask.to_bits()
                        })
                        .map(|(name, _, _)| name.as_str())
                        .unwrap_or(""),
                    IpAddr::V6(_) => "",
                };
                for s in sightings(&buf[..n], intf) {
                    if !seen.iter().any(|f| f.eq_ignore_ascii_case(&s.fullname)) {
                        seen.push(s.fullname.clone());
                        if tx.send(BrowseEvent::Resolved(s)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::rdata::{A, PTR, SRV, TXT};

    fn record<'a>(name: &'a str, rdata: RData<'a>) -> ResourceRecord<'a> {
        ResourceRecord::new(Name::new_unchecked(name), CLASS::IN, 120, rdata)
    }

    fn reply(ty: &str, instance: &str) -> Vec<u8> {
        let fullname = format!("{instance}.{ty}");
        let mut p = Packet::new_reply(0);
        p.answers
            .push(record(ty, RData::PTR(PTR(Name::new_unchecked(&fullname)))));
        p.additional_records.push(record(
            &fullname,
            RData::SRV(SRV {
                priority: 0,
                weight: 0,
                port: 8080,
                target: Name::new_unchecked("vege_1C_07.LOCAL"),
            }),
        ));
        let txt = TXT::new()
            .with_string("Version=3.4.5")
            .unwrap()
            .with_string("power_mode")
            .unwrap()
            .with_string("sens_1=Soil sensor 1")
            .unwrap();
        p.additional_records
            .push(record(&fullname, RData::TXT(txt)));
        p.additional_records.push(record(
            "VEGE_1C_07.local",
            RData::A(A {
                address: u32::from(Ipv4Addr::new(127, 0, 0, 3)),
            }),
        ));
        p.build_bytes_vec().unwrap()
    }

    #[test]
    fn a_reply_with_the_type_in_another_case_is_a_sighting() {
        let got = sightings(&reply("_VEGE._TCP.local", "VEGE_1c_07"), "lo");
        assert_eq!(got.len(), 1, "{got:?}");
        let s = &got[0];
        assert_eq!(s.fullname, "VEGE_1c_07._VEGE._TCP.local.");
        assert_eq!(strip_type(&s.fullname), "VEGE_1c_07");
        assert_eq!(s.host, "vege_1C_07.LOCAL.");
        assert_eq!(s.port, 8080);
        assert_eq!(s.addrs[0].ip, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(s.addrs[0].interfaces, ["lo"]);
        let txt: Vec<(&str, &str)> = s
            .txt
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            txt,
            [
                ("Version", "3.4.5"),
                ("power_mode", ""),
                ("sens_1", "Soil sensor 1")
            ]
        );
    }

    #[test]
    fn the_lower_case_type_and_other_services_are_left_alone() {
        // mdns-sd reports the lower-case spelling itself.
        assert!(sightings(&reply("_vege._tcp.local", "Vege_A6_20"), "lo").is_empty());
        assert!(sightings(&reply("_http._tcp.local", "Printer"), "lo").is_empty());
        assert!(sightings(b"\x00\x01 not dns", "lo").is_empty());
    }

    #[test]
    fn the_query_asks_for_the_service_type_ptr() {
        let q = query(7);
        let p = Packet::parse(&q).unwrap();
        assert_eq!(p.id(), 7);
        assert_eq!(p.questions.len(), 1);
        assert_eq!(format!("{}.", p.questions[0].qname), SERVICE_TYPE);
        assert!(p.questions[0].unicast_response);
    }

    #[test]
    fn the_type_suffix_is_stripped_in_any_case() {
        for (full, name) in [
            ("Desk._vege._tcp.local.", "Desk"),
            ("Desk._Vege._TCP.LOCAL.", "Desk"),
            ("Gewächshaus._vege._tcp.local.", "Gewächshaus"),
            // Nothing before the type, or another type: left as it is.
            ("_vege._tcp.local.", "_vege._tcp.local."),
            ("Desk._http._tcp.local.", "Desk._http._tcp.local."),
        ] {
            assert_eq!(strip_type(full), name, "{full}");
        }
    }
}
