//! A harness panic after the run began (the test-only
//! `VEGEHUB_HARNESS_DEBUG_PANIC` hooks) never leaves a hub modified: what
//! the hub owes is undone over the session before the connection gate, and
//! the run says what was undone and what is left. Through the real binary
//! against the simulated hub.

use serde_json::Value;
use vegehub_harness::sim::SimHandle;

use crate::common::{harness_cmd, output_of, sim_with, text, ReportFiles, LIMIT};

/// A `--setup setup` run on a new-firmware hub whose first write back of
/// the original is refused once (`500`): the scenario's own restore fails,
/// so the hub still owes its config when the hook `panics` fires. Returns
/// the hub, its config before the run, the exit code and the output.
fn owing_setup_run(panics: &str) -> (SimHandle, Value, Option<i32>, String) {
    owing_setup_run_reported(panics, &ReportFiles::new())
}

/// [`owing_setup_run`], its reports written to `reports`.
fn owing_setup_run_reported(
    panics: &str,
    reports: &ReportFiles,
) -> (SimHandle, Value, Option<i32>, String) {
    let hub = sim_with(
        "hub-new-firmware",
        &["status:500@config/set,after=1,times=1"],
    );
    let original = hub.config();
    let addr = hub.addr().to_string();
    let o = output_of(
        harness_cmd()
            .env("VEGEHUB_HARNESS_DEBUG_PANIC", panics)
            .args(["--device", &addr, "--setup", "setup"])
            .args(reports.args()),
        LIMIT,
    );
    (hub, original, o.status.code(), text(&o))
}

#[test]
fn a_hub_thread_that_panics_owing_a_config_still_restores_it() {
    let (hub, original, code, out) = owing_setup_run("hub-thread");
    assert_eq!(hub.config(), original, "config left modified:\n{out}");
    // A harness error (1), not a hub left modified (5): nothing is left.
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("a hub thread panicked"), "{out}");
    assert!(
        out.contains("run cleanup: verified: config restored from"),
        "{out}"
    );
    assert!(!out.contains("may be modified"), "{out}");
}

#[test]
fn a_panic_in_cleanup_is_tried_once_more_and_restores_the_config() {
    let (hub, original, code, out) = owing_setup_run("hub-thread,cleanup");
    assert_eq!(hub.config(), original, "config left modified:\n{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("run cleanup: verified: config restored from")
            && out.contains("cleanup panicked: VEGEHUB_HARNESS_DEBUG_PANIC"),
        "{out}"
    );
}

#[test]
fn a_cleanup_that_panics_every_time_ends_with_exit_5_naming_what_is_left() {
    let (hub, original, code, out) = owing_setup_run("hub-thread,cleanup-always");
    assert_ne!(hub.config(), original, "the hook kept cleanup from running");
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("run cleanup: NOT VERIFIED"), "{out}");
    assert!(
        out.contains("cleanup panicked: VEGEHUB_HARNESS_DEBUG_PANIC"),
        "{out}"
    );
    assert!(
        out.contains("config may be modified; restore it with: vegehub-harness restore"),
        "{out}"
    );
}

#[test]
fn a_hub_thread_that_dies_past_its_cleanup_is_undone_when_joined() {
    // `close`: the thread panics as it closes, before its own cleanup.
    let (hub, original, code, out) = owing_setup_run("close");
    assert_eq!(hub.config(), original, "config left modified:\n{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("a hub thread panicked"), "{out}");
    assert!(out.contains("restore config from"), "{out}");
    assert!(out.contains("done, verified"), "{out}");
}

#[test]
fn a_panic_of_the_run_itself_still_lets_each_hub_undo_what_it_owes() {
    // `trials`: the run's own thread panics once the trials ran, with the
    // hub's thread still waiting, its config owed.
    let (hub, original, code, out) = owing_setup_run("trials");
    assert_eq!(hub.config(), original, "config left modified:\n{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("error: the run panicked: VEGEHUB_HARNESS_DEBUG_PANIC"),
        "{out}"
    );
    assert!(
        out.contains("run cleanup: verified: config restored from"),
        "{out}"
    );
}

#[test]
fn a_panic_past_every_guard_is_exit_5_naming_what_is_left_and_finishes_the_reports() {
    // Cleanup cannot run (it panics every time), then the run panics
    // before its gate: past every guard but the last.
    let reports = ReportFiles::new();
    let (hub, original, code, out) =
        owing_setup_run_reported("hub-thread,cleanup-always,gate", &reports);
    assert_ne!(
        hub.config(),
        original,
        "the hooks kept cleanup from running"
    );
    assert_eq!(code, Some(5), "{out}");
    assert!(
        out.contains("error: the run panicked: VEGEHUB_HARNESS_DEBUG_PANIC"),
        "{out}"
    );
    assert!(
        out.contains("restore it with: vegehub-harness restore"),
        "{out}"
    );
    let r = reports.record();
    assert_eq!(r["status"], "error", "{r:#}");
    assert_eq!(r["exit_code"], 5, "{r:#}");
    assert!(
        r["error"].as_str().unwrap().contains("the run panicked"),
        "{r:#}"
    );
}
