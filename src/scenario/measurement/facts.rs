//! The device facts a measurement can check (which scenario measures each,
//! what kind of value it has) and the values the scenarios of one hub
//! measured for them, gathered from the run's `scenario::HubFacts`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::device::{Generation, InfoResponse};

/// A device fact a measurement can check. Each is measured by exactly one
/// scenario ([`Fact::measured_by`]); a plan may attach a measurement only to
/// that scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fact {
    /// The MAC address, 12 upper-case hex digits (`mac`).
    Mac,
    /// Firmware version from `info/get` (`info`), compared part by part.
    FirmwareVersion,
    /// `hub.num_channels` (`info`).
    ChannelCount,
    /// `hub.num_actuators` (`info`).
    ActuatorCount,
    /// `hub.num_vsens` (`info`).
    VirtualSensorCount,
    /// `wifi.strength` in dBm (`info`).
    WifiStrengthDbm,
    /// `wifi.chan` (`info`).
    WifiChannel,
    /// `hub.batt_v` in volts (`info`).
    BatteryVolts,
    /// `ac` or `battery`, from `hub.is_ac` (`info`).
    PowerSource,
    /// `wifi.ssid` (`info`).
    Ssid,
    /// The name the hub goes by: the simulator profile's or discovered
    /// name, else the config's `hub.name` (`config-round-trip`, which reads
    /// the config).
    HubName,
    /// `new` (endpoints list) or `old` (api_key + server_url) (`config-round-trip`).
    FirmwareGeneration,
}

/// The scenario that measures a fact, by its trial name.
pub const MAC_SCENARIO: &str = "mac";
pub const INFO_SCENARIO: &str = "info";
pub const CONFIG_SCENARIO: &str = "config-round-trip";

/// What kind of value a fact has, which decides the limits it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Version,
    Integer,
    Number,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    Text,
    /// Normalised to 12 upper-case hex digits before comparing.
    Mac,
}

impl Fact {
    /// The unit the fact's value is in, for reports (`None` for words).
    pub fn unit(self) -> Option<&'static str> {
        match self {
            Fact::FirmwareVersion => Some("version"),
            Fact::ChannelCount | Fact::ActuatorCount | Fact::VirtualSensorCount => Some("count"),
            Fact::WifiStrengthDbm => Some("dBm"),
            Fact::WifiChannel => Some("channel"),
            Fact::BatteryVolts => Some("V"),
            Fact::Mac
            | Fact::PowerSource
            | Fact::Ssid
            | Fact::HubName
            | Fact::FirmwareGeneration => None,
        }
    }

    pub const ALL: [Fact; 12] = [
        Fact::Mac,
        Fact::FirmwareVersion,
        Fact::ChannelCount,
        Fact::ActuatorCount,
        Fact::VirtualSensorCount,
        Fact::WifiStrengthDbm,
        Fact::WifiChannel,
        Fact::BatteryVolts,
        Fact::PowerSource,
        Fact::Ssid,
        Fact::HubName,
        Fact::FirmwareGeneration,
    ];

    /// The name used in plan files and records.
    pub fn name(self) -> &'static str {
        match self {
            Fact::Mac => "mac",
            Fact::FirmwareVersion => "firmware_version",
            Fact::ChannelCount => "channel_count",
            Fact::ActuatorCount => "actuator_count",
            Fact::VirtualSensorCount => "virtual_sensor_count",
            Fact::WifiStrengthDbm => "wifi_strength_dbm",
            Fact::WifiChannel => "wifi_channel",
            Fact::BatteryVolts => "battery_volts",
            Fact::PowerSource => "power_source",
            Fact::Ssid => "ssid",
            Fact::HubName => "hub_name",
            Fact::FirmwareGeneration => "firmware_generation",
        }
    }

    /// The scenario (trial name) that measures this fact.
    pub fn measured_by(self) -> &'static str {
        match self {
            Fact::Mac => MAC_SCENARIO,
            Fact::FirmwareGeneration | Fact::HubName => CONFIG_SCENARIO,
            _ => INFO_SCENARIO,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Fact::Mac => Kind::Mac,
            Fact::FirmwareVersion => Kind::Version,
            Fact::ChannelCount
            | Fact::ActuatorCount
            | Fact::VirtualSensorCount
            | Fact::WifiStrengthDbm
            | Fact::WifiChannel => Kind::Integer,
            Fact::BatteryVolts => Kind::Number,
            Fact::PowerSource => Kind::Choice(&["ac", "battery"]),
            Fact::FirmwareGeneration => Kind::Choice(&["new", "old"]),
            Fact::Ssid | Fact::HubName => Kind::Text,
        }
    }
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value a scenario measured for a fact.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// A version string as the hub sent it (it may not parse).
    Version(String),
    Integer(i64),
    Number(f64),
    Text(String),
}

impl Measured {
    pub fn to_json(&self) -> Value {
        match self {
            Measured::Version(s) | Measured::Text(s) => Value::String(s.clone()),
            Measured::Integer(n) => json!(n),
            Measured::Number(n) => json!(n),
        }
    }
}

