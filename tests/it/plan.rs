//! Plans, measurements and report files through the real binary against the
//! simulated hub: every shipped plan on a suitable profile, a violated limit
//! failing exactly its measurement (and passing when the limit is met), bad
//! plans refused with exit 2 before a single request, and both report files
//! left behind by failing and interrupted runs.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    harness_cmd, harness_within, listed, output_of, output_within, run_on, send_signal, sim_with,
    spawn_piped, text, wait_file, DEFAULT_SCENARIOS,
};

const LIMIT: Duration = Duration::from_secs(30);

fn shipped(plan: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(plan)
        .display()
        .to_string()
}

/// Report paths in a fresh temporary directory.
struct Reports {
    _dir: tempfile::TempDir,
    json: PathBuf,
    junit: PathBuf,
}

impl Reports {
    fn new() -> Reports {
        let dir = tempfile::tempdir().unwrap();
        Reports {
            json: dir.path().join("run.json"),
            junit: dir.path().join("junit.xml"),
            _dir: dir,
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--report-json".into(),
            self.json.display().to_string(),
            "--junit".into(),
            self.junit.display().to_string(),
        ]
    }

    /// The JSON record, checked against the documented schema.
    fn record(&self) -> Value {
        let text = std::fs::read_to_string(&self.json).expect("JSON record written");
        let record: Value = serde_json::from_str(&text).expect("JSON record parses");
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/run-record.schema.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&record)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "record violates the schema: {errors:#?}");
        record
    }

    /// The JUnit file, parsed by quick-junit's reader.
    fn junit(&self) -> quick_junit::Report {
        let xml = std::fs::read_to_string(&self.junit).expect("JUnit written");
        quick_junit::Report::deserialize_from_str(&xml).expect("JUnit parses")
    }
}

/// The harness with `base` and fresh report files, within `limit`: the
/// files and the output.
fn run_with_reports(base: &[&str], limit: Duration) -> (Reports, Output) {
    let reports = Reports::new();
    let files = reports.args();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let o = harness_within(&[base, &files].concat(), limit);
    (reports, o)
}

/// A run of `args` with fresh report files, within [`LIMIT`], that ends
/// with `code`: the files, the record (checked against the schema) and the
/// output as text.
fn reported(args: &[&str], code: i32) -> (Reports, Value, String) {
    let (reports, o) = run_with_reports(args, LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}:\n{out}");
    let r = reports.record();
    (reports, r, out)
}

fn scenario<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["hubs"][0]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {record:#}"))
}

