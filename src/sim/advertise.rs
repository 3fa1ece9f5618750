//! mDNS advertiser of the simulated hub: registers `_vege._tcp.local.` with
//! the TXT records of a real hub, announced without probing delay, and
//! unregisters cleanly on shutdown.
//!
//! CONTRACT: the simulator builds an `Advertisement` from its profile and
//! bound address and calls `Advertiser::register`; `SimHandle` shutdown
//! calls `Advertiser::shutdown`. Each advertiser owns its own mdns-sd
//! daemon thread, so several simulated hubs in one process are independent
//! responders, as real hubs are; except a shelf of hubs (`sim --count`),
//! which shares one [`Responder`]: hundreds of responders on one host
//! would all answer a browse in the same instant, and the querier's socket
//! drops most of that burst (real hubs are on as many radios), while one
//! responder answers with all the shelf's records in a few packets.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use mdns_sd::{DaemonEvent, DaemonStatus, ServiceDaemon, ServiceInfo, UnregisterStatus};

use crate::device::mdns::{self as dmdns, txt};
use crate::device::Mac;

/// How long `register` waits for the first announcement to leave. The
/// announcement is sent as soon as the daemon thread handles the command
/// (probing is off), so this only bounds a broken setup (no interface up).
const ANNOUNCE_DEADLINE: Duration = Duration::from_secs(3);
/// How long `shutdown` waits for the goodbye packets and the daemon thread.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// What to announce.
#[derive(Debug, Clone)]
pub struct Advertisement {
    /// Hub MAC; the default instance name is derived from it (`Vege_A6_20`).
    pub mac: Mac,
    /// Instance name override (a user-chosen hub name such as `Desk_Temp_Soil`).
    pub instance: Option<String>,
    /// HTTP port the simulator listens on.
    pub port: u16,
    /// Addresses to announce; empty means the daemon's own interface addresses.
    /// An unspecified address (`0.0.0.0`, `::`) counts as empty.
    pub addrs: Vec<IpAddr>,
    /// Firmware version, e.g. `5.1.1`.
    pub version: String,
    /// Sensor names, one per sensor channel (`sens_1`..).
    pub sensors: Vec<String>,
    /// Number of actuators.
    pub actuators: u32,
    /// `power_mode` TXT value (0 on a real AC hub seen so far).
    pub power_mode: u32,
}

impl Advertisement {
    /// The instance name announced: the override, or `Vege_XX_YY` from the MAC.
    pub fn instance_name(&self) -> String {
        self.instance
            .clone()
            .unwrap_or_else(|| self.mac.instance_name())
    }

    /// The host name announced: `<instance>.local.`, as a real hub does.
    pub fn host_name(&self) -> String {
        format!("{}.local.", self.instance_name())
    }

    /// The TXT properties in the order a real hub sends them:
    /// `version type receiver sensors actuators sens_1.. power_mode`.
    pub fn txt_properties(&self) -> Vec<(String, String)> {
        let mut props = vec![
            (txt::VERSION.to_string(), self.version.clone()),
            (txt::TYPE.to_string(), dmdns::HUB_TYPE.to_string()),
            (txt::RECEIVER.to_string(), dmdns::RECEIVER_PATH.to_string()),
            (txt::SENSORS.to_string(), self.sensors.len().to_string()),
            (txt::ACTUATORS.to_string(), self.actuators.to_string()),
        ];
        for (i, name) in self.sensors.iter().enumerate() {
            props.push((txt::sensor_name_key(i as u32 + 1), name.clone()));
        }
        props.push((txt::POWER_MODE.to_string(), self.power_mode.to_string()));
        props
    }

