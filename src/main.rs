//! The `vegehub-harness` binary: parse, dispatch, map to an exit code.

use clap::Parser;
use vegehub_harness::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Sim(args)) => vegehub_harness::sim::cli::run(args),
        Some(Command::Restore(args)) => vegehub_harness::restore::cli::run(args),
        Some(Command::Discover(args)) => vegehub_harness::discover_cli::run(args),
        None => {
            eprintln!("vegehub-harness: error: the harness run is not built yet; pass `sim`");
            vegehub_harness::exit_code::USAGE
        }
    };
    std::process::exit(code);
}
