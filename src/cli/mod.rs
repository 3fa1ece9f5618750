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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vegehub-harness").chain(args.iter().copied()))
    }

    /// Every duration flag takes the one syntax (`device::duration`):
    /// units, fractions, a bare number as seconds; a unit it does not know
    /// is refused naming the flag.
    #[test]
    fn every_duration_flag_takes_the_one_syntax() {
        let run = |flag: &str, v: &str| parse(&[flag, v]).map(|c| c.run);
        let ms = Duration::from_millis;
        let r = run("--discover-timeout", "1500ms").unwrap();
        assert_eq!(r.discover_timeout.0, ms(1500));
        assert_eq!(run("--timeout", "1.5").unwrap().timeout, Some(ms(1500)));
        assert_eq!(
            run("--connect-timeout", "2s").unwrap().connect_timeout.0,
            ms(2000)
        );
        let r = run("--verify-timeout", "1m").unwrap();
        assert_eq!(r.verify_timeout, Some(ms(60_000)));
        assert_eq!(
            run("--close-timeout", "300ms").unwrap().close_timeout.0,
            ms(300)
        );
        let r = run("--repeat-for", "8h").unwrap();
        assert_eq!(r.repeat_for, Some(Duration::from_secs(8 * 3600)));
        let Some(Command::Discover(d)) = parse(&["discover", "--timeout", "2s"]).unwrap().command
        else {
            panic!("discover parses")
        };
        assert_eq!(d.timeout.0, ms(2000));
        for flag in [
            "--discover-timeout",
            "--timeout",
            "--connect-timeout",
            "--verify-timeout",
            "--close-timeout",
            "--repeat-for",
        ] {
            let e = run(flag, "2d").unwrap_err().to_string();
            assert!(
                e.contains(flag) && e.contains("unknown unit"),
                "{flag}: {e}"
            );
        }
        let e = parse(&["discover", "--timeout", "2d"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--timeout") && e.contains("unknown unit"), "{e}");
    }
}
