//! Integration tests: one binary, modules per area.

mod bench;
mod common;
mod compat;
mod conn_gate;
mod deliver;
mod discovery;
mod hostile;
mod hostile_json;
mod hostile_mdns;
mod hostile_wire;
mod layout;
mod ledger;
mod plan;
mod record;
mod reports;
mod run;
mod safety;
mod safety_panic;
mod safety_restore;
#[cfg(unix)]
mod safety_signals;
mod selection;
mod shelf;
mod sim;
mod sim_cli;
mod sim_faults;
mod sim_update;
mod soak;
