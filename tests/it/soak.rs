//! Soak runs through the real binary: a clean soak passes with one
//! connection for every cycle; a slow leak the connection gate cannot see
//! (memory, sockets) is caught by the trend check (exit 3, named in the
//! console, the record and JUnit); a cycle that fails is counted and its
//! failure kept; --repeat-for stops starting cycles when its time is up.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{assert_has, ended, harness_within, sim_with, ReportFiles, Spawned};

const LIMIT: Duration = Duration::from_secs(60);

/// The plan without the actuators' and setup's waits: every cycle is quick.
const QUICK: &[&str] = &["--skip", "actuators", "--skip", "setup"];

fn soak(target: &[&str], reports: &ReportFiles, extra: &[&str]) -> (Option<i32>, String) {
    let mut args: Vec<String> = target.iter().map(|s| s.to_string()).collect();
    args.extend(QUICK.iter().map(|s| s.to_string()));
    args.extend(reports.args());
    args.extend(extra.iter().map(|s| s.to_string()));
    Spawned::start(&args, false).finish(LIMIT)
}

/// The record, checked against the documented schema.
fn record(reports: &ReportFiles) -> Value {
    let r = reports.record();
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/run-record.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options().build(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&r)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "record violates the schema: {errors:#?}");
    r
}

#[test]
fn a_clean_soak_passes_on_one_connection() {
    let reports = ReportFiles::new();
    let (code, out) = soak(&["--sim=hub-old-firmware"], &reports, &["--repeat", "8"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("soak: 8 cycle(s), 0 failed"), "{out}");
    assert!(out.contains("trend: no growth"), "{out}");
    let r = record(&reports);
    let s = &r["soak"];
    assert_eq!(s["cycles"].as_array().unwrap().len(), 8);
    assert_eq!(s["judged"], true);
    assert_eq!(s["trends"], serde_json::json!([]));
    for c in s["cycles"].as_array().unwrap() {
        assert_eq!(c["failed"], 0, "{c}");
        assert_eq!(
            c["connections_total"], 1,
            "one connection for the whole soak: {c}"
        );
        assert_eq!(c["passed"], 4, "{c}");
    }
    // The first cycle is in the hub's scenarios; passing repeats are not.
    assert_eq!(r["hubs"][0]["scenarios"].as_array().unwrap().len(), 4);
    assert_has(
        &reports.valid_junit(),
        &[
            "<testsuite name=\"soak\" tests=\"9\" failures=\"0\"",
            "<testcase name=\"cycle 8\" classname=\"soak\"",
        ],
    );
}

/// A soak of `cycles` cycles on the simulator while the harness leaks
/// `what` on purpose (`--debug-soak-leak`): exit 3, the console naming the
/// `growth`, and the record's first failing trend that of `metric`. The
/// reports and the record.
#[cfg(target_os = "linux")]
fn slow_leak(what: &str, cycles: &str, growth: &str, metric: &str) -> (ReportFiles, Value) {
    let reports = ReportFiles::new();
    let leak = ["--repeat", cycles, "--debug-soak-leak", what];
    let (code, out) = soak(&["--sim=hub-new-firmware"], &reports, &leak);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains(&format!("SLOW LEAK: {growth}")), "{out}");
    let r = record(&reports);
    assert_eq!(r["exit_code"], 3);
    assert_eq!(r["soak"]["trends"][0]["metric"], metric, "{r:#}");
    (reports, r)
}

