//! Helpers every test module that runs the real binary shares.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

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
