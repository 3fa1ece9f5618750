//! mDNS / DNS-SD facts of a hub: the service type, the TXT keys a real hub
//! (firmware 5.1.1) advertises, and their typed reading.

use serde::Serialize;

/// The DNS-SD service type hubs register.
pub const SERVICE_TYPE: &str = "_vege._tcp.local.";

/// The `type` TXT value of a hub.
pub const HUB_TYPE: &str = "hub";

/// TXT keys: `version=5.1.1 type=hub receiver=/api/vsens/data_in sensors=1
/// actuators=0 sens_1=Sensor1 power_mode=0`.
pub mod txt {
    pub const VERSION: &str = "version";
    pub const TYPE: &str = "type";
    pub const RECEIVER: &str = "receiver";
    pub const SENSORS: &str = "sensors";
    pub const ACTUATORS: &str = "actuators";
    pub const POWER_MODE: &str = "power_mode";
    /// `sens_N` for N in 1..=sensors: the sensor's name.
    pub fn sensor_name_key(n: u32) -> String {
        format!("sens_{n}")
    }
}

/// The `receiver` path a real hub advertises.
pub const RECEIVER_PATH: &str = "/api/vsens/data_in";

/// The TXT record of a hub, read leniently: a missing or malformed value is
/// `None` (firmware differs; discovery must list the hub anyway).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HubTxt {
    pub version: Option<String>,
    #[serde(rename = "type")]
    pub hub_type: Option<String>,
    pub receiver: Option<String>,
    pub sensors: Option<u32>,
    pub actuators: Option<u32>,
    /// `sens_1..sens_N` in order; only the names present.
    pub sensor_names: Vec<String>,
    pub power_mode: Option<u32>,
}

impl HubTxt {
    /// Read the typed fields from key/value pairs (keys compared
    /// case-insensitively, as DNS-SD requires).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> HubTxt {
        let pairs: Vec<(String, &str)> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let num = |key: &str| get(key).and_then(|v| v.trim().parse::<u32>().ok());
        let sensors = num(txt::SENSORS);
        let sensor_names = (1..=sensors.unwrap_or(0).min(64))
            .filter_map(|n| get(&txt::sensor_name_key(n)).map(str::to_string))
            .collect();
        HubTxt {
            version: get(txt::VERSION).map(str::to_string),
            hub_type: get(txt::TYPE).map(str::to_string),
            receiver: get(txt::RECEIVER).map(str::to_string),
            sensors,
            actuators: num(txt::ACTUATORS),
            sensor_names,
            power_mode: num(txt::POWER_MODE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_hub_record() {
        let t = HubTxt::from_pairs([
            ("version", "5.1.1"),
            ("type", "hub"),
            ("receiver", "/api/vsens/data_in"),
            ("sensors", "2"),
            ("actuators", "0"),
            ("sens_1", "Sensor1"),
            ("SENS_2", "Moist"),
            ("power_mode", "0"),
        ]);
        assert_eq!(t.version.as_deref(), Some("5.1.1"));
        assert_eq!(t.hub_type.as_deref(), Some(HUB_TYPE));
        assert_eq!(t.sensors, Some(2));
        assert_eq!(t.actuators, Some(0));
        assert_eq!(t.sensor_names, ["Sensor1", "Moist"]);
        assert_eq!(t.power_mode, Some(0));
    }

    #[test]
    fn malformed_values_are_none_not_errors() {
        let t = HubTxt::from_pairs([("sensors", "two"), ("actuators", "-1")]);
        assert_eq!(t, HubTxt::default());
    }
}