fn outcomes(record: &Value) -> Vec<(String, String)> {
    record["hubs"][0]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn production_plan_passes_on_the_4_relay_ac_hub() {
    let plan = shipped("production-4-relay-ac.json");
    let (reports, r, _) = reported(&["--sim=hub-4-relay-ac", "--plan", &plan], 0);
    assert_eq!(r["status"], "finished");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["plan"]["source"], json!(plan));
    let info = scenario(&r, "info");
    let ms: Vec<(&str, &Value, &str)> = info["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                &m["measured"],
                m["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ms,
        [
            ("firmware", &json!("5.1.1"), "pass"),
            ("relays", &json!(4), "pass"),
            ("channels", &json!(4), "pass"),
            ("power", &json!("ac"), "pass"),
            ("wifi-signal", &json!(-44), "pass"),
        ]
    );
    // The connection ledger's verdict of the run's one session.
    assert_eq!(
        (&r["ledger"]["sessions"], &r["ledger"]["leaked"]),
        (&json!(1), &json!(false)),
        "{:#}",
        r["ledger"]
    );
    let gen = &scenario(&r, "config-round-trip")["measurements"][0];
    assert_eq!(
        (&gen["measured"], &gen["verdict"]),
        (&json!("new"), &json!("pass"))
    );
    assert!(outcomes(&r).iter().all(|(_, o)| o == "passed"), "{r:#}");
    let junit = reports.junit();
    assert_eq!(junit.test_suites.len(), 1);
    assert_eq!(junit.failures, 0);
    // Six scenarios and the hub's cleanup (actuators off, config restored).
    assert_eq!(junit.tests, 7);
    let cleanup = &junit.test_suites[0].test_cases[6];
    assert_eq!(cleanup.name.as_str(), "cleanup");
    assert!(matches!(
        cleanup.status,
        quick_junit::TestCaseStatus::Success { .. }
    ));
}

#[test]
fn production_plan_fails_the_wrong_model() {
    // The 2-relay battery-fed hub is not the 4-relay AC model: exactly the
    // model measurements fail, and `info` with them.
    let plan = shipped("production-4-relay-ac.json");
    let (_, r, out) = reported(&["--sim=hub-new-firmware", "--plan", &plan], 1);
    let info = scenario(&r, "info");
    assert_eq!(info["outcome"], "failed");
    let failed: Vec<&str> = info["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["verdict"] == "fail")
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["relays", "channels", "power"]);
    // The console summary shows every measurement with its verdict.
    assert!(
        out.contains(r#"measure: relays (actuator_count) = 2 count, limits {"equals":4}: FAIL"#),
        "{out}"
    );
    assert!(
        out.contains(
            r#"measure: firmware (firmware_version) = "5.1.1" version, limits {"at_least":"5.1.1"}: pass"#
        ),
        "{out}"
    );
    let msg = info["message"].as_str().unwrap();
    assert!(
        msg.contains("measurement relays failed: actuator_count 2 is not equal to 4"),
        "{msg}"
    );
}

#[test]
fn smoke_plan_is_read_only_and_quick() {
    let hub = sim_with("hub-battery-sensor", &[]);
    let before = hub.config();
    // Quick: a deadline, not a stopwatch. Three read-only scenarios on a
    // hub on loopback take well under a second; a run still going after
    // 10 s is killed and fails the test (naming the deadline).
    let plan = shipped("smoke.json");
    let addr = hub.addr().to_string();
    let args = ["--device", &addr, "--plan", &plan];
    let (reports, o) = run_with_reports(&args, Duration::from_secs(10));
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let r = reports.record();
    assert_eq!(
        outcomes(&r),
        [
            ("mac".into(), "passed".into()),
            ("info".into(), "passed".into()),
            ("actuator-status".into(), "skipped".into()),
        ]
    );
    assert_eq!(hub.config(), before, "smoke changed nothing");
    // Read-only: only reads reached the hub.
    let paths: Vec<String> = hub.received().into_iter().map(|r| r.path).collect();
    assert!(
        paths
            .iter()
            .all(|p| p == "/api/info/get" || p == "/api/actuators/status"),
        "{paths:?}"
    );
    // Read-only: nothing asked the hub to write (no --actuators/--setup
    // prompt needed, no config/set).
    assert!(
        !out.contains("config-round-trip") && !out.contains("setup"),
        "{out}"
    );
}

#[test]
fn default_plan_is_built_in_and_matches_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Run from a directory without scenarios/: the built-in plan is used.
    let hub = sim_with("hub-old-firmware", &[]);
    let json = dir.path().join("r.json");
    let o = output_of(
        harness_cmd()
            .current_dir(dir.path())
            .args([
                "--device",
                &hub.addr().to_string(),
                "--actuators",
                "--setup",
            ])
            .args(["--report-json", json.to_str().unwrap()]),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["plan"]["source"], "scenarios/default.json (built in)");
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(shipped("default.json")).unwrap()).unwrap();
    assert_eq!(r["plan"]["document"], on_disk);
    assert_eq!(r["plan"]["scenarios"], json!(DEFAULT_SCENARIOS));
}