    fn service_info(&self) -> Result<ServiceInfo, AdvertiseError> {
        let instance = self.instance_name();
        let addrs: Vec<IpAddr> = self
            .addrs
            .iter()
            .copied()
            .filter(|a| !a.is_unspecified())
            .collect();
        let props = self.txt_properties();
        let mut info = ServiceInfo::new(
            dmdns::SERVICE_TYPE,
            &instance,
            &self.host_name(),
            addrs.as_slice(),
            self.port,
            props.as_slice(),
        )
        .map_err(|e| AdvertiseError(format!("service {instance:?}: {e}")))?;
        if addrs.is_empty() {
            info = info.enable_addr_auto();
        }
        // A simulator's name is unique by construction (tests pick unique
        // names), and probing would delay the first announcement by ~1 s.
        info.set_requires_probe(false);
        Ok(info)
    }
}

/// A registered service; unregister with `shutdown`.
pub struct Advertiser {
    daemon: ServiceDaemon,
    fullname: String,
    /// The daemon is this advertiser's own (stopped on shutdown), not a
    /// shared [`Responder`].
    owns_daemon: bool,
}

/// One mDNS responder several simulated hubs register on (`sim --count`).
/// Cheap to clone; [`Responder::shutdown`] once every hub is stopped.
#[derive(Clone)]
pub struct Responder(ServiceDaemon);

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

impl Responder {
    pub fn new() -> Result<Responder, AdvertiseError> {
        ServiceDaemon::new()
            .map(Responder)
            .map_err(|e| AdvertiseError(format!("cannot start the mdns daemon: {e}")))
    }

    /// Stop the daemon (after every hub on it unregistered).
    pub fn shutdown(self) -> Result<(), AdvertiseError> {
        stop(&self.0)
    }
}

/// Registering or unregistering failed.
#[derive(Debug, thiserror::Error)]
#[error("mdns advertise: {0}")]
pub struct AdvertiseError(pub String);

impl Advertiser {
    /// Register the service; returns once the announcement is sent.
    pub fn register(ad: &Advertisement) -> Result<Advertiser, AdvertiseError> {
        let info = ad.service_info()?;
        let fullname = info.get_fullname().to_string();
        let daemon = ServiceDaemon::new()
            .map_err(|e| AdvertiseError(format!("cannot start the mdns daemon: {e}")))?;
        let advertiser = Advertiser {
            daemon,
            fullname,
            owns_daemon: true,
        };
        match advertiser.announce(info) {
            Ok(()) => Ok(advertiser),
            Err(e) => {
                // Never leave a daemon thread behind on a failed register.
                let _ = advertiser.stop_daemon();
                Err(e)
            }
        }
    }

    /// Register the service on a shared responder; returns once the
    /// announcement is sent. Its shutdown unregisters it only.
    pub fn register_on(
        responder: &Responder,
        ad: &Advertisement,
    ) -> Result<Advertiser, AdvertiseError> {
        let info = ad.service_info()?;
        let advertiser = Advertiser {
            daemon: responder.0.clone(),
            fullname: info.get_fullname().to_string(),
            owns_daemon: false,
        };
        advertiser.announce(info)?;
        Ok(advertiser)
    }

    /// The full service name registered (`Vege_A6_20._vege._tcp.local.`).
    pub fn fullname(&self) -> &str {
        &self.fullname
    }

    /// Announce `info` again (new addresses, TXT or port), as a hub does
    /// after a reconnect; returns once the announcement is sent.
    pub fn reannounce(&mut self, ad: &Advertisement) -> Result<(), AdvertiseError> {
        let info = ad.service_info()?;
        if info.get_fullname() != self.fullname {
            return Err(AdvertiseError(format!(
                "reannounce {:?}: the instance name cannot change (registered {:?})",
                info.get_fullname(),
                self.fullname
            )));
        }
        self.announce(info)
    }

