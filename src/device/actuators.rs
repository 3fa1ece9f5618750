//! `actuators/set` and `actuators/status`.

use serde::{Deserialize, Serialize};

/// Body of `actuators/set`. `duration` is in seconds; the hub switches the
/// slot off by itself when it ends. `state 0` with `duration 0` means off now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActuatorSet {
    pub target: u32,
    pub duration: u32,
    pub state: u8,
}

/// Answer of `actuators/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActuatorStatus {
    pub actuators: Vec<ActuatorSlot>,
    /// `"success"` on a good answer.
    pub error: String,
}

/// The fields of one `actuators/status` slot ([`ActuatorSlot`]), in the
/// order the hub sends them; every one a number on the wire.
pub const SLOT_FIELDS: &[&str] = &[
    "slot",
    "state",
    "last_run",
    "next_window_start",
    "next_window_end",
    "cur_ma",
    "typ_ma",
    "error",
];

/// One actuator slot as `actuators/status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActuatorSlot {
    /// 0-based slot number.
    pub slot: u32,
    /// 0 off, 1 on.
    pub state: u8,
    /// Unix seconds.
    pub last_run: i64,
    pub next_window_start: i64,
    pub next_window_end: i64,
    pub cur_ma: i64,
    pub typ_ma: i64,
    pub error: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_fields_name_every_field_of_a_slot_in_order() {
        let value = serde_json::to_value(ActuatorSlot::default()).unwrap();
        let keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, SLOT_FIELDS);
    }
}