/// A plan with one measurement per info fact, all met by hub-old-firmware
/// except when `firmware_at_least` is above its 3.4.5.
fn limits_plan(dir: &Path, firmware_at_least: &str) -> String {
    let plan = json!({
        "scenarios": [
            { "scenario": "mac", "measurements": [
                { "fact": "mac", "starts_with": "A1:B2:C3" } ] },
            { "scenario": "info", "measurements": [
                { "name": "firmware", "fact": "firmware_version", "at_least": firmware_at_least },
                { "name": "channels", "fact": "channel_count", "equals": 1 },
                { "name": "power", "fact": "power_source", "equals": "ac" },
                { "name": "signal", "fact": "wifi_strength_dbm", "at_least": -75 } ] },
            { "scenario": "config-round-trip", "allow_changes": true, "measurements": [
                { "fact": "firmware_generation", "equals": "old" } ] }
        ]
    });
    let path = dir.join(format!("limits-{firmware_at_least}.json"));
    std::fs::write(&path, plan.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn a_violated_limit_fails_exactly_that_measurement() {
    let dir = tempfile::tempdir().unwrap();
    for (at_least, code) in [("3.4.5", 0), ("5.1.1", 1)] {
        let plan = limits_plan(dir.path(), at_least);
        let (reports, r, out) = reported(&["--sim=hub-old-firmware", "--plan", &plan], code);
        let verdicts: Vec<(String, String)> = r["hubs"][0]["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["measurements"].as_array().unwrap())
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_string(),
                    m["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let firmware = if code == 0 { "pass" } else { "fail" };
        let expected: Vec<(String, String)> = [
            ("mac", "pass"),
            ("firmware", firmware),
            ("channels", "pass"),
            ("power", "pass"),
            ("signal", "pass"),
            ("firmware_generation", "pass"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(verdicts, expected, "at_least {at_least}");
        let info = scenario(&r, "info");
        let others_passed = ["mac", "config-round-trip"]
            .iter()
            .all(|s| scenario(&r, s)["outcome"] == "passed");
        assert!(others_passed, "{r:#}");
        let junit = reports.junit();
        let case = junit.test_suites[0]
            .test_cases
            .iter()
            .find(|c| c.name.as_str() == "info")
            .unwrap();
        if code == 0 {
            assert_eq!(info["outcome"], "passed");
            assert!(matches!(
                case.status,
                quick_junit::TestCaseStatus::Success { .. }
            ));
        } else {
            assert_eq!(info["outcome"], "failed");
            let m = &info["measurements"][0];
            assert_eq!(m["measured"], "3.4.5");
            assert_eq!(m["limits"], json!({"at_least": "5.1.1"}));
            assert_eq!(
                m["message"],
                "firmware_version 3.4.5 is below the limit at_least 5.1.1"
            );
            assert!(out.contains("measurement firmware failed"), "{out}");
            let quick_junit::TestCaseStatus::NonSuccess { message, ty, .. } = &case.status else {
                panic!("info not a failure in JUnit: {case:?}");
            };
            assert!(message
                .as_ref()
                .unwrap()
                .as_str()
                .contains("measurement firmware failed"));
            assert_eq!(ty.as_ref().unwrap().as_str(), "measurement");
        }
    }
}

#[test]
fn bad_plans_exit_2_and_send_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    let cases: &[(&str, &str, &str)] = &[
        (
            "unknown-scenario",
            r#"{"scenarios": [{"scenario": "mac"}, {"scenario": "reboot"}]}"#,
            "at scenarios[1].scenario: unknown scenario \"reboot\"",
        ),
        (
            "wrong-type",
            r#"{"scenarios": [{"scenario": "actuators", "allow_changes": true, "slots": [0, "one"]}]}"#,
            "at scenarios[0].slots[1]: invalid type: string \"one\"",
        ),
        (
            "unknown-field",
            r#"{"scenarios": [{"scenario": "info", "timeout": 3}]}"#,
            "at scenarios[0].timeout: unknown field `timeout`",
        ),
        (
            "bad-limit",
            r#"{"scenarios": [{"scenario": "info", "measurements": [{"fact": "firmware_version", "at_least": "five"}]}]}"#,
            "at scenarios[0].measurements[0].at_least: expected a version string",
        ),
        (
            "key-twice",
            r#"{"scenarios": [{"scenario": "setup", "allow_changes": false, "allow_changes": true}]}"#,
            "key \"allow_changes\" appears twice in one object",
        ),
        (
            "not-json",
            r#"{"scenarios": [{"scenario": "mac"}"#,
            "EOF while parsing",
        ),
    ];
    for (name, body, expected) in cases {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, body).unwrap();
        let path = path.display().to_string();
        let o = harness_within(
            &["--device", &addr, "--plan", &path, "--actuators", "--setup"],
            LIMIT,
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{name}: one line: {stderr}");
        assert!(
            lines[0].contains(&format!("plan {path}: ")),
            "{name}: {stderr}"
        );
        assert!(lines[0].contains(expected), "{name}: {stderr}");
    }
    let missing = dir.path().join("missing.json").display().to_string();
    let o = harness_within(&["--device", &addr, "--plan", &missing], LIMIT);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&format!("plan {missing}: cannot read")));
    // A report that could not be written is refused up front too.
    let o = harness_within(
        &[
            "--device",
            &addr,
            "--junit",
            &dir.path()
                .join("no/such/dir/junit.xml")
                .display()
                .to_string(),
        ],
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--junit"),
        "{}",
        text(&o)
    );
    let stats = hub.stats();
    assert_eq!((stats.accepted, stats.requests), (0, 0), "nothing was sent");
}

#[test]
fn failing_run_leaves_both_reports_with_failures_and_skips() {
    let hub = sim_with("hub-new-firmware", &["status:500@config/get"]);
    let (reports, r, _) = reported(&["--device", &hub.addr().to_string()], 1);
    assert_eq!(
        (r["status"].as_str(), r["exit_code"].as_i64()),
        (Some("finished"), Some(1))
    );
    // Given by address, not discovered: no TXT, the address it was given.
    let id = &r["hubs"][0]["identity"];
    assert_eq!(
        (&id["txt"], &id["addresses"]),
        (&json!({}), &json!(["127.0.0.1"]))
    );
    let crt = scenario(&r, "config-round-trip");
    assert_eq!(crt["outcome"], "failed");
    let ex = crt["exchanges"].as_array().unwrap();
    assert!(
        ex.iter()
            .any(|e| e["path"] == "/api/config/get" && e["status"] == 500),
        "{crt:#}"
    );
    // Passed scenarios keep no exchanges.
    assert_eq!(scenario(&r, "info")["exchanges"], json!([]));
    // Not opted in on a "real" hub: skipped with the reason.
    let act = scenario(&r, "actuators");
    assert_eq!(act["outcome"], "skipped");
    assert_eq!(act["message"], "not enabled (--actuators)");
    let junit = reports.junit();
    let suite = &junit.test_suites[0];
    assert!(suite.failures >= 1 && suite.tests == 6, "{suite:?}");
    let props: Vec<(&str, &str)> = suite
        .properties
        .iter()
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    assert!(props.contains(&("mac", "A1B2C3D4A620")), "{props:?}");
    let skipped = suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "actuators")
        .unwrap();
    let quick_junit::TestCaseStatus::Skipped { message, .. } = &skipped.status else {
        panic!("actuators not skipped: {skipped:?}");
    };
    assert_eq!(
        message.as_ref().unwrap().as_str(),
        "not enabled (--actuators)"
    );
}

/// The harness writing `reports`, stopped with `SIG<sig>` while it waits in
/// actuator-status on a hub that hangs there; its output.
fn stopped_in_actuator_status(reports: &Reports, sig: &str, limit: Duration) -> Output {
    let hub = sim_with("hub-new-firmware", &["hang@actuators/status"]);
    let mut args = vec![
        "--device".to_string(),
        hub.addr().to_string(),
        "--timeout".into(),
        "20s".into(),
    ];
    args.extend(reports.args());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let child = spawn_piped(harness_cmd().args(&refs));
    assert!(
        hub.wait_for(Duration::from_secs(10), |s| s.requests >= 3),
        "the run never reached actuator-status"
    );
    // The record takes in each finished scenario as the run goes on: wait
    // for the one that holds mac and info, though the run then hangs.
    let two_done = |t: &str| {
        serde_json::from_str::<Value>(t)
            .is_ok_and(|r| r["hubs"][0]["scenarios"].as_array().map(Vec::len) == Some(2))
    };
    assert!(
        wait_file(&reports.json, Duration::from_secs(10), two_done),
        "no record of the two finished scenarios"
    );
    // The JUnit file is rewritten with them too: a kill before that ends
    // would catch its temporary file.
    let info_in = |t: &str| t.contains("<testcase name=\"info\"");
    assert!(
        wait_file(&reports.junit, Duration::from_secs(10), info_in),
        "no JUnit file with the two finished scenarios"
    );
    send_signal(&child, sig);
    output_within(child, limit, &format!("run stopped by SIG{sig}"))
}

#[cfg(unix)] // sends SIGINT with kill(1)
#[test]
fn interrupted_run_still_leaves_both_files() {
    // The hub hangs on actuator status: the run is stuck in actuator-status
    // when SIGINT arrives.
    let reports = Reports::new();
    let o = stopped_in_actuator_status(&reports, "INT", Duration::from_secs(15));
    // Whatever ran before the interrupt is in both files, valid.
    let r = reports.record();
    assert_eq!(scenario(&r, "mac")["outcome"], "passed", "{r:#}");
    assert_eq!(scenario(&r, "info")["outcome"], "passed", "{r:#}");
    let junit = reports.junit();
    let names: Vec<&str> = junit.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(&names[..2], ["mac", "info"]);
    let run_status = junit.test_suites[0]
        .properties
        .iter()
        .find(|p| p.name.as_str() == "run_status")
        .map(|p| p.value.as_str().to_string());
    // The run handled the signal: it stopped the scenario, cleaned up and
    // stamped both files.
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["exit_code"], 130);
    assert_ne!(r["finished_at"], Value::Null);
    assert_eq!(run_status.as_deref(), Some("interrupted"));
    let stuck = scenario(&r, "actuator-status");
    assert_eq!(stuck["outcome"], "failed", "{stuck:#}");
    assert!(
        stuck["message"].as_str().unwrap().contains("interrupted"),
        "{stuck:#}"
    );
}

/// Write a plan document into `dir` and return its path.
fn write_plan(dir: &Path, name: &str, plan: Value) -> String {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, plan.to_string()).unwrap();
    path.display().to_string()
}

