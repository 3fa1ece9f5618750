//! Safety messages as they happen, on stderr: where a backup went, what
//! cleanup is undoing, and on Ctrl-C/SIGTERM what is being undone or, on a
//! second signal, exactly what may be left.

use std::sync::Arc;

use colored::Colorize;

use super::escape::{escape, escape_keep_newlines};
use crate::safety::teardown::Leftovers;
use crate::safety::{SafetyEvent, SafetyObserver};

/// The text of one event (lines without a trailing newline).
pub fn text(event: &SafetyEvent<'_>) -> String {
    match event {
        SafetyEvent::BackupWritten { hub, path } => {
            escape(&format!("backup of hub {hub}'s config: {}", path.display())).into_owned()
        }
        SafetyEvent::Undo(e) => format!("cleanup: {}", escape(&e.to_string())),
        SafetyEvent::Interrupted { signal, leftovers } => {
            let what = if leftovers.is_empty() {
                "nothing to undo".to_owned()
            } else {
                format!("undoing:\n{}", lines(leftovers))
            };
            format!(
                "{} {signal} received: stopping the run; {what}\n(press Ctrl-C again to exit at once)",
                "interrupted:".yellow().bold()
            )
        }
        SafetyEvent::GivingUp { signal, leftovers } => format!(
            "{} {signal} received again: exiting now, cleanup NOT finished; what may be left:\n{}",
            "interrupted:".red().bold(),
            lines(leftovers)
        ),
    }
}

/// After a run that could not verify everything undone: what may be left
/// and how to undo it by hand.
pub fn left_after_run(leftovers: &Leftovers) -> String {
    format!(
        "{} the run could not verify everything undone; what may be left:\n{}",
        "hub(s) may be left modified:".red().bold(),
        lines(leftovers)
    )
}

/// The leftovers' own lines, with any hub text in them (a hub's name in
/// its label) escaped: no control character but the line breaks.
fn lines(leftovers: &Leftovers) -> String {
    escape_keep_newlines(&leftovers.to_string()).into_owned()
}

/// The observer the binary installs for the run. On a second signal it
/// also writes the final reports (status `aborted`), since the process
/// exits right after.
pub fn observer() -> SafetyObserver {
    Arc::new(|e: &SafetyEvent<'_>| {
        super::term::err(&format!("vegehub-harness: {}", text(e)));
        if let SafetyEvent::GivingUp { signal, leftovers } = e {
            // The code `Safety::listen_for_signals` exits with.
            let code = if leftovers.is_empty() {
                crate::exit_code::INTERRUPTED
            } else {
                crate::exit_code::HUB_MODIFIED
            };
            super::sink::abort_active(
                &format!("{signal} received again: exited at once, cleanup not finished"),
                code,
            );
        }
    })
}
