//! vegehub-harness: a hardware integration test harness for Vegetronix
//! VegeHub hubs, and the simulated hub it is tested against.
//!
//! # Layout
//!
//! One line per module, top to bottom: what it owns; what it imports. A
//! module imports only modules below it, so data flows down this list
//! (tests/it/layout.rs reads the order from here and checks it, the size
//! of every file and who prints).
//!
//! ```text
//! main.rs      parse, dispatch to cli::<command>::run(args) -> i32, exit. Imports cli.
//! cli/         the commands (harness, discover, sim, restore, record/, completions,
//!              man): clap structs, flags -> run::RunConfig before any I/O. Imports all below.
//! run/         the harness run in phases: list, targets, consent, trials, one thread
//!              per hub and its cleanup, the leak gate. Imports report and all below it.
//! report/      all the run shows and writes (console, progress, JSON, JUnit, HTML,
//!              stream, sink/, model); with cli, the only printer. Imports plan and below.
//! plan/        plan files -> a validated Plan of scenario steps. Imports scenario,
//!              safety, session.
//! scenario/    the scenarios, facts, measurement/, waits, diffs, setup's receiver.
//!              Imports safety, session, device.
//! safety.rs,   the safety flags -> one Safety; backups, redaction, teardown/
//! safety/      (obligations, signals), restore's core. Imports session, device, exit_code.
//! discovery/   mDNS browse -> hubs, the stop rule, hub selection. Imports session, device.
//! session.rs,  the one client (typed calls, retry, every answer checked), the
//! session/     on-duration cap, the connection ledger, waits in progress. Imports device.
//! sim/         the simulated hub: profiles, state/, routes, faults, server, mDNS
//!              advertiser. Imports device only: it never agrees with the harness.
//! device/      the wire model, json_diff, the one duration syntax, input files read
//!              within bounds. Imports nothing.
//! error.rs     the library's thiserror enums. Imports exit_code.
//! exit_code.rs every exit code, named, and the one match from outcome to code.
//! ```

pub mod cli;
pub mod device;
pub mod discovery;
pub mod error;
pub mod exit_code;
pub mod plan;
pub mod report;
pub mod run;
pub mod safety;
pub mod scenario;
pub mod session;
pub mod sim;