fn actuators_plan(dir: &Path, name: &str, step: Value) -> String {
    let mut step = step;
    step["scenario"] = json!("actuators");
    step["allow_changes"] = json!(true);
    step["verify_timeout_seconds"] = json!(1);
    write_plan(
        dir,
        name,
        json!({"scenarios": [{"scenario": "info"}, step]}),
    )
}

#[test]
fn plan_slots_choose_which_relays_are_switched() {
    let dir = tempfile::tempdir().unwrap();
    // Slot 0 never turns on: a plan that leaves it out passes, one that
    // names it fails naming it.
    for (slots, code, needle) in [
        (
            json!([1]),
            0,
            "1 of 2 slots switched on and off; slot 1 switched itself off",
        ),
        (json!([1, 0]), 1, "slot 0 did not turn on"),
        (
            json!([0, 5]),
            1,
            "the plan names slot 5, but the hub has 2 actuator(s)",
        ),
    ] {
        let hub = sim_with("hub-new-firmware", &["stuck-off:0"]);
        let plan = actuators_plan(dir.path(), "slots", json!({"slots": slots}));
        let (got, out) = run_on(&hub, &["--actuators", "--plan", &plan]);
        assert_eq!(got, Some(code), "slots {slots}:\n{out}");
        assert!(out.contains(needle), "slots {slots}: {needle:?} in\n{out}");
        assert_eq!(hub.actuator_states(), [0, 0], "all off at the end");
    }
}

