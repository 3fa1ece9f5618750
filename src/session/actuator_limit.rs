//! The on-duration cap (`--max-on-seconds`) and the only way to build an
//! actuator command: every `on` carries a device-side duration capped by
//! it, so a relay switches itself off even if the harness dies while it is
//! on. It lives beside the client, the one sender of `actuators/set`, so
//! every command the client sends is built here; safety takes the flag and
//! its obligations from here.

use std::num::NonZeroU32;

use crate::device::ActuatorSet;

/// Default of `--max-on-seconds`.
pub const DEFAULT_MAX_ON_SECONDS: u32 = 10;
/// Upper bound accepted for `--max-on-seconds`: an hour is already far
/// longer than any test needs a valve open.
pub const MAX_MAX_ON_SECONDS: u32 = 3600;

/// The cap on how long any `on` may last, in seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxOn(NonZeroU32);

impl Default for MaxOn {
    fn default() -> Self {
        MaxOn(NonZeroU32::new(DEFAULT_MAX_ON_SECONDS).expect("non-zero"))
    }
}

/// The seconds, as `--max-on-seconds` takes them (and `--help` shows its
/// default).
impl std::fmt::Display for MaxOn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.seconds())
    }
}

impl MaxOn {
    /// `None` for 0 or more than [`MAX_MAX_ON_SECONDS`].
    pub fn new(seconds: u32) -> Option<MaxOn> {
        (seconds <= MAX_MAX_ON_SECONDS)
            .then_some(seconds)
            .and_then(NonZeroU32::new)
            .map(MaxOn)
    }

    pub fn seconds(&self) -> u32 {
        self.0.get()
    }

    /// Switch `slot` on for `seconds`, capped to the limit. A request for 0
    /// seconds still gets 1: an `on` without a duration is never sent.
    pub fn on(&self, slot: u32, seconds: u32) -> ActuatorSet {
        ActuatorSet {
            target: slot,
            duration: seconds.clamp(1, self.seconds()),
            state: 1,
        }
    }

    /// Switch `slot` off now.
    pub fn off(slot: u32) -> ActuatorSet {
        ActuatorSet {
            target: slot,
            duration: 0,
            state: 0,
        }
    }
}

/// clap value parser for `--max-on-seconds`.
pub fn parse_max_on(s: &str) -> Result<MaxOn, String> {
    let n: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of seconds"))?;
    MaxOn::new(n).ok_or_else(|| format!("must be between 1 and {MAX_MAX_ON_SECONDS} seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_is_capped_and_never_without_duration() {
        let m = MaxOn::default();
        assert_eq!(m.on(0, 5).duration, 5);
        assert_eq!(m.on(1, 60).duration, 10);
        assert_eq!(m.on(1, 0).duration, 1);
        assert_eq!(m.on(1, 0).state, 1);
        let m = MaxOn::new(2).unwrap();
        assert_eq!(
            m.on(3, 5),
            ActuatorSet {
                target: 3,
                duration: 2,
                state: 1
            }
        );
        assert_eq!(
            MaxOn::off(3),
            ActuatorSet {
                target: 3,
                duration: 0,
                state: 0
            }
        );
    }

    #[test]
    fn flag_values() {
        assert_eq!(parse_max_on("10"), Ok(MaxOn::default()));
        assert!(parse_max_on("0").unwrap_err().contains("between 1 and"));
        assert!(parse_max_on("3601").is_err());
        assert!(parse_max_on("x")
            .unwrap_err()
            .contains("not a whole number"));
    }
}
