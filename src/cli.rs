//! The command line: clap structs only. Each subcommand's arguments are
//! validated into a config by the module that owns the command, before any
//! I/O.

use clap::{Parser, Subcommand};

/// Hardware integration test harness for Vegetronix VegeHub hubs.
///
/// Without a subcommand it runs the scenario plan against hubs: the
/// simulated hub (`--sim`), the hubs given with `--device`, or the hubs
/// found over mDNS.
#[derive(Debug, Parser)]
#[command(
    name = "vegehub-harness",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: crate::run_args::RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the hubs that answer on the local network (mDNS).
    Discover(crate::discover_cli::DiscoverArgs),
    /// Serve a simulated VegeHub until Ctrl-C or SIGTERM.
    Sim(crate::sim::cli::SimArgs),
    /// Write a config backup back to its hub and verify it reads back
    /// deep-equal.
    Restore(crate::restore::cli::RestoreArgs),
    /// Record a hub as a simulator profile (read-only; secrets, SSIDs, IPs
    /// and URLs replaced by placeholders), verified on a simulator.
    Record(crate::record::cli::RecordArgs),
}
