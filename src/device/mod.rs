//! The wire model of a VegeHub: API paths, serde types for every payload of
//! both firmware generations, MAC handling, and the mDNS service facts.
//!
//! This is the only module the simulator and the harness share, and it
//! depends on nothing else in the crate. Types here describe what the hub
//! sends and accepts; they make no decisions about tests.

pub mod actuators;
pub mod config;
pub mod duration;
pub mod file;
pub mod info;
pub mod json_diff;
pub mod mac;
pub mod mdns;
pub mod update;

pub use actuators::{ActuatorSet, ActuatorSlot, ActuatorStatus};
pub use config::{Endpoint, EndpointConfig, Generation};
pub use info::{HubSection, InfoResponse, WifiSection};
pub use mac::{normalize_mac, Mac};
pub use update::{DataUpdate, Sample, SensorSlot};

/// Hub text quoted in a message, cut to `max` characters (and `…`), so a
/// hub cannot make a one-line error of any length. Escaping for the
/// terminal happens where it is printed (`report::escape`).
pub fn bounded(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut cut: String = s.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// Paths of the hub's HTTP API (plain HTTP/1.1, JSON, no auth).
pub mod paths {
    /// `POST`, body names the sections wanted: `{"hub":[],"wifi":[]}`.
    pub const INFO_GET: &str = "/api/info/get";
    /// `POST`, body names the sections wanted: `{"hub":[],"api_key":[],"endpoints":[]}`.
    pub const CONFIG_GET: &str = "/api/config/get";
    /// `POST` a whole config document, as read back.
    pub const CONFIG_SET: &str = "/api/config/set";
    /// `GET`; the hub then posts a data update to its configured server(s).
    pub const UPDATE_SEND: &str = "/api/update/send";
    /// `POST {"target":SLOT,"duration":SECONDS,"state":0|1}`.
    pub const ACTUATORS_SET: &str = "/api/actuators/set";
    /// `GET`; every actuator slot with its live state.
    pub const ACTUATORS_STATUS: &str = "/api/actuators/status";

    /// Every path, for routing tables and fault specs.
    pub const ALL: [&str; 6] = [
        INFO_GET,
        CONFIG_GET,
        CONFIG_SET,
        UPDATE_SEND,
        ACTUATORS_SET,
        ACTUATORS_STATUS,
    ];
}

/// The HTTP port a real hub listens on.
pub const DEFAULT_HTTP_PORT: u16 = 80;
