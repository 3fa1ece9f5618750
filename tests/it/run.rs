//! The harness run through the real binary against the simulated hub:
//! every verdict seen flipping when the hub misbehaves, exit codes asserted,
//! and the simulator's state checked afterwards.

use std::time::Duration;

use serde_json::Value;
use vegehub_harness::sim::{Profile, SimHandle};

use crate::common::{
    ended, harness_cmd, harness_within, listed, one_line_error, output_of, run_fast, sim_with,
    text, DEFAULT_SCENARIOS, FAST,
};

/// The libtest line of one scenario, e.g. `test setup ... ok`.
fn line<'a>(out: &'a str, scenario: &str) -> &'a str {
    out.lines()
        .find(|l| {
            l.starts_with("test ")
                && l.split_whitespace().nth(1) == Some(scenario)
                && l.contains(" ... ")
        })
        .unwrap_or_else(|| panic!("no line for {scenario} in:\n{out}"))
}

/// The scenario of `result` (its libtest line) was not run for want of the
/// hub's MAC, and `hub` still holds `original`: no MAC, no backup, no write.
fn nothing_written_without_a_backup(result: &str, hub: &SimHandle, original: &Value, out: &str) {
    assert!(
        result.contains("ignored (prerequisite hub MAC unknown"),
        "{result}:\n{out}"
    );
    assert_eq!(&hub.config(), original, "written without a backup:\n{out}");
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn every_shipped_profile_passes_with_sim() {
    for name in Profile::builtin_names() {
        let sim = format!("--sim={name}");
        let mut args = vec![sim.as_str()];
        args.extend_from_slice(FAST);
        let o = harness_within(&args, LIMIT);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{name}:\n{out}");
        assert!(!out.contains("FAILED"), "{name}:\n{out}");
        for s in ["mac", "info", "config-round-trip", "setup"] {
            assert!(line(&out, s).ends_with("ok"), "{name} {s}:\n{out}");
        }
        let p = Profile::load(name).unwrap();
        if p.actuator_count() == 0 {
            for s in ["actuator-status", "actuators"] {
                assert!(
                    line(&out, s).contains("ignored (hub has no actuators)"),
                    "{name} {s}:\n{out}"
                );
            }
        } else {
            for s in ["actuator-status", "actuators"] {
                assert!(line(&out, s).ends_with("ok"), "{name} {s}:\n{out}");
            }
        }
        let generation = match p.generation() {
            vegehub_harness::device::Generation::Old => "config old",
            vegehub_harness::device::Generation::New => "config new",
        };
        assert!(out.contains(generation), "{name}:\n{out}");
        assert!(
            out.contains(p.mac().as_str()),
            "{name}: MAC in summary:\n{out}"
        );
    }
}

#[test]
fn a_real_device_run_leaves_the_hub_as_it_was() {
    let hub = sim_with("hub-4-relay-ac", &[]);
    let before = hub.config();
    let out = run_fast(&hub, &["--actuators", "--setup"], 0);
    assert!(line(&out, "actuators").ends_with("ok"), "{out}");
    assert!(line(&out, "setup").ends_with("ok"), "{out}");
    assert!(out.contains("cleanup: config restored: verified"), "{out}");
    assert!(
        out.contains("cleanup: all 4 actuators off: verified"),
        "{out}"
    );
    assert_eq!(hub.config(), before, "config deep-equal to the original");
    assert!(hub.actuator_states().iter().all(|&s| s == 0));
}

#[test]
fn several_hubs_run_side_by_side_each_in_order() {
    let a = sim_with("hub-new-firmware", &[]);
    let b = sim_with("hub-old-firmware", &["status:500@info/get"]);
    let b_original = b.config();
    let (aa, ba) = (a.addr().to_string(), b.addr().to_string());
    let mut args = vec!["--device", aa.as_str(), "--device", ba.as_str(), "--setup"];
    args.extend_from_slice(FAST);
    let o = harness_within(&args, LIMIT);
    let out = text(&o);
    // One hub fails, the other passes: the run fails, each hub's lines say
    // which, by name: the MAC it gave when asked before the run, or its
    // address for the hub whose info/get fails.
    assert_eq!(o.status.code(), Some(1), "{out}");
    let a_name = "A1B2C3D4A620";
    // libtest pads the hub names to one width.
    let result = |hub: &str, scenario: &str| {
        out.lines()
            .find(|l| {
                l.starts_with(&format!("test [{hub}]"))
                    && l.split_whitespace().nth(2) == Some(scenario)
            })
            .unwrap_or_else(|| panic!("no {scenario} line for {hub}:\n{out}"))
    };
    let (info_a, info_b) = (result(a_name, "info"), result(&ba, "info"));
    assert!(
        info_a.ends_with("ok") && info_b.ends_with("FAILED"),
        "{out}"
    );
    assert!(!out.contains(&format!("test [{aa}]")), "{out}");
    // The summary: one row per hub, details only for the hub that failed.
    let row = |name: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // hub, mac, firmware, passed, failed, skipped, conns, time, cleanup
    let ra = row(a_name);
    assert_eq!(
        (&ra[1][..], &ra[2][..], &ra[4][..], &ra[6][..], &ra[8][..]),
        (a_name, "5.1.1", "0", "1", "verified"),
        "{out}"
    );
    let rb = row(&ba);
    assert_ne!(rb[4], "0", "{out}");
    assert!(out.contains(&format!("hub {ba} (device)")), "{out}");
    assert!(!out.contains(&format!("hub {a_name} at {aa}")), "{out}");
    // The hub whose MAC is unknown cannot be backed up, so setup writes
    // nothing to it; the other is set up and restored.
    nothing_written_without_a_backup(result(&ba, "setup"), &b, &b_original, &out);
}

#[test]
fn hub_changing_scenarios_are_opt_in_on_a_real_device() {
    let hub = sim_with("hub-new-firmware", &[]);
    let out = run_fast(&hub, &[], 0);
    assert!(
        line(&out, "actuators").contains("not enabled (--actuators)"),
        "{out}"
    );
    assert!(
        line(&out, "setup").contains("not enabled (--setup)"),
        "{out}"
    );
    // Nothing was switched on: the hub never saw an actuators/set.
    assert!(hub.actuator_states().iter().all(|&s| s == 0));
}

#[test]
fn a_hub_that_ignores_config_set_fails_setup_and_says_why() {
    let hub = sim_with("hub-new-firmware", &["ignore-set@config/set"]);
    let before = hub.config();
    let out = run_fast(&hub, &["--setup"], 1);
    assert!(line(&out, "setup").ends_with("FAILED"), "{out}");
    assert!(
        out.contains("did not keep the test settings") && out.contains("endpoints[1]"),
        "names what the hub did not keep:\n{out}"
    );
    // The restore ran anyway and the hub holds the original.
    assert!(out.contains("cleanup: config restored: verified"), "{out}");
    assert_eq!(hub.config(), before);
}

#[test]
fn old_firmware_setup_sets_key_server_and_type_then_restores() {
    let hub = sim_with("hub-old-firmware", &["ignore-set@config/set"]);
    let out = run_fast(&hub, &["--exact", "setup", "--setup"], 1);
    for path in ["api_key", "hub.server_url", "hub.server_type"] {
        assert!(out.contains(path), "{path} named:\n{out}");
    }
    // Paths only: the hub's real key never reaches the console.
    assert!(!out.contains("VEGEHUB_HARNESS_TEST_API_KEY"), "{out}");

    let hub = sim_with("hub-old-firmware", &[]);
    let before = hub.config();
    run_fast(&hub, &["--exact", "setup", "--setup"], 0);
    assert_eq!(hub.config(), before);
}

#[test]
fn a_restore_the_hub_refuses_is_exit_5() {
    // The test settings are stored; the restore that follows gets a 500.
    let hub = sim_with("hub-new-firmware", &["status:500@config/set,after=1"]);
    let out = run_fast(&hub, &["--exact", "setup", "--setup"], 5);
    assert!(out.contains("config restored: NOT VERIFIED"), "{out}");
    // The hub really is left modified: that is what exit 5 says.
    let eps = hub.config()["endpoints"].as_array().unwrap().clone();
    assert!(
        eps.iter().any(|e| e["name"] == "VEGEHUB_HARNESS_TEST"),
        "{eps:?}"
    );
}

#[test]
fn a_relay_stuck_off_fails_actuators_naming_the_slot() {
    let hub = sim_with("hub-4-relay-ac", &["stuck-off:2"]);
    let out = run_fast(&hub, &["--actuators"], 1);
    assert!(line(&out, "actuators").ends_with("FAILED"), "{out}");
    assert!(out.contains("slot 2 did not turn on"), "{out}");
    assert!(
        out.contains("cleanup: all 4 actuators off: verified"),
        "{out}"
    );
    assert!(hub.actuator_states().iter().all(|&s| s == 0));
}

#[test]
fn an_error_mid_scenario_still_switches_everything_off() {
    // Two initial offs and the on of slot 0 pass; the off of slot 0 gets a
    // 500 and ends the scenario with an error while slot 0 is on, with a
    // device-side duration far longer than the run: only the all-off after
    // the error can have switched it off.
    let fault = ["status:500@actuators/set,after=3,times=1"];
    let hub = sim_with("hub-new-firmware", &fault);
    let addr = hub.addr().to_string();
    let long_ons = ["--actuators", "--on-seconds", "9", "--verify-timeout", "1s"];
    let o = harness_within(
        &[&["--device", addr.as_str()][..], &long_ons].concat(),
        LIMIT,
    );
    let says = [
        "POST /api/actuators/set: http status 500",
        "cleanup: all 2 actuators off: verified",
    ];
    ended(&o, 1, &says);
    assert_eq!(hub.actuator_states(), [0, 0]);
}

#[test]
fn a_relay_stuck_on_cannot_be_verified_off_and_is_exit_5() {
    let hub = sim_with("hub-new-firmware", &["stuck-on:0"]);
    let out = run_fast(&hub, &["--actuators"], 5);
    assert!(out.contains("slot 0 did not turn off"), "{out}");
    assert!(out.contains("off: NOT VERIFIED"), "{out}");
    assert_eq!(
        hub.actuator_states()[0],
        1,
        "the harness reported what is true"
    );
}

#[test]
fn a_500_on_info_fails_info_and_dependents_skip() {
    let hub = sim_with("hub-new-firmware", &["status:500@info/get"]);
    let original = hub.config();
    let out = run_fast(&hub, &["--actuators", "--write-config"], 1);
    assert!(line(&out, "info").ends_with("FAILED"), "{out}");
    assert!(out.contains("http status 500"), "{out}");
    for s in ["actuator-status", "actuators"] {
        assert!(
            line(&out, s).contains("ignored (prerequisite info failed"),
            "{s}:\n{out}"
        );
    }
    // No MAC, no backup, no config write.
    let round_trip = line(&out, "config-round-trip");
    nothing_written_without_a_backup(round_trip, &hub, &original, &out);
}

#[test]
fn a_hanging_hub_ends_the_run_within_its_timeouts() {
    let hub = sim_with("hub-new-firmware", &["hang@info/get"]);
    let addr = hub.addr().to_string();
    let timeouts = ["--timeout", "300ms", "--verify-timeout", "300ms", "-v"];
    // Within its timeouts: a deadline, not a stopwatch. Each request gives
    // up after 300 ms and nothing is retried, so the run ends in a second
    // or two; one still going after 10 s has let the hang through, and is
    // killed and fails naming the deadline.
    let args = [&["--device", addr.as_str()][..], &timeouts].concat();
    let o = harness_within(&args, Duration::from_secs(10));
    let out = ended(&o, 1, &["no answer within 300ms"]);
    assert!(line(&out, "info").ends_with("FAILED"), "{out}");
    assert!(
        line(&out, "actuator-status").contains("prerequisite info failed"),
        "{out}"
    );
    // A timeout is not a connection error: retrying would only multiply the wait.
    assert!(!out.contains("retrying in"), "{out}");
    assert!(out.contains("POST /api/info/get -> error"), "{out}");
}

#[test]
fn a_dropped_connection_is_retried_and_the_run_passes() {
    let hub = sim_with("hub-new-firmware", &["drop@info/get,times=1"]);
    let out = run_fast(&hub, &["-v"], 0);
    assert!(
        out.contains("attempt 1 of 3 failed"),
        "retry visible with -v:\n{out}"
    );
    assert!(line(&out, "mac").ends_with("ok"), "{out}");

    // The same fault without retries fails: the retry is what saved it.
    let hub = sim_with("hub-new-firmware", &["drop@info/get,times=1"]);
    run_fast(&hub, &["--retries", "0"], 1);
}

#[test]
fn a_closed_port_is_exit_4() {
    let port = closed_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let o = harness_within(&[&["--device", addr.as_str()], FAST].concat(), LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("unreachable"), "{out}");
    assert!(line(&out, "info").contains("hub unreachable"), "{out}");
}

#[test]
fn bad_input_is_exit_2() {
    let long_label = format!("{}.invalid", "a".repeat(64));
    for args in [
        &["--sim=no-such-profile"][..],
        &["--device", "127.0.0.1:0"],
        &["--device", "http://127.0.0.1/"],
        &["--sim", "--timeout", "soon"],
        // Wrong unit (meant as ms): the plan's range, above 0 and at most 600 s.
        &["--sim", "--timeout", "5000"],
        &["--sim", "--verify-timeout", "0"],
        &["--sim", "--connect-timeout", "11m"],
        &["--sim", "--scenario-timeout", "0"],
        &["--sim", "--scenario-timeout", "1h"],
        &["--device", "bad:host:name"],
        &["--device", "[nope]:80"],
        &["--device", "my hub.invalid"],
        // A DNS label is at most 63 characters: no lookup is tried.
        &["--device", &long_label],
        // Clap's own errors are one line too (tips kept, usage dropped).
        &["--sim", "--bogus"],
        &["--sim", "--timeout"],
        &["discover", "--timeout", "x"],
    ] {
        let o = harness_within(args, LIMIT);
        let last = args[args.len() - 1];
        one_line_error(&o, 2, &["error", last]);
        assert!(o.stdout.is_empty(), "nothing run: {}", text(&o));
    }
}

#[test]
fn list_names_the_plan_and_contacts_nothing() {
    assert_eq!(listed(&["--device", "127.0.0.1:9"]), DEFAULT_SCENARIOS);
}

#[test]
fn a_scenario_run_alone_gathers_its_own_facts() {
    let hub = sim_with("hub-4-relay-ac", &[]);
    let out = run_fast(&hub, &["--exact", "actuators", "--actuators"], 0);
    assert!(
        out.contains("1 passed; 0 failed; 0 ignored; 0 measured; 5 filtered out"),
        "{out}"
    );
    assert!(out.contains("4 slots switched on and off"), "{out}");

    let mut args = vec!["--sim=hub-new-firmware", "setup"];
    args.extend_from_slice(FAST);
    let o = harness_within(&args, LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("1 passed"), "{out}");
}

#[test]
fn a_name_filter_and_skip_select_scenarios() {
    let hub = sim_with("hub-new-firmware", &[]);
    let out = run_fast(&hub, &["actuator", "--skip", "actuators"], 0);
    assert!(out.contains("running 1 test"), "{out}");
    assert!(line(&out, "actuator-status").ends_with("ok"), "{out}");
}

#[test]
fn scenarios_of_a_hub_run_in_plan_order_whatever_test_threads_says() {
    let mut args = vec!["--sim=hub-4-relay-ac", "--test-threads", "6"];
    args.extend_from_slice(FAST);
    let o = harness_within(&args, LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let order: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("test ") && l.contains(" ... "))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(order, DEFAULT_SCENARIOS, "{out}");
}

#[test]
fn json_format_keeps_stdout_a_clean_json_stream() {
    let mut args = vec!["--sim", "--format", "json"];
    args.extend_from_slice(FAST);
    let o = harness_within(&args, LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    for l in stdout.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}"));
    }
    assert!(stdout.contains(r#""scenario":"setup""#), "{stdout}");
    // The summary goes to stderr instead.
    assert!(String::from_utf8_lossy(&o.stderr).contains("harness: PASS"));
}

#[test]
fn colour_only_on_request_when_not_a_terminal() {
    let run = |args: &[&str], no_color: bool| {
        let mut cmd = harness_cmd();
        cmd.args(args).args(FAST);
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        let o = output_of(&mut cmd, LIMIT);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Piped stdout: plain, with or without NO_COLOR.
    assert!(!run(&["--sim", "--exact", "mac"], false).contains('\x1b'));
    // Asked for: the summary is coloured too.
    let forced = run(&["--sim", "--exact", "mac", "--color", "always"], false);
    let verdict = forced.lines().find(|l| l.starts_with("harness: ")).unwrap();
    assert!(verdict.contains("\x1b["), "{forced}");
}
