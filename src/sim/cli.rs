//! `vegehub-harness sim`: serve a simulated hub from the command line.

use clap::Args;

#[derive(Debug, Args)]
pub struct SimArgs {}

/// Run the `sim` command; returns the process exit code.
pub fn run(_args: SimArgs) -> i32 {
    eprintln!("vegehub-harness: the simulator is not built yet");
    crate::exit_code::USAGE
}
