//! The real binary on a pseudo-terminal (expectrl), for prompts, spinners
//! and progress: every `expect`, the end of output included, has a 30 s
//! deadline.

use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession as Session;
use expectrl::{Eof, Expect};

/// The harness with `args` on a pseudo-terminal (stdin, stdout and stderr),
/// no colour, backups in the tests' directory.
pub fn spawn(args: &[&str]) -> Session {
    let mut cmd = std::process::Command::new(super::BIN);
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env("VEGEHUB_HARNESS_BACKUP_DIR", super::backup_dir());
    let mut s = Session::spawn(cmd).expect("the harness on a pseudo-terminal");
    s.set_expect_timeout(Some(Duration::from_secs(30)));
    s
}

/// Read to the end; the exit code.
pub fn finish(s: &mut Session) -> (String, i32) {
    let rest = s.expect(Eof).expect("the run ends");
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    let code = match s.get_process().wait().expect("exit status") {
        WaitStatus::Exited(_, c) => c,
        other => panic!("{other:?}"),
    };
    (text, code)
}