#[cfg(target_os = "linux")]
#[test]
fn a_slow_memory_leak_is_exit_3_named_everywhere() {
    let growth = "harness memory grew from";
    let (reports, r) = slow_leak("memory", "8", growth, "rss_bytes");
    let metrics: Vec<&str> = r["soak"]["trends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["metric"].as_str().unwrap())
        .collect();
    assert_eq!(metrics, ["rss_bytes"], "{r:#}");
    // Every scenario passed and the gate saw no leak: only the trend fails.
    assert_eq!(r["ledger"]["leaked"], false);
    assert!(r["soak"]["cycles"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["failed"] == 0));
    let junit = reports.valid_junit();
    assert!(junit.contains("type=\"slow-leak\""), "{junit}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_slow_socket_leak_is_exit_3() {
    let growth = "harness open sockets grew from";
    slow_leak("sockets", "6", growth, "sockets_open");
}

#[test]
fn a_cycle_that_fails_is_counted_and_its_failure_kept() {
    // The hub answers actuators/status (asked once a cycle, by
    // actuator-status) with 500 once, in the second cycle.
    let once = ["status:500@actuators/status,after=1,times=1"];
    let hub = sim_with("hub-old-firmware", &once);
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let (code, out) = soak(
        &["--device", &addr, "--skip", "config", "--retries", "0"],
        &reports,
        &["--repeat", "4"],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("soak: 4 cycle(s), 1 failed"), "{out}");
    let r = record(&reports);
    let failed: Vec<u64> = r["soak"]["cycles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["failed"].as_u64().unwrap())
        .collect();
    assert_eq!(failed, [0, 1, 0, 0], "{r:#}");
    let failure = r["soak"]["cycles"][1]["failures"][0].as_str().unwrap();
    assert!(
        failure.contains(&format!("{addr} actuator-status")),
        "{failure}"
    );
    // The failing repeat is in the hub's scenarios, marked with its cycle.
    let msgs: Vec<&str> = r["hubs"][0]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["message"].as_str())
        .collect();
    assert!(msgs.iter().any(|m| m.starts_with("cycle 2: ")), "{msgs:?}");
    assert!(reports
        .valid_junit()
        .contains("1 scenario(s) failed in cycle 2"));
    hub.shutdown();
}

#[test]
fn repeat_for_stops_starting_cycles_when_its_time_is_up() {
    let reports = ReportFiles::new();
    let (code, out) = soak(
        &["--sim=hub-old-firmware"],
        &reports,
        &["--repeat-for", "300ms"],
    );
    assert_eq!(code, Some(0), "{out}");
    let r = record(&reports);
    let cycles = r["soak"]["cycles"].as_array().unwrap();
    assert!(!cycles.is_empty());
    // Every cycle but the last started before the time was up.
    let started: f64 = cycles[..cycles.len() - 1]
        .iter()
        .map(|c| c["duration"].as_f64().unwrap())
        .sum();
    assert!(started < 300.0, "{r:#}");

    // Both a count and a time, or a time of zero: usage errors.
    let both = [
        "--sim=hub-old-firmware",
        "--repeat",
        "2",
        "--repeat-for",
        "1s",
    ];
    ended(&harness_within(&both, LIMIT), 2, &[]);
    let zero = ["--sim=hub-old-firmware", "--repeat-for", "0s"];
    let refused = "--repeat-for must be more than zero";
    ended(&harness_within(&zero, LIMIT), 2, &[refused]);
}

#[test]
fn what_a_cycle_left_owed_is_undone_before_the_next_cycle_begins() {
    // Cycle 1's own restore is refused once: the config is left owed.
    let hub = sim_with(
        "hub-new-firmware",
        &["status:500@config/set,after=1,times=1"],
    );
    let original = hub.config();
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let mut args: Vec<String> = ["--device", &addr, "--setup", "--repeat", "2", "setup"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(reports.args());
    let (code, out) = Spawned::start(&args, false).finish(LIMIT);
    // Cycle 1's setup failed (its restore was not verified); nothing is
    // left on the hub.
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(hub.config(), original, "{out}");
    let sets: Vec<Value> = hub
        .received()
        .iter()
        .filter(|r| r.path == "/api/config/set")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    // Cycle 1's test config and refused restore, the run's undo (the
    // original again), then cycle 2's test config and restore.
    assert_eq!(sets.len(), 5, "{sets:#?}");
    assert_ne!(sets[0], sets[1], "{sets:#?}");
    assert_eq!(
        sets[2], sets[1],
        "cycle 2 began on a modified hub: {sets:#?}"
    );
    assert_eq!(record(&reports)["hubs"][0]["cleanup"]["status"], "verified");
}

#[test]
fn a_hub_that_refuses_the_undo_is_not_asked_again_every_cycle() {
    // Every write after the first is refused (403): cycle 1 leaves the
    // config owed, and no undo can succeed.
    let hub = sim_with("hub-new-firmware", &["status:403@config/set,after=1"]);
    let addr = hub.addr().to_string();
    let mut args: Vec<String> = ["--device", &addr, "--setup", "--repeat", "3", "setup"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let reports = ReportFiles::new();
    args.extend(reports.args());
    let (code, out) = Spawned::start(&args, false).finish(LIMIT);
    assert_eq!(code, Some(5), "{out}");
    let sets = hub
        .received()
        .iter()
        .filter(|r| r.path == "/api/config/set")
        .count();
    // Each cycle's setup writes twice (test config, restore); the run's
    // undo tries before cycle 2 (refused), not again before cycle 3 (the
    // same debt), and once more at the end.
    assert_eq!(sets, 3 * 2 + 1 + 1, "{out}");
}
