//! mDNS / DNS-SD facts of a hub: the service type and the TXT keys a real
//! hub (firmware 5.1.1) advertises.

/// The DNS-SD service type hubs register.
pub const SERVICE_TYPE: &str = "_vege._tcp.local.";

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
