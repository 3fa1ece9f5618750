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

/// The command line, parsed; on a usage error the process ends here with
/// one line on stderr (exit 2), and with `--help` or `--version` with
/// their text (exit 0).
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage_error(&e, std::env::args_os())),
    }
}

/// Print `e` and return its exit code. Help and version are printed as
/// clap prints them; an error is one line, as every other error of the
/// harness: clap's message, its tips, a pointer to `--help`.
fn usage_error(e: &clap::Error, args: impl Iterator<Item = std::ffi::OsString>) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return e.exit_code();
    }
    crate::report::term::err(&format!("vegehub-harness: {}", one_line(e, args)));
    crate::exit_code::USAGE
}

/// `e` as one line. Clap says "invalid UTF-8" without saying where, so
/// that error names the argument (and the flag before it).
fn one_line(e: &clap::Error, args: impl Iterator<Item = std::ffi::OsString>) -> String {
    if e.kind() == clap::error::ErrorKind::InvalidUtf8 {
        let args: Vec<_> = args.skip(1).collect();
        if let Some(i) = args.iter().position(|a| a.to_str().is_none()) {
            let after = match i.checked_sub(1).and_then(|p| args[p].to_str()) {
                Some(flag) if flag.starts_with('-') => format!(" (the value of {flag})"),
                _ => String::new(),
            };
            let arg = format!("{:?}", args[i]);
            return format!(
                "error: argument {} {}{after} is not valid UTF-8; see --help",
                i + 1,
                crate::report::escape::escape(&arg)
            );
        }
    }
    // Clap's text: the message, then paragraphs of tips, usage and the
    // pointer to --help, separated by blank lines.
    let text = e.render().to_string();
    let mut paragraphs = text.split("\n\n");
    let mut line = crate::report::escape::escape(paragraphs.next().unwrap_or_default().trim_end())
        .into_owned();
    for tip in paragraphs.map(str::trim).filter(|p| p.starts_with("tip:")) {
        line.push_str("; ");
        line.push_str(&crate::report::escape::escape(tip));
    }
    line.push_str("; see --help");
    line
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

    #[test]
    fn usage_errors_are_one_line_naming_the_input() {
        let args = |a: &[&str]| {
            std::iter::once("vegehub-harness")
                .chain(a.iter().copied())
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        };
        for (a, said) in [
            (&["--bogus"][..], "unexpected argument '--bogus'"),
            (&["--device"], "a value is required for '--device"),
            (
                &["discover", "--timeout", "x"],
                "invalid value 'x' for '--timeout",
            ),
            (
                &["--device", "a\nb", "--bogus"],
                "unexpected argument '--bogus'",
            ),
            (&["--timeout", "a\nb"], "invalid value 'a\\nb'"),
        ] {
            let e = Cli::try_parse_from(args(a)).unwrap_err();
            let line = one_line(&e, args(a).into_iter());
            assert!(!line.contains('\n'), "{a:?}: {line}");
            assert!(
                line.starts_with("error: ") && line.contains(said),
                "{a:?}: {line}"
            );
            assert!(line.ends_with("; see --help"), "{a:?}: {line}");
        }
        let e = Cli::try_parse_from(args(&["--bogus"])).unwrap_err();
        assert!(one_line(&e, std::iter::empty()).contains("; tip: a similar argument"));
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_argument_is_named_with_its_flag() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![
            "vegehub-harness".into(),
            "--device".into(),
            std::ffi::OsString::from_vec(b"hub\xff".to_vec()),
        ];
        let e = Cli::try_parse_from(args.clone()).unwrap_err();
        let line = one_line(&e, args.into_iter());
        assert_eq!(
            line,
            "error: argument 2 \"hub\\xFF\" (the value of --device) is not valid UTF-8; see --help"
        );
    }

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
