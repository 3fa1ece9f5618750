//! vegehub-harness: a hardware integration test harness for Vegetronix
//! VegeHub hubs, and the simulated hub it is tested against.
//!
//! # Layout
//!
//! One line per folder: what it owns; then what it imports. Data flows down
//! this list.
//!
//! ```text
//! main.rs      parse, dispatch, map the outcome to an exit code
//! cli/         the commands, each a clap struct and one `run(args) -> i32`;
//!              `completions`, `man`; run_args: the run's flags validated into
//!              `run::RunConfig` before any I/O; harness: the run as a command
//!              (summary, report files finished, exit code); discover (and the
//!              run's spinner and hub prompts), sim, restore; record/: a hub's
//!              reads -> a redacted simulator profile, proven on a simulator
//! run/         the harness run as named phases (mod: `RunConfig`, `run()`): list
//!              (--list), targets (one session; hubs given or discovered, the
//!              in-process simulator started, hubs named), consent (the operator
//!              asked before a real hub is changed), trials (libtest-mimic trials,
//!              cycles), hub (one thread per hub), gate (session closed, leak gate)
//! report/      the only library code that prints (through `term`): console, verbose
//!              trace, progress, JSON record, JUnit, HTML, the file sink, the
//!              `--format json` stream, hub text escaped; model: `RunReport`,
//!              `HubReport`, what every report renders; soak_record: per-cycle
//!              bookkeeping and the slow-leak trend
//! plan/        plan files (scenarios/*.json) -> a validated, ordered plan (parse:
//!              reading and validation; mod: the Plan and Step model)
//! scenario/    one file per scenario, facts, measurement/ (facts, limits, verdict),
//!              waits, failure wording, deliver (setup's data receiver)
//! safety.rs,   the run's safety flags -> one `Safety`; backup (0600 files before
//! safety/      the first write), redact, teardown/ (undo obligations, cleanup,
//!              signals), restore/ (restore's core)
//! discovery/   mdns-sd browse -> hubs, the stop rule; hub (what a browse found);
//!              select (a run's hubs: --select, --all, the prompt's answer),
//!              local_names (.local), other_case (a responder spelling the
//!              service type in another case)
//! session.rs,  client (the one reqwest client, typed calls, bounded retry, every
//! session/     answer checked), actuator_limit (the on-duration cap, the only way
//!              to build an actuator command), ledger (socket accounting and the
//!              leak verdict; os/sock_diag read the OS socket table), lag, wait
//!              (waits in progress). Imports only device.
//! sim/         the simulated hub: profiles, config (exact text, shape check, data
//!              faults), state/ (+ actuators and their timers, traffic), routes,
//!              faults, accept loop + `SimHandle`, mDNS advertiser. Imports only
//!              device.
//! device/      the wire model (info, config, actuators, updates, API paths, mDNS
//!              keys), json_diff (exact form, path-naming diff) and the one duration
//!              syntax of every flag. Imports nothing internal.
//! error.rs     thiserror enums shared by the library; imports exit_code
//! exit_code.rs every exit code, named, and the one match from outcome to code
//! ```
//!
//! The wall that matters most: `sim` never imports harness code, so the
//! simulator cannot agree with the harness by construction; `device`
//! imports nothing internal (both checked by tests/it/layout.rs). No
//! import points up this list.

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
