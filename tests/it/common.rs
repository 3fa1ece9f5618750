//! Helpers every test module that runs the real binary shares.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use vegehub_harness::sim::{self, FaultSpec, Profile, SimHandle, SimOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_vegehub-harness");

/// Where the harness binary keeps config backups in tests: a temporary
/// directory of this test process, never the user's state directory.
pub fn backup_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for backups"))
        .path()
}

/// The harness binary with no colour and test-local backups.
pub fn harness_cmd() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("NO_COLOR", "1")
        .env("VEGEHUB_HARNESS_BACKUP_DIR", backup_dir());
    cmd
}

/// Wait for a child with a deadline; kill it (only it, by its id) if it
/// overruns, and fail the test naming `what`.
pub fn output_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not end within {limit:?}");
        }
    }
}

/// A simulated hub from a built-in profile with `faults` (fault specs as on
/// the command line), on its own thread and runtime, ready on return.
pub fn sim_with(profile: &str, faults: &[&str]) -> SimHandle {
    let mut opts = SimOptions::new(Profile::load(profile).unwrap_or_else(|e| panic!("{e}")));
    opts.faults = faults
        .iter()
        .map(|f| f.parse::<FaultSpec>().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    sim::start_with(opts).expect("simulator starts")
}
