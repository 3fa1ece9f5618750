//! vegehub-harness: a hardware integration test harness for Vegetronix
//! VegeHub hubs, and the simulated hub it is tested against.
//!
//! # Layout
//!
//! ```text
//! error.rs       thiserror enums shared by the library; depends on nothing
//! exit_code.rs   every exit code, named, and the one match from outcome to code
//! device/        the wire model: serde types for info, config (both firmware
//!                generations), actuators, data updates; API paths; the mDNS
//!                service type and TXT keys. Depends on nothing internal.
//! client.rs      the shared session: one reqwest client, typed calls for one hub
//! ledger.rs      connection accounting and the leak verdict: opens seen by a
//!                reqwest connector layer, closes read from the OS socket table
//! discovery.rs   mdns-sd browse -> discovered hubs; uses device
//! scenario/      one file per scenario; each takes the client and the run's facts
//! run.rs         builds the runtime and session, runs the plan through libtest-mimic
//! report/        console summary (the only library code that prints)
//! sim/           the simulated hub: profiles, state, routes (`app(state) -> Router`),
//!                faults, mDNS advertiser. Uses only `device`, never the harness.
//! main.rs        parse args, dispatch, map the outcome to an exit code
//! ```
//!
//! The wall that matters most: `sim` never imports harness code, so the
//! simulator cannot agree with the harness by construction.

pub mod cli;
pub mod device;
pub mod error;
pub mod exit_code;
pub mod ledger;
pub mod run_args;
pub mod sim;
