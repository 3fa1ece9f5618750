//! The `vegehub-harness` binary: parse, dispatch, map to an exit code.

use vegehub_harness::cli::Command;

fn main() {
    let cli = vegehub_harness::cli::parse();
    let code = match cli.command {
        Some(Command::Sim(args)) => vegehub_harness::cli::sim::run(args),
        Some(Command::Restore(args)) => vegehub_harness::cli::restore::run(args),
        Some(Command::Discover(args)) => vegehub_harness::cli::discover::run(args),
        Some(Command::Record(args)) => vegehub_harness::cli::record::cli::run(args),
        Some(Command::Completions { shell }) => vegehub_harness::cli::completions(shell),
        Some(Command::Man) => vegehub_harness::cli::man(),
        None => vegehub_harness::cli::harness::run(cli.run),
    };
    std::process::exit(code);
}
