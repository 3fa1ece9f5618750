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

/// One actuator slot as `actuators/status` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