    fn announce(&self, info: ServiceInfo) -> Result<(), AdvertiseError> {
        let name = self.fullname.clone();
        let monitor = self
            .daemon
            .monitor()
            .map_err(|e| AdvertiseError(format!("{name}: {e}")))?;
        self.daemon
            .register(info)
            .map_err(|e| AdvertiseError(format!("{name}: {e}")))?;
        let deadline = Instant::now() + ANNOUNCE_DEADLINE;
        loop {
            match monitor.recv_deadline(deadline) {
                Ok(DaemonEvent::Announce(fullname, _)) if fullname == name => return Ok(()),
                Ok(DaemonEvent::Error(e)) => {
                    return Err(AdvertiseError(format!("{name}: {e}")));
                }
                Ok(_) => {}
                Err(_) => {
                    return Err(AdvertiseError(format!(
                        "{name}: not announced within {}s; is an interface with a matching \
                         address up (`ip link set lo up`)?",
                        ANNOUNCE_DEADLINE.as_secs()
                    )))
                }
            }
        }
    }

    /// Unregister and shut the mDNS daemon down, waiting for both.
    pub fn shutdown(self) -> Result<(), AdvertiseError> {
        let unregistered = self
            .daemon
            .unregister(&self.fullname)
            .map_err(|e| AdvertiseError(format!("unregister {}: {e}", self.fullname)))
            .and_then(|rx| match rx.recv_timeout(SHUTDOWN_DEADLINE) {
                Ok(UnregisterStatus::OK) => Ok(()),
                Ok(UnregisterStatus::NotFound) => Err(AdvertiseError(format!(
                    "unregister {}: not registered",
                    self.fullname
                ))),
                Err(e) => Err(AdvertiseError(format!("unregister {}: {e}", self.fullname))),
            });
        if !self.owns_daemon {
            return unregistered;
        }
        // The daemon goes down even when the goodbye failed.
        let stopped = self.stop_daemon();
        unregistered.and(stopped)
    }

    fn stop_daemon(&self) -> Result<(), AdvertiseError> {
        stop(&self.daemon)
    }
}

fn stop(daemon: &ServiceDaemon) -> Result<(), AdvertiseError> {
    let rx = daemon
        .shutdown()
        .map_err(|e| AdvertiseError(format!("mdns daemon shutdown: {e}")))?;
    match rx.recv_timeout(SHUTDOWN_DEADLINE) {
        Ok(DaemonStatus::Shutdown) => Ok(()),
        Ok(other) => Err(AdvertiseError(format!(
            "mdns daemon shutdown: daemon answered {other:?}"
        ))),
        Err(e) => Err(AdvertiseError(format!("mdns daemon shutdown: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ad() -> Advertisement {
        Advertisement {
            mac: Mac::parse("A1:B2:C3:D4:A6:20").unwrap(),
            instance: None,
            port: 8080,
            addrs: vec![],
            version: "5.1.1".into(),
            sensors: vec!["Sensor1".into()],
            actuators: 0,
            power_mode: 0,
        }
    }

    #[test]
    fn txt_matches_a_real_hub() {
        let got: Vec<String> = ad()
            .txt_properties()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            got.join(" "),
            "version=5.1.1 type=hub receiver=/api/vsens/data_in sensors=1 actuators=0 \
             sens_1=Sensor1 power_mode=0"
        );
    }

    #[test]
    fn names_follow_the_mac_or_the_override() {
        let mut a = ad();
        assert_eq!(a.instance_name(), "Vege_A6_20");
        assert_eq!(a.host_name(), "Vege_A6_20.local.");
        a.instance = Some("Desk_Temp_Soil".into());
        let info = a.service_info().unwrap();
        assert_eq!(info.get_fullname(), "Desk_Temp_Soil._vege._tcp.local.");
        assert_eq!(info.get_hostname(), "Desk_Temp_Soil.local.");
        assert!(!info.requires_probe());
    }

    #[test]
    fn unspecified_address_means_auto() {
        let mut a = ad();
        a.addrs = vec!["0.0.0.0".parse().unwrap()];
        assert!(a.service_info().unwrap().is_addr_auto());
        a.addrs = vec!["127.0.0.1".parse().unwrap()];
        assert!(!a.service_info().unwrap().is_addr_auto());
    }
}
