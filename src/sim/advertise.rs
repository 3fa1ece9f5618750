//! mDNS advertiser of the simulated hub: registers `_vege._tcp.local.` with
//! the TXT records of a real hub, announced without probing delay, and
//! unregisters cleanly on shutdown.
//!
//! CONTRACT (filled in by the discovery work): the simulator builds an
//! `Advertisement` from its profile and bound address and calls
//! `Advertiser::register`; `SimHandle` shutdown calls `Advertiser::shutdown`.

use std::net::IpAddr;

use crate::device::Mac;

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

/// A registered service; unregister with `shutdown`.
pub struct Advertiser {
    _private: (),
}

/// Registering or unregistering failed.
#[derive(Debug, thiserror::Error)]
#[error("mdns advertise: {0}")]
pub struct AdvertiseError(pub String);

impl Advertiser {
    /// Register the service; returns once the announcement is sent.
    pub fn register(_ad: &Advertisement) -> Result<Advertiser, AdvertiseError> {
        Err(AdvertiseError("not built yet".into()))
    }

    /// Unregister and shut the mDNS daemon down, waiting for both.
    pub fn shutdown(self) -> Result<(), AdvertiseError> {
        Ok(())
    }
}
