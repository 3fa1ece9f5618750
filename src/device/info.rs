//! `info/get`: the `hub` and `wifi` sections, in the shapes the hub sends
//! (numbers as numbers where the hub uses numbers, strings where it uses
//! strings: `strength`, `chan`, `status` are strings on the wire).

use serde::{Deserialize, Serialize};

/// Answer of `info/get`: only the sections the request named are present.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InfoResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubSection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi: Option<WifiSection>,
}

/// The `hub` section (Home Assistant fixture shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HubSection {
    pub first_boot: bool,
    pub page_updated: bool,
    pub error_message: i64,
    pub num_channels: u32,
    pub num_actuators: u32,
    /// Firmware version, e.g. `"5.1.1"`.
    pub version: String,
    pub agenda: i64,
    /// Battery voltage in volts.
    pub batt_v: f64,
    pub num_vsens: u32,
    /// 1 when powered from AC, 0 on battery.
    pub is_ac: u8,
    pub has_sd: u8,
    pub on_ap: u8,
}

/// The `wifi` section. Every field is a string on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WifiSection {
    pub ssid: String,
    /// Signal strength in dBm, as a string such as `"-29"`.
    pub strength: String,
    /// Wi-Fi channel, as a string such as `"4"`.
    pub chan: String,
    pub ip: String,
    pub status: String,
    /// MAC with colons, e.g. `"A1:B2:C3:D4:E5:F6"`.
    pub mac_addr: String,
}

/// Request body naming the sections wanted, e.g. `{"hub":[],"wifi":[]}`.
pub fn sections_request(sections: &[&str]) -> serde_json::Value {
    let map = sections
        .iter()
        .map(|s| (s.to_string(), serde_json::Value::Array(Vec::new())))
        .collect();
    serde_json::Value::Object(map)
}
