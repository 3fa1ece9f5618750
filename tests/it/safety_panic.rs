//! A harness panic after the run began (the test-only
//! `VEGEHUB_HARNESS_DEBUG_PANIC` hooks) never leaves a hub modified: what
//! the hub owes is undone over the session before the connection gate, and
//! the run says what was undone and what is left. Through the real binary
//! against the simulated hub.

use crate::common::{harness_cmd, output_of, sim_with, text, ReportFiles, LIMIT};

/// A `--setup setup` run on a new-firmware hub whose first write back of
/// the original is refused once (`500`): the scenario's own restore fails,
/// so the hub still owes its config when the hooks `panics` fire. Returns
/// whether the hub holds its original config again, the exit code and the
/// output.
fn owing_setup_run(panics: &str, reports: &ReportFiles) -> (bool, Option<i32>, String) {
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
    (hub.config() == original, o.status.code(), text(&o))
}

/// `out` of the run with hooks `panics` says every one of `needles`.
fn says(panics: &str, out: &str, needles: &[&str]) {
    for n in needles {
        assert!(out.contains(n), "{panics}: {n:?} not said:\n{out}");
    }
}

#[test]
fn a_panic_anywhere_still_leaves_the_config_restored() {
    let verified = "run cleanup: verified: config restored from";
    for (panics, needles) in [
        // The scenario itself, its test config on the hub, outside any
        // guard of its own.
        (
            "setup",
            vec!["setup panicked: VEGEHUB_HARNESS_DEBUG_PANIC", verified],
        ),
        // The hub's thread, after its scenario, outside any.
        ("hub-thread", vec!["a hub thread panicked", verified]),
        // Cleanup itself, once: it is tried again.
        (
            "hub-thread,cleanup",
            vec![verified, "cleanup panicked: VEGEHUB_HARNESS_DEBUG_PANIC"],
        ),
        // The hub's thread as it closes, before its own cleanup: undone
        // when the run joins it.
        (
            "close",
            vec![
                "a hub thread panicked",
                "restore config from",
                "done, verified",
            ],
        ),
        // The run's own thread once the trials ran, the hub's thread
        // still waiting with its config owed.
        (
            "trials",
            vec![
                "error: the run panicked: VEGEHUB_HARNESS_DEBUG_PANIC",
                verified,
            ],
        ),
    ] {
        let (restored, code, out) = owing_setup_run(panics, &ReportFiles::new());
        assert!(restored, "{panics}: config left modified:\n{out}");
        // A harness error (1), not a hub left modified (5): nothing is left.
        assert_eq!(code, Some(1), "{panics}: {out}");
        says(panics, &out, &needles);
        assert!(!out.contains("may be modified"), "{panics}: {out}");
    }
}

#[test]
fn a_cleanup_that_always_panics_is_exit_5_naming_what_is_left() {
    // Cleanup panics on both tries; with `gate` the run then panics before
    // its gate too, past every guard but the last.
    for (panics, needles) in [
        (
            "hub-thread,cleanup-always",
            vec![
                "run cleanup: NOT VERIFIED",
                "cleanup panicked: VEGEHUB_HARNESS_DEBUG_PANIC",
                "config may be modified; restore it with: vegehub-harness restore",
            ],
        ),
        (
            "hub-thread,cleanup-always,gate",
            vec![
                "error: the run panicked: VEGEHUB_HARNESS_DEBUG_PANIC",
                "restore it with: vegehub-harness restore",
            ],
        ),
    ] {
        let reports = ReportFiles::new();
        let (restored, code, out) = owing_setup_run(panics, &reports);
        assert!(!restored, "{panics}: the hooks kept cleanup from running");
        assert_eq!(code, Some(5), "{panics}: {out}");
        says(panics, &out, &needles);
        // The reports are finished, saying the same.
        let r = reports.record();
        assert_eq!(r["exit_code"], 5, "{panics}: {r:#}");
        assert_eq!(r["status"], "error", "{panics}: {r:#}");
        assert!(
            r["error"].as_str().is_some_and(|e| e.contains("panicked")),
            "{panics}: {r:#}"
        );
    }
}