#[test]
fn plan_turns_the_auto_off_check_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut requests = Vec::new();
    for check in [true, false] {
        let hub = sim_with("hub-new-firmware", &[]);
        let plan = actuators_plan(
            dir.path(),
            "auto-off",
            json!({"slots": [0], "auto_off_check": check}),
        );
        let (code, out) = run_on(&hub, &["--actuators", "--plan", &plan]);
        assert_eq!(code, Some(0), "check {check}:\n{out}");
        let note = if check {
            "slot 0 switched itself off after 1 s"
        } else {
            "no auto-off check (plan)"
        };
        assert!(out.contains(note), "check {check}:\n{out}");
        requests.push(hub.stats().requests);
    }
    assert!(
        requests[0] > requests[1],
        "the check sends more: {requests:?}"
    );
}

#[test]
fn plan_setup_values_restore_and_allow_changes() {
    let dir = tempfile::tempdir().unwrap();
    let setup = |extra: Value| {
        let mut step = json!({"scenario": "setup", "allow_changes": true,
            "test_api_key": "VEGEHUB_HARNESS_TEST_PLAN_KEY"});
        for (k, v) in extra.as_object().unwrap() {
            step[k] = v.clone();
        }
        write_plan(dir.path(), "setup", json!({"scenarios": [step]}))
    };
    // A `--setup` run with the step changed by `extra` passes: the hub,
    // its config before the run, and the output.
    let passes_with = |extra: Value| {
        let hub = sim_with("hub-new-firmware", &[]);
        let before = hub.config();
        let (code, out) = run_on(&hub, &["--setup", "--plan", &setup(extra.clone())]);
        assert_eq!(code, Some(0), "{extra}: {out}");
        (hub, before, out)
    };
    // restore false: the hub keeps the plan's test key.
    let (hub, before, _) = passes_with(json!({"restore": false}));
    let after = hub.config();
    assert_ne!(after, before);
    assert!(
        after.to_string().contains("VEGEHUB_HARNESS_TEST_PLAN_KEY"),
        "{after}"
    );
    // restore true: given back deep-equal, after using the plan's key.
    let (hub, before, _) = passes_with(json!({"restore": true}));
    assert_eq!(hub.config(), before);
    // allow_changes false: skipped with the plan's reason, even with --setup,
    // and not a request sent for it.
    let (hub, _, out) = passes_with(json!({"allow_changes": false}));
    assert!(
        out.contains("the plan does not allow it to change the hub"),
        "{out}"
    );
    assert_eq!(hub.stats().requests, 0, "{out}");
}