/// Everything the scenarios of one hub measured, fact by fact, as
/// measurements read it (built from the run's `scenario::HubFacts`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasuredFacts {
    pub mac: Option<String>,
    pub firmware_version: Option<String>,
    pub channel_count: Option<u32>,
    pub actuator_count: Option<u32>,
    pub virtual_sensor_count: Option<u32>,
    pub wifi_strength_dbm: Option<i64>,
    pub wifi_channel: Option<i64>,
    pub battery_volts: Option<f64>,
    pub is_ac: Option<bool>,
    pub ssid: Option<String>,
    pub hub_name: Option<String>,
    pub firmware_generation: Option<Generation>,
}

impl MeasuredFacts {
    /// Record what an `info/get` answer says. Wi-Fi numbers are strings on
    /// the wire; one that does not parse stays unmeasured.
    pub fn record_info(&mut self, info: &InfoResponse) {
        if let Some(hub) = &info.hub {
            self.firmware_version = Some(hub.version.clone());
            self.channel_count = Some(hub.num_channels);
            self.actuator_count = Some(hub.num_actuators);
            self.virtual_sensor_count = Some(hub.num_vsens);
            self.battery_volts = Some(hub.batt_v);
            self.is_ac = Some(hub.is_ac != 0);
        }
        if let Some(wifi) = &info.wifi {
            self.wifi_strength_dbm = wifi.strength.trim().parse().ok();
            self.wifi_channel = wifi.chan.trim().parse().ok();
            self.ssid = Some(wifi.ssid.clone());
            if let Some(mac) = crate::device::normalize_mac(&wifi.mac_addr) {
                self.mac = Some(mac);
            }
        }
    }

    /// The facts the run has gathered about a hub so far.
    pub fn from_run(facts: &crate::scenario::HubFacts) -> MeasuredFacts {
        let mut m = MeasuredFacts::default();
        if let Some(i) = facts.info.known() {
            m.record_info(&InfoResponse {
                hub: Some(i.hub.clone()),
                wifi: Some(i.wifi.clone()),
            });
        }
        if let Some(mac) = &facts.mac {
            m.mac = Some(mac.as_str().to_string());
        }
        m.hub_name = facts.name.clone();
        m.firmware_generation = facts.generation;
        m
    }

    /// The measured value of a fact, if it was measured.
    pub fn get(&self, fact: Fact) -> Option<Measured> {
        let int = |n: Option<u32>| n.map(|n| Measured::Integer(n.into()));
        match fact {
            Fact::Mac => self.mac.clone().map(Measured::Text),
            Fact::FirmwareVersion => self.firmware_version.clone().map(Measured::Version),
            Fact::ChannelCount => int(self.channel_count),
            Fact::ActuatorCount => int(self.actuator_count),
            Fact::VirtualSensorCount => int(self.virtual_sensor_count),
            Fact::WifiStrengthDbm => self.wifi_strength_dbm.map(Measured::Integer),
            Fact::WifiChannel => self.wifi_channel.map(Measured::Integer),
            Fact::BatteryVolts => self.battery_volts.map(Measured::Number),
            Fact::PowerSource => self
                .is_ac
                .map(|ac| Measured::Text(if ac { "ac" } else { "battery" }.into())),
            Fact::Ssid => self.ssid.clone().map(Measured::Text),
            Fact::HubName => self.hub_name.clone().map(Measured::Text),
            Fact::FirmwareGeneration => self.firmware_generation.map(|g| {
                Measured::Text(
                    match g {
                        Generation::New => "new",
                        Generation::Old => "old",
                    }
                    .into(),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_from_info() {
        let info: InfoResponse = serde_json::from_value(json!({
            "hub": {"first_boot": false, "page_updated": false, "error_message": 0,
                    "num_channels": 2, "num_actuators": 4, "version": "5.1.1", "agenda": 1,
                    "batt_v": 9.0, "num_vsens": 0, "is_ac": 1, "has_sd": 0, "on_ap": 0},
            "wifi": {"ssid": "bench", "strength": "-29", "chan": "4", "ip": "x",
                     "status": "3", "mac_addr": "a1:b2:c3:d4:e5:f6"}
        }))
        .unwrap();
        let mut facts = MeasuredFacts::default();
        facts.record_info(&info);
        assert_eq!(facts.get(Fact::ActuatorCount), Some(Measured::Integer(4)));
        assert_eq!(
            facts.get(Fact::WifiStrengthDbm),
            Some(Measured::Integer(-29))
        );
        assert_eq!(
            facts.get(Fact::PowerSource),
            Some(Measured::Text("ac".into()))
        );
        assert_eq!(
            facts.get(Fact::Mac),
            Some(Measured::Text("A1B2C3D4E5F6".into()))
        );
        assert_eq!(
            facts.get(Fact::FirmwareVersion),
            Some(Measured::Version("5.1.1".into()))
        );
        assert_eq!(facts.get(Fact::HubName), None);
        for fact in Fact::ALL {
            assert!(
                ["mac", "info", "config-round-trip"].contains(&fact.measured_by()),
                "{fact}"
            );
        }
    }
}
