//! The data update a hub posts to its server(s) after `update/send` or on
//! its own schedule.

use serde::{Deserialize, Serialize};

/// `{"api_key":"","mac":"A1B2C3D4E5F6","error_code":0,"sensors":[...],
/// "send_time":1736959883,"wifi_str":-27}`. Slots 1..=num_channels are
/// sensors, then the battery on battery hubs, then one slot per actuator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataUpdate {
    pub api_key: String,
    /// MAC without colons, upper case.
    pub mac: String,
    pub error_code: i64,
    pub sensors: Vec<SensorSlot>,
    /// Unix seconds.
    pub send_time: i64,
    /// Signal strength in dBm (a number here, unlike `info/get`).
    pub wifi_str: i64,
}

/// One slot of a data update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorSlot {
    pub slot: u32,
    pub samples: Vec<Sample>,
}

/// One sample: value and RFC 3339 UTC time (`2025-01-15T16:51:23Z`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub v: f64,
    pub t: String,
}
