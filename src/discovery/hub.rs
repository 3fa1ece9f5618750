//! What a browse found: each hub (instance, host, port, addresses with the
//! interfaces they were seen on, TXT as sent and typed), whether one name
//! hides two hubs, and the browse's result (`Discovery`, why it stopped).
//! The JSON shape of `discover --json` is these types' serialisation.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use serde::Serialize;

use crate::device::mdns::HubTxt;

/// One address of a hub and the local interfaces it was seen on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubAddr {
    pub ip: IpAddr,
    /// Local interface names the address was learnt on.
    pub interfaces: Vec<String>,
    /// Interface index for an IPv6 address (its scope), 0 when unknown.
    #[serde(skip)]
    pub scope_id: u32,
}

impl HubAddr {
    /// IPv4 first, then routable IPv6, then link-local IPv6.
    pub(super) fn rank(&self) -> u8 {
        match self.ip {
            IpAddr::V4(_) => 0,
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) != 0xfe80 => 1,
            IpAddr::V6(_) => 2,
        }
    }

    /// Why no hub can be at this announced address, or `None` when it may
    /// be tried. An mDNS answer is untrusted: an address that means this
    /// machine (unspecified, or loopback learnt only on links that are not
    /// the loopback: no other host can be on this machine's loopback, while
    /// a responder on this machine, a simulator, is also heard on the
    /// loopback), or many machines (multicast, broadcast), would make the
    /// harness talk to something that is not the hub that answered, so it
    /// is refused before any connection. `loopback` names this machine's
    /// loopback interfaces.
    pub fn unusable(&self, loopback: &[String]) -> Option<&'static str> {
        let ip = match self.ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(self.ip, IpAddr::V4),
            ip => ip,
        };
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        if ip.is_unspecified() {
            Some("unspecified: it means this machine")
        } else if ip.is_multicast() || broadcast {
            Some("a multicast or broadcast address, not one host")
        } else if ip.is_loopback() && !self.interfaces.iter().any(|i| loopback.contains(i)) {
            Some("a loopback address announced from another link: it means this machine")
        } else {
            None
        }
    }

    /// The address as a technician would type it: `fe80::1%eth0` for a
    /// scoped IPv6 address.
    pub fn display(&self) -> String {
        match (self.ip, self.interfaces.first()) {
            (IpAddr::V6(v6), Some(intf)) if self.rank() == 2 => format!("{v6}%{intf}"),
            (ip, _) => ip.to_string(),
        }
    }
}

/// A hub found on the network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiscoveredHub {
    /// Instance name, unescaped (`Vege_A6_20`, `Desk_Temp_Soil`).
    pub instance: String,
    /// Full service name (`Vege_A6_20._vege._tcp.local.`).
    pub fullname: String,
    /// Host name from the SRV record (`Vege_A6_20.local.`).
    pub host: String,
    pub port: u16,
    /// IPv4 first, then routable IPv6, then link-local IPv6.
    pub addresses: Vec<HubAddr>,
    /// TXT key/value pairs as sent, in order.
    #[serde(serialize_with = "txt_as_map")]
    pub txt: Vec<(String, String)>,
    /// The TXT values a hub is known to send, typed.
    #[serde(rename = "hub")]
    pub hub_txt: HubTxt,
    /// Time from the start of the browse to the first resolution.
    #[serde(rename = "resolved_ms", serialize_with = "as_millis")]
    pub resolved_after: Duration,
}

fn txt_as_map<S: serde::Serializer>(txt: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(txt.len()))?;
    for (k, v) in txt {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl DiscoveredHub {
    /// Has at least one IPv4 address.
    pub fn has_ipv4(&self) -> bool {
        self.addresses.iter().any(|a| a.ip.is_ipv4())
    }

    /// Where to connect: the first IPv4 address, else an IPv6 one with its
    /// interface scope (a link-local address is useless without it).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let a = self.addresses.first()?;
        Some(match a.ip {
            IpAddr::V4(v4) => SocketAddr::new(IpAddr::V4(v4), self.port),
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, self.port, 0, a.scope_id)),
        })
    }

    /// Local interfaces the hub was seen on, sorted.
    pub fn interfaces(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self
            .addresses
            .iter()
            .flat_map(|a| a.interfaces.iter())
            .collect();
        set.into_iter().cloned().collect()
    }

    /// The same instance name answered on two interfaces with different
    /// IPv4 addresses: two hubs share a name (a hub has one Wi-Fi address),
    /// or one hub is reachable two ways. Either way a name alone cannot
    /// pick one; `--interface` or an address can.
    pub fn name_conflict(&self) -> Option<String> {
        let v4: Vec<&HubAddr> = self.addresses.iter().filter(|a| a.ip.is_ipv4()).collect();
        let per_intf: BTreeSet<(&String, IpAddr)> = v4
            .iter()
            .flat_map(|a| a.interfaces.iter().map(move |i| (i, a.ip)))
            .collect();
        let intfs: BTreeSet<&String> = per_intf.iter().map(|(i, _)| *i).collect();
        let ips: BTreeSet<IpAddr> = per_intf.iter().map(|(_, ip)| *ip).collect();
        (intfs.len() > 1 && ips.len() > 1).then(|| {
            let list: Vec<String> = per_intf
                .iter()
                .map(|(i, ip)| format!("{ip} on {i}"))
                .collect();
            format!(
                "instance {} answered on several interfaces with different addresses ({})",
                self.instance,
                list.join(", ")
            )
        })
    }
}

/// Why the browse ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `expect` hubs were settled.
    Expected,
    /// No new hub for the quiet period.
    Quiet,
    /// The timeout bound was reached.
    Timeout,
    /// [`MAX_HUBS`](super::MAX_HUBS) instances answered; more are not followed.
    TooMany,
}

/// The result of a browse.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// Sorted by instance name, so numbering is stable across runs.
    pub hubs: Vec<DiscoveredHub>,
    pub stopped: StopReason,
    #[serde(rename = "elapsed_ms", serialize_with = "as_millis")]
    pub elapsed: Duration,
}