#[test]
fn list_shows_the_plans_scenarios_in_order() {
    let plan = shipped("smoke.json");
    let names = listed(&["--device", "127.0.0.1:9", "--plan", &plan]);
    assert_eq!(names, ["mac", "info", "actuator-status"]);
    let dir = tempfile::tempdir().unwrap();
    let reordered = write_plan(
        dir.path(),
        "reordered",
        json!({"scenarios": [{"scenario": "info"}, {"scenario": "mac"}]}),
    );
    let names = listed(&["--device", "127.0.0.1:9", "--plan", &reordered]);
    assert_eq!(names, ["info", "mac"]);
}

#[test]
fn failed_scenario_exchanges_are_recorded_with_secrets_redacted() {
    // The hub ignores config/set: setup fails, and its exchanges (the
    // config read and written, carrying the hub's endpoint key) are kept.
    let hub = sim_with("hub-new-firmware", &["ignore-set"]);
    assert!(hub.config().to_string().contains("cloud-key"));
    let addr = hub.addr().to_string();
    let (reports, r, _) = reported(&["--device", &addr, "--setup", "setup", "--exact"], 1);
    let setup = scenario(&r, "setup");
    assert_eq!(setup["outcome"], "failed");
    let ex = setup["exchanges"].as_array().unwrap();
    let paths: Vec<&str> = ex.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&"/api/config/set"), "{paths:?}");
    let set = ex.iter().find(|e| e["path"] == "/api/config/set").unwrap();
    assert_eq!(set["method"], "POST");
    assert_eq!(set["status"], 200);
    let endpoints = &set["request_body"]["endpoints"];
    assert_eq!(endpoints[0]["config"]["api_key"], "<redacted>");
    // The harness's own test key is no secret and stays readable.
    assert_eq!(
        endpoints[1]["config"]["api_key"],
        "VEGEHUB_HARNESS_TEST_API_KEY"
    );
    let json = std::fs::read_to_string(&reports.json).unwrap();
    let xml = std::fs::read_to_string(&reports.junit).unwrap();
    assert!(!json.contains("cloud-key") && !xml.contains("cloud-key"));
}

#[test]
fn hub_name_measurement_flips_with_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "name",
        json!({"scenarios": [{"scenario": "config-round-trip", "allow_changes": true,
            "measurements": [{"name": "model-name", "fact": "hub_name", "starts_with": "Vege_"}]}]}),
    );
    for (profile, code, verdict, measured) in [
        ("hub-new-firmware", 0, "pass", "Vege_A6_20"),
        ("hub-battery-sensor", 1, "fail", "Desk_Temp_Soil"),
    ] {
        let sim = format!("--sim={profile}");
        let (_, r, _) = reported(&[&sim, "--plan", &plan], code);
        let m = &scenario(&r, "config-round-trip")["measurements"][0];
        assert_eq!(
            (m["verdict"].as_str(), m["measured"].as_str()),
            (Some(verdict), Some(measured))
        );
    }
}

