//! Errors that end a command before or outside a scenario, each carrying the
//! exit code it maps to. Depends only on `exit_code`.

use crate::exit_code;

/// An error that ends the process with a specific exit code. Messages are
/// lowercase fragments naming the flag, file or hub involved.
#[derive(Debug, thiserror::Error)]
pub enum FatalError {
    /// Bad command line or input file; nothing was sent to a hub.
    #[error("{0}")]
    Usage(String),
    /// No hub found, or none reachable.
    #[error("{0}")]
    NoHub(String),
    /// The name filter and `--skip` leave no scenario to run (or list).
    #[error("{0}")]
    NothingSelected(String),
    /// A hub may be left modified.
    #[error("{0}")]
    HubModified(String),
    /// Anything else (I/O on the harness's side, a runtime that would not build).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl FatalError {
    pub fn exit_code(&self) -> i32 {
        match self {
            FatalError::Usage(_) => exit_code::USAGE,
            FatalError::NoHub(_) => exit_code::NO_HUB,
            FatalError::HubModified(_) => exit_code::HUB_MODIFIED,
            FatalError::NothingSelected(_) => exit_code::NOTHING_SELECTED,
            FatalError::Other(_) => exit_code::SCENARIO_FAILED,
        }
    }
}
