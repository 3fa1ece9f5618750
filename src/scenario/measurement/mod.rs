//! Measurements with limits, in the spirit of OpenHTF: a device fact a plan
//! expects (firmware at least X, four relays, AC power…), checked on its own
//! against the value a scenario measured, giving a record with the measured
//! value, the limits and pass or fail. `facts`: what can be measured and what
//! was; `limits`: a plan's limits validated; `verdict`: limits against the
//! measured value. Uses `device` and the run's facts.

mod facts;
mod limits;
mod verdict;

pub use facts::{
    Fact, Kind, Measured, MeasuredFacts, CONFIG_SCENARIO, INFO_SCENARIO, MAC_SCENARIO,
};
pub use limits::{LimitError, Limits, Measurement, MeasurementSpec, Version};
pub use verdict::{failure_message, MeasurementRecord, Verdict};