crate::netns_test! {
    fn discovered_hub_identity_reaches_the_record() {
        let sim = crate::common::SimProcess::start(&[
            "--advertise",
            "--profile",
            "hub-4-relay-ac",
            "--bind",
            "127.0.0.1:0",
        ]);
        let plan = shipped("smoke.json");
        let (reports, r, _) = reported(&["--select", "Greenhouse_Relays", "--plan", &plan], 0);
        let id = &r["hubs"][0]["identity"];
        assert_eq!(id["name"], "Greenhouse_Relays", "{id:#}");
        assert_eq!(id["mac"], "A1B2C3D44E51", "{id:#}");
        assert_eq!(id["addresses"], json!(["127.0.0.1"]), "{id:#}");
        assert_eq!(id["txt"]["version"], "5.1.1", "{id:#}");
        assert_eq!(id["txt"]["actuators"], "4", "{id:#}");
        let junit = reports.junit();
        assert_eq!(junit.test_suites[0].name.as_str(), "Greenhouse_Relays");
        let (code, _) = sim.terminate();
        assert_eq!(code, Some(0), "simulator exit");
    }
}

#[test]
fn killed_run_leaves_the_files_of_its_finished_scenarios() {
    // SIGKILL gives the harness no chance to clean up: the files rewritten
    // while the run goes on stand, and say the run never finished.
    let reports = Reports::new();
    let o = stopped_in_actuator_status(&reports, "KILL", Duration::from_secs(10));
    assert_eq!(o.status.code(), None, "killed by a signal");
    let r = reports.record();
    assert_eq!(r["status"], "running");
    assert_eq!(r["finished_at"], Value::Null);
    assert_eq!(
        outcomes(&r),
        [
            ("mac".into(), "passed".into()),
            ("info".into(), "passed".into())
        ]
    );
    let junit = reports.junit();
    assert!(junit.test_suites[0]
        .properties
        .iter()
        .any(|p| p.name.as_str() == "run_status" && p.value.as_str() == "running"));
    // No temporary file left beside the reports.
    let names: Vec<String> = std::fs::read_dir(reports.json.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn step_timeout_and_retries_come_from_the_plan_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let info = |extra: Value| {
        let mut step = json!({"scenario": "info"});
        for (k, v) in extra.as_object().unwrap() {
            step[k] = v.clone();
        }
        write_plan(
            dir.path(),
            "info",
            json!({"timeout_seconds": 5, "scenarios": [step]}),
        )
    };
    // The hub answers info/get after 600 ms.
    let slow = |plan: &str, extra: &[&str]| {
        let hub = sim_with("hub-new-firmware", &["delay:600ms@info/get"]);
        let mut args = vec![
            "--device".to_string(),
            hub.addr().to_string(),
            "--plan".into(),
            plan.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        harness_within(&refs, LIMIT)
    };
    let tight = info(json!({"timeout_seconds": 0.2}));
    let o = slow(&tight, &[]);
    assert_eq!(o.status.code(), Some(1), "step timeout 0.2 s: {}", text(&o));
    assert!(text(&o).contains("no answer within 200ms"), "{}", text(&o));
    let o = slow(&info(json!({"timeout_seconds": 2})), &[]);
    assert_eq!(o.status.code(), Some(0), "step timeout 2 s: {}", text(&o));
    let o = slow(&tight, &["--timeout", "2s"]);
    assert_eq!(o.status.code(), Some(0), "--timeout wins: {}", text(&o));

    // The hub drops the first info/get connection: a retry gets through.
    let flaky = |plan: &str| {
        let hub = sim_with("hub-new-firmware", &["drop@info/get,times=1"]);
        harness_within(
            &["--device", &hub.addr().to_string(), "--plan", plan],
            LIMIT,
        )
    };
    let o = flaky(&info(json!({"retries": 0})));
    assert_eq!(o.status.code(), Some(1), "retries 0: {}", text(&o));
    let o = flaky(&info(json!({"retries": 1})));
    assert_eq!(o.status.code(), Some(0), "retries 1: {}", text(&o));
}
