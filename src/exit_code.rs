//! Every exit code of the harness, named, and the one match from a run's
//! outcome to its code. The README's exit-code table mirrors this file.

/// All selected scenarios passed or were skipped.
pub const SUCCESS: i32 = 0;
/// A scenario failed.
pub const SCENARIO_FAILED: i32 = 1;
/// Usage or input error; nothing was sent to a hub.
pub const USAGE: i32 = 2;
/// The connection gate failed: a connection to a hub was still open after
/// the session closed, more than one session was created, or a hub had more
/// connections open at once than its budget (see `ledger`).
pub const CONNECTION_LEAK: i32 = 3;
/// No hub found, or the hub was unreachable before any scenario ran.
pub const NO_HUB: i32 = 4;
/// A hub was left modified: a config restore or an actuator-off could not be
/// verified.
pub const HUB_MODIFIED: i32 = 5;
/// The name filter and `--skip` select no scenario (checked before any hub
/// is contacted, also with `--list`).
pub const NOTHING_SELECTED: i32 = 6;
/// Interrupted by Ctrl-C, SIGTERM or SIGHUP (after cleanup).
pub const INTERRUPTED: i32 = 130;
/// Stopped because standard output or standard error was closed (a reader
/// such as `head` went away), after cleanup. 128 + SIGPIPE, as a shell
/// reports a process a closed pipe killed.
pub const OUTPUT_CLOSED: i32 = 141;

/// What a run ended with, as far as the exit code cares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// At least one scenario failed.
    pub failed: bool,
    /// A hub could not be reached before any scenario ran, or none was found.
    pub no_hub: bool,
    /// The leak gate found a connection still open.
    pub leak: bool,
    /// The run was interrupted by a signal.
    pub interrupted: bool,
    /// The run stopped because its output was closed.
    pub output_closed: bool,
    /// A restore or an actuator-off could not be verified.
    pub hub_modified: bool,
}

impl Outcome {
    /// The exit code: hub left modified outranks everything, then an
    /// interruption, then a closed output, then a leak, then an unreachable hub, then a failure.
    pub fn exit_code(&self) -> i32 {
        match *self {
            Outcome {
                hub_modified: true, ..
            } => HUB_MODIFIED,
            Outcome {
                interrupted: true, ..
            } => INTERRUPTED,
            Outcome {
                output_closed: true,
                ..
            } => OUTPUT_CLOSED,
            Outcome { leak: true, .. } => CONNECTION_LEAK,
            Outcome { no_hub: true, .. } => NO_HUB,
            Outcome { failed: true, .. } => SCENARIO_FAILED,
            _ => SUCCESS,
        }
    }

    /// Combine the outcomes of several hubs.
    pub fn merge(self, other: Outcome) -> Outcome {
        Outcome {
            failed: self.failed || other.failed,
            no_hub: self.no_hub || other.no_hub,
            leak: self.leak || other.leak,
            interrupted: self.interrupted || other.interrupted,
            output_closed: self.output_closed || other.output_closed,
            hub_modified: self.hub_modified || other.hub_modified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let all = Outcome {
            failed: true,
            no_hub: true,
            leak: true,
            interrupted: true,
            output_closed: true,
            hub_modified: true,
        };
        assert_eq!(all.exit_code(), HUB_MODIFIED);
        assert_eq!(
            Outcome {
                hub_modified: false,
                ..all
            }
            .exit_code(),
            INTERRUPTED
        );
        assert_eq!(
            Outcome {
                hub_modified: false,
                interrupted: false,
                ..all
            }
            .exit_code(),
            OUTPUT_CLOSED
        );
        let rest = Outcome {
            interrupted: false,
            output_closed: false,
            hub_modified: false,
            ..all
        };
        assert_eq!(rest.exit_code(), CONNECTION_LEAK);
        assert_eq!(
            Outcome {
                leak: false,
                ..rest
            }
            .exit_code(),
            NO_HUB
        );
        assert_eq!(
            Outcome {
                failed: true,
                ..Outcome::default()
            }
            .exit_code(),
            SCENARIO_FAILED
        );
        assert_eq!(Outcome::default().exit_code(), SUCCESS);
    }
}
