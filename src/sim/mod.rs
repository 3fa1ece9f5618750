//! The simulated VegeHub: profiles, state, routes, faults, server handle and
//! mDNS advertiser. Uses only `crate::device`; never imports harness code.
//! The `sim` command that serves it is `cli::sim`.
//!
//! ```text
//! profile.rs    hub profiles (fixtures/*.json, built in or by path)
//! fault.rs      fault specs: KIND[:ARG][@ENDPOINT][,after=N][,times=N]
//! config.rs     the stored config: exact text, the shape check per firmware,
//!               config/set's merge, the data faults that seed it
//! state/        live hub state: the stored config, actuators + timers, fault
//!               counters, connection accounting, update deliveries
//! routes.rs     app(state) -> Router: every endpoint, request-level faults
//! update.rs     update/send: the data update and its posting
//! server.rs     accept loop, SimOptions, spawn/start, SimHandle
//! advertise.rs  mDNS registration (`--advertise`)
//! ```

pub mod advertise;
pub mod config;
pub mod fault;
pub mod profile;
pub mod routes;
pub mod server;
pub mod state;
pub mod update;

pub use fault::{BadPost, FaultKind, FaultSpec, FaultSpecError, Route};
pub use profile::{Profile, ProfileError};
pub use routes::{app, ConnId, DropConnection};
pub use server::{spawn, start, start_with, SimHandle, SimOptions};
pub use state::{ConnStats, Delivery, Received, SimState};
