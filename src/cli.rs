//! The command line: clap structs only. Each subcommand's arguments are
//! validated into a config by the module that owns the command, before any
//! I/O.

pub mod discover;
pub mod harness;
pub mod record;
pub mod restore;
pub mod run_args;
pub mod sim;

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
    pub run: crate::cli::run_args::RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the hubs that answer on the local network (mDNS).
    Discover(crate::cli::discover::DiscoverArgs),
    /// Serve a simulated VegeHub until Ctrl-C or SIGTERM.
    Sim(crate::cli::sim::SimArgs),
    /// Write a config backup back to its hub and verify it reads back
    /// deep-equal.
    Restore(crate::cli::restore::RestoreArgs),
    /// Record a hub as a simulator profile (read-only; secrets, SSIDs, IPs
    /// and URLs replaced by placeholders), verified on a simulator.
    Record(crate::cli::record::cli::RecordArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell) to stdout.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `vegehub-harness man >
    /// vegehub-harness.1`.
    Man,
}

/// `completions SHELL`: the script for `shell`, from the clap definitions.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "vegehub-harness", &mut out);
    emit(&out)
}

/// `man`: the man page, from the clap definitions.
pub fn man() -> i32 {
    use clap::CommandFactory;
    let mut out = Vec::new();
    match clap_mangen::Man::new(Cli::command()).render(&mut out) {
        Ok(()) => emit(&out),
        Err(e) => {
            crate::report::term::err(&format!(
                "vegehub-harness: error: rendering the man page: {e}"
            ));
            crate::exit_code::SCENARIO_FAILED
        }
    }
}

fn emit(bytes: &[u8]) -> i32 {
    crate::report::term::out(&String::from_utf8_lossy(bytes));
    if crate::report::term::is_closed(crate::report::term::Stream::Stdout) {
        crate::exit_code::OUTPUT_CLOSED
    } else {
        crate::exit_code::SUCCESS
    }
}
