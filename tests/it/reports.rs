//! Reports through the real binary against simulated hubs: on every way a
//! run ends (normal end, failure, first and second signal, broken pipe, hub
//! vanished, harness error) the JSON record and the JUnit file are read
//! back and carry the final status, exit code and each hub's cleanup
//! outcome; the JUnit validates against the JUnit 10 schema; a rebooting
//! hub is marked flaky in the console, the record and JUnit; the JSON event
//! stream names every hub in every event; the HTML report is well-formed,
//! self-contained and shows the record's counts.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use serde_json::Value;

use vegehub_harness::sim::SimHandle;

use crate::common::{assert_has, harness_cmd, output_of, sim_with, text, ReportFiles, Spawned};

const LIMIT: Duration = Duration::from_secs(30);

/// Fast settings for a simulated hub.
const FAST: &[&str] = &["--timeout", "2s", "--verify-timeout", "1s"];

fn args(addrs: &[&str], reports: &ReportFiles, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for a in addrs {
        v.push("--device".into());
        v.push((*a).into());
    }
    v.extend(FAST.iter().map(|s| s.to_string()));
    v.extend(reports.args());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Run to the end; exit code and output.
fn run(args: &[String]) -> (Option<i32>, String) {
    Spawned::start(args, false).finish(LIMIT)
}

/// [`run`] with the environment variable `key` set to `value`.
fn run_env(key: &str, value: &str, args: &[String]) -> (Option<i32>, String) {
    let o = output_of(harness_cmd().env(key, value).args(args), LIMIT);
    (o.status.code(), text(&o))
}

/// A run of the actuators scenario (relays on for 10 s) on a new-firmware
/// hub with `fault`, once the hub has a relay on.
fn with_a_relay_on(fault: &str, reports: &ReportFiles) -> (SimHandle, Spawned) {
    let hub = sim_with("hub-new-firmware", &[fault]);
    let addr = hub.addr().to_string();
    let extra = ["--actuators", "actuators", "--on-seconds", "10"];
    let run = Spawned::start(&args(&[&addr], reports, &extra), false);
    assert!(
        hub.wait_state(LIMIT, |s| s.actuator_states().contains(&1)),
        "no relay switched on"
    );
    (hub, run)
}

/// The checks every final report must pass, whatever ended the run (with
/// exit code `got`, printing `out`): the run's and the record's exit code
/// `code`, the record's status and each hub's cleanup status; the JUnit
/// valid and saying the same; the HTML showing the same counts.
fn check_final(
    reports: &ReportFiles,
    (got, out): (Option<i32>, &str),
    status: &str,
    code: i32,
    cleanup: &[&str],
) -> Value {
    assert_eq!(got, Some(code), "{out}");
    let r = reports.record();
    assert_eq!(r["status"], status, "{out}\n{r:#}");
    assert_eq!(r["exit_code"], code, "{out}\n{r:#}");
    assert!(r["finished_at"].is_string(), "{r:#}");
    assert!(r["duration_ms"].is_u64(), "{r:#}");
    let got: Vec<&str> = r["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["cleanup"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(got, cleanup, "{out}\n{r:#}");
    let junit = reports.valid_junit();
    assert!(
        junit.contains(&format!(
            "<property name=\"run_status\" value=\"{status}\"/>"
        )),
        "{junit}"
    );
    assert!(
        junit.contains(&format!("<property name=\"exit_code\" value=\"{code}\"/>")),
        "{junit}"
    );
    check_html(&reports.html(), &r);
    r
}

/// Well-formed (parsed as XML: every element closed, one root),
/// self-contained (nothing to fetch), and the record's counts.
fn check_html(html: &str, record: &Value) {
    let mut reader = quick_xml::Reader::from_str(html);
    let mut depth = 0i32;
    let mut roots = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => {
                if depth == 0 {
                    roots += 1;
                }
                depth += 1;
            }
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "HTML not well-formed at {}: {e}\n{html}",
                reader.buffer_position()
            ),
        }
    }
    assert_eq!((depth, roots), (0, 1), "{html}");
    // Nothing that makes a browser fetch (hub URLs quoted as text are fine).
    let lower = html.to_ascii_lowercase();
    for needle in [
        "<script",
        "<link",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "src=",
        "href=\"http",
        "url(",
        "@import",
    ] {
        assert!(!lower.contains(needle), "HTML refers to {needle}:\n{html}");
    }
    for k in [
        "hubs",
        "scenarios",
        "passed",
        "failed",
        "skipped",
        "flaky",
        "hubs_left_modified",
    ] {
        let shown = format!("data-count=\"{k}\">{}</b>", record["summary"][k]);
        assert!(html.contains(&shown), "{shown} not in:\n{html}");
    }
    assert!(html.contains(&format!(
        "id=\"run-status\">{}</span>",
        record["status"].as_str().unwrap()
    )));
}

/// The record's error names `needle`.
fn record_error_names(r: &Value, needle: &str) {
    let error = r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {r:#}"));
    assert!(error.contains(needle), "{needle:?} not in the error: {r:#}");
}

/// The stdout part of `out` (stdout, then stderr, as [`run`] gives it):
/// one JSON value a line.
fn json_lines(out: &str) -> Vec<Value> {
    let stdout = out.split("\n--- stderr ---\n").next().unwrap();
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Counts of each outcome across the record's hubs.
fn outcomes(r: &Value) -> Vec<(String, String, bool)> {
    r["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["scenarios"].as_array().unwrap().iter())
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["outcome"].as_str().unwrap().to_owned(),
                s["flaky"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn normal_end_failure_and_skips_carry_status_exit_code_and_cleanup() {
    // Passing, with everything the run changed verified undone.
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let (code, out) = run(&args(
        &[&addr],
        &reports,
        &[
            "--actuators",
            "--setup",
            "--station",
            "bench-3",
            "--operator",
            "Ana",
        ],
    ));
    let r = check_final(&reports, (code, &out), "finished", 0, &["verified"]);
    let obligations = r["hubs"][0]["cleanup"]["obligations"].as_array().unwrap();
    assert!(
        obligations.iter().any(|o| o["kind"] == "actuators"
            && o["verified"] == true
            && o["scenario"] == "actuators"),
        "{r:#}"
    );
    assert!(
        obligations
            .iter()
            .any(|o| o["kind"] == "config" && o["verified"] == true),
        "{r:#}"
    );
    assert_eq!(
        (r["station"].as_str(), r["operator"].as_str()),
        (Some("bench-3"), Some("Ana"))
    );
    assert_has(
        &reports.junit(),
        &[
            "<property name=\"station\" value=\"bench-3\"/>",
            "<property name=\"operator\" value=\"Ana\"/>",
        ],
    );
    assert!(out.contains("station bench-3, operator Ana"), "{out}");
    assert!(reports.html().contains("id=\"operator\">Ana</b>"));

    // A relay that never switches on fails the actuators scenario (exit 1);
    // its all-off is still verified.
    let stuck = sim_with("hub-new-firmware", &["stuck-off:1"]);
    let addr = stuck.addr().to_string();
    let reports = ReportFiles::new();
    let (code, out) = run(&args(&[&addr], &reports, &["--actuators"]));
    let r = check_final(&reports, (code, &out), "finished", 1, &["verified"]);
    assert!(
        outcomes(&r).contains(&("actuators".into(), "failed".into(), false)),
        "{r:#}"
    );
    assert!(reports.junit().contains("<failure message="));

    // Skips only: nothing changed, nothing owed. The station comes from
    // the environment.
    let reports = ReportFiles::new();
    let (code, out) = run_env(
        "VEGEHUB_HARNESS_STATION",
        "line 2",
        &args(&[&addr], &reports, &[]),
    );
    let r = check_final(&reports, (code, &out), "finished", 0, &["nothing_owed"]);
    assert_eq!(r["station"], "line 2");
    assert_eq!(r["operator"], Value::Null);
    assert!(
        outcomes(&r).contains(&("setup".into(), "skipped".into(), false)),
        "{r:#}"
    );
    assert!(reports
        .junit()
        .contains("<skipped message=\"not enabled (--setup)\"/>"));
}

#[test]
fn a_hub_refusing_the_restore_is_exit_5_with_the_restore_command_in_every_report() {
    let hub = sim_with("hub-new-firmware", &["status:500@config/set,after=1"]);
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let (code, out) = run(&args(&[&addr], &reports, &["--setup", "setup"]));
    let r = check_final(&reports, (code, &out), "finished", 5, &["left_modified"]);
    let left: Vec<&Value> = r["hubs"][0]["cleanup"]["obligations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["verified"] == false)
        .collect();
    assert!(!left.is_empty(), "{r:#}");
    let cmd = left
        .iter()
        .find_map(|o| o["restore_command"].as_str())
        .unwrap_or_else(|| panic!("no restore command: {r:#}"));
    assert!(
        cmd.starts_with("vegehub-harness restore ") && cmd.ends_with(&format!("--device {addr}")),
        "{cmd}"
    );
    // The console's last word names the same command.
    assert!(out.contains(cmd), "{cmd} not in:\n{out}");
    // JUnit: the hub left modified is an error, with the command.
    let junit = reports.junit();
    assert!(junit.contains("<testcase name=\"cleanup\""), "{junit}");
    assert!(junit.contains("type=\"hub-left-modified\""), "{junit}");
    assert!(junit.contains(&format!("restore with: {cmd}")), "{junit}");
    assert!(reports.html().contains(cmd));
}

#[cfg(unix)]
#[test]
fn first_and_second_signal_leave_final_reports() {
    // First signal mid-actuators: cleanup switches every slot off (130).
    let reports = ReportFiles::new();
    let (_hub, run) = with_a_relay_on("delay:400ms@actuators/status", &reports);
    run.signal(libc::SIGINT);
    let (code, out) = run.finish(LIMIT);
    let r = check_final(&reports, (code, &out), "interrupted", 130, &["verified"]);
    // The interrupted scenario carries its true time, not 0.
    let s = &r["hubs"][0]["scenarios"][0];
    assert_eq!(s["outcome"], "failed", "{r:#}");
    assert!(s["duration_ms"].as_u64().unwrap() > 0, "{r:#}");
    // The hub's time covers the interrupted scenario and its cleanup.
    let hub_ms = r["hubs"][0]["duration_ms"].as_u64().unwrap();
    assert!(hub_ms > s["duration_ms"].as_u64().unwrap(), "{r:#}");

    // Second signal while cleanup's restore hangs: exit at once (5), the
    // reports say aborted and what may be left, with the restore command.
    let hub = sim_with(
        "hub-new-firmware",
        &["delay:700ms@config/get,after=1", "hang@config/set,after=1"],
    );
    let original = hub.config();
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let run = Spawned::start(&args(&[&addr], &reports, &["--setup", "setup"]), false);
    assert!(
        hub.wait_state(LIMIT, |s| s.config() != original),
        "no test config"
    );
    run.signal(libc::SIGINT);
    run.wait_line("undoing on hub", LIMIT);
    run.signal(libc::SIGINT);
    let (code, out) = run.finish(LIMIT);
    let r = check_final(&reports, (code, &out), "aborted", 5, &["left_modified"]);
    record_error_names(&r, "received again");
    let ob = &r["hubs"][0]["cleanup"]["obligations"];
    let cmd = ob
        .as_array()
        .unwrap()
        .iter()
        .find_map(|o| o["restore_command"].as_str())
        .unwrap_or_else(|| panic!("no restore command: {r:#}"));
    assert!(out.contains(cmd), "{cmd} not in:\n{out}");
    assert!(reports.junit().contains(&format!("restore with: {cmd}")));
}

/// Two signals at once (a supervisor's SIGINT then SIGTERM): the run exits
/// at the second, and the scenario under way is in every report as
/// interrupted, with its time so far (before, the exit usually beat its
/// hub's thread and it was missing). Three runs, since the race it closes
/// is a matter of timing.
#[cfg(unix)]
#[test]
fn a_second_signal_at_once_keeps_the_scenario_under_way_as_interrupted() {
    for _ in 0..3 {
        // info/get answers after 300 ms, then actuators/status never does:
        // once it is asked, actuator-status has run for 300 ms at least.
        let hub = sim_with(
            "hub-new-firmware",
            &["delay:300ms@info/get", "hang@actuators/status"],
        );
        let addr = hub.addr().to_string();
        let reports = ReportFiles::new();
        let run = Spawned::start(
            &args(&[&addr], &reports, &["--exact", "actuator-status"]),
            false,
        );
        assert!(
            hub.wait_for(LIMIT, |s| s.requests >= 2),
            "actuators/status never asked"
        );
        run.signal(libc::SIGINT);
        run.signal(libc::SIGTERM);
        let (code, out) = run.finish(LIMIT);
        let r = check_final(&reports, (code, &out), "aborted", 130, &["nothing_owed"]);
        let s = &r["hubs"][0]["scenarios"];
        assert_eq!(s.as_array().map(Vec::len), Some(1), "{r:#}");
        assert_eq!(s[0]["name"], "actuator-status", "{r:#}");
        assert_eq!(s[0]["outcome"], "failed", "{r:#}");
        assert!(
            s[0]["message"].as_str().unwrap().starts_with("interrupted"),
            "{r:#}"
        );
        assert!(s[0]["duration_ms"].as_u64().unwrap() >= 300, "{r:#}");
        assert!(
            reports
                .junit()
                .contains("<testcase name=\"actuator-status\""),
            "{}",
            reports.junit()
        );
    }
}

#[test]
fn a_closed_stdout_ends_the_run_with_final_reports() {
    for format in ["json", "pretty"] {
        // Slow answers keep the run going after the reader goes away.
        let hub = sim_with("hub-new-firmware", &["delay:200ms@actuators/status"]);
        let addr = hub.addr().to_string();
        let reports = ReportFiles::new();
        let mut run = Spawned::start(
            &args(
                &[&addr],
                &reports,
                &["--actuators", "--format", format, "--exact", "actuators"],
            ),
            true,
        );
        // Read the first line; once a relay is on, close the pipe: the
        // scenario's outcome is the first line that cannot be written.
        let mut stdout = BufReader::new(run.child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        assert!(
            hub.wait_state(LIMIT, |s| s.actuator_states().contains(&1)),
            "no relay switched on"
        );
        drop(stdout);
        let (code, out) = run.finish(LIMIT);
        let out = format!("{format}: {out}");
        // The JSON stream is an error to lose; the human lines stop the run
        // as a first Ctrl-C would (exit 141, README "On the terminal").
        let (status, exit) = if format == "json" {
            ("error", 1)
        } else {
            ("interrupted", 141)
        };
        let r = check_final(&reports, (code, &out), status, exit, &["verified"]);
        if format == "json" {
            record_error_names(&r, "the run stopped early");
        }
        assert_eq!(hub.actuator_states(), vec![0, 0], "{out}");
        // The summary, on stderr now, says the same exit code.
        let summary = format!("exit code {exit})");
        assert!(out.contains(&summary), "{out}");
    }
}

#[test]
fn a_hub_that_vanishes_mid_run_is_left_modified_in_the_reports() {
    let reports = ReportFiles::new();
    let (hub, run) = with_a_relay_on("delay:300ms@actuators/status", &reports);
    // Gone for good, with a relay on.
    hub.shutdown();
    let (code, out) = run.finish(LIMIT);
    let r = check_final(&reports, (code, &out), "finished", 5, &["left_modified"]);
    let ob = r["hubs"][0]["cleanup"]["obligations"].as_array().unwrap();
    assert!(
        ob.iter()
            .any(|o| o["kind"] == "actuators" && o["verified"] == false),
        "{r:#}"
    );
    assert!(reports.junit().contains("type=\"hub-left-modified\""));
}

#[test]
fn a_harness_error_after_the_run_began_finishes_the_reports() {
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let args = args(&[&addr], &reports, &[]);
    let (code, out) = run_env("VEGEHUB_HARNESS_DEBUG_PANIC", "hub-thread", &args);
    let r = check_final(&reports, (code, &out), "error", 1, &["nothing_owed"]);
    record_error_names(&r, "a hub thread panicked");
    assert!(
        r["ledger"].is_object(),
        "the session was still closed: {r:#}"
    );
}

#[test]
fn a_rebooting_hub_is_flaky_in_console_record_junit_and_stream() {
    // The 4th request reboots the hub, which refuses connections for 1 s:
    // the harness retries (backoffs 0.2, 0.4, 0.8 s ...), sees the refusals,
    // and the request answers after the reboot.
    let hub = sim_with("hub-new-firmware", &["reboot-after:3,down=1s"]);
    let addr = hub.addr().to_string();
    let reports = ReportFiles::new();
    let (code, out) = run(&args(
        &[&addr],
        &reports,
        // --write-config: the reboot lands in config-round-trip, which
        // must run (not skip read-only) to pass after it.
        &["--retries", "5", "--format", "json", "--write-config"],
    ));
    assert_eq!(hub.reboot_count(), 1);
    let r = check_final(&reports, (code, &out), "finished", 0, &["nothing_owed"]);
    let flaky: Vec<&Value> = r["hubs"][0]["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["flaky"] == true)
        .collect();
    assert_eq!(flaky.len(), 1, "{r:#}");
    assert_eq!(r["summary"]["flaky"], 1);
    let kinds: Vec<&str> = flaky[0]["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"retry") && kinds.contains(&"reboot"),
        "{kinds:?}"
    );
    let name = flaky[0]["name"].as_str().unwrap();
    let junit = reports.junit();
    assert!(
        junit.contains("<flakyFailure") && junit.contains("type=\"reboot\""),
        "{junit}"
    );
    // The console summary (on stderr with --format json) and the stream.
    assert!(out.contains(&format!("FLAKY {name}")), "{out}");
    assert!(out.contains("(1 flaky)"), "{out}");
    let stream = json_lines(&out);
    assert!(
        stream
            .iter()
            .any(|e| e["scenario"] == name && e["event"] == "passed" && e["flaky"] == true),
        "{stream:#?}"
    );

    // The same run against a hub that does not reboot: nothing is flaky.
    let steady = sim_with("hub-new-firmware", &[]);
    let addr = steady.addr().to_string();
    let reports = ReportFiles::new();
    let (code, out) = run(&args(&[&addr], &reports, &["--retries", "5"]));
    assert_eq!(code, Some(0), "{out}");
    let r = reports.record();
    assert_eq!(r["summary"]["flaky"], 0, "{r:#}");
    assert!(!reports.junit().contains("flakyFailure"));
    assert!(!out.contains("FLAKY"), "{out}");
}

#[test]
fn the_json_stream_of_two_hubs_names_its_hub_in_every_event() {
    let a = sim_with("hub-new-firmware", &[]);
    let b = sim_with("hub-old-firmware", &[]);
    let (aa, ba) = (a.addr().to_string(), b.addr().to_string());
    let reports = ReportFiles::new();
    // -q is no reason to leave the stream.
    let (code, out) = run(&args(&[&aa, &ba], &reports, &["--format", "json", "-q"]));
    assert_eq!(code, Some(0), "{out}");
    let events = json_lines(&out);
    assert!(events.len() > 10, "{out}");
    let mut seen = std::collections::BTreeSet::new();
    for e in &events {
        match e["type"].as_str().unwrap() {
            "run" => {
                let hubs: Vec<String> = e["hubs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        h.get("target")
                            .or_else(|| h["hub"].get("target"))
                            .and_then(Value::as_str)
                            .unwrap()
                            .to_owned()
                    })
                    .collect();
                assert_eq!(hubs, [aa.clone(), ba.clone()], "{e}");
            }
            _ => {
                let t = e["hub"]["target"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no hub: {e}"));
                assert!(t == aa || t == ba, "{e}");
                seen.insert(t.to_owned());
                if e["type"] == "scenario" && e["event"] != "started" {
                    assert!(e["duration_ms"].is_u64(), "{e}");
                }
                if e["event"] == "skipped" {
                    assert!(
                        e["message"].as_str().unwrap().contains("not enabled"),
                        "{e}"
                    );
                }
            }
        }
    }
    assert_eq!(seen.len(), 2, "both hubs have events");
    assert_eq!(events.first().unwrap()["event"], "started");
    let last = events.last().unwrap();
    assert_eq!(
        (&last["type"], &last["event"]),
        (&Value::from("run"), &Value::from("finished"))
    );
    assert_eq!(last["exit_code"], 0);
    // The record counts what the stream told.
    let r = reports.record();
    let passed = events.iter().filter(|e| e["event"] == "passed").count();
    assert_eq!(r["summary"]["passed"], passed);

    // --list honours it: pure JSON, one line per scenario and hub.
    let (code, out) = run(&[
        "--device".into(),
        aa.clone(),
        "--device".into(),
        ba.clone(),
        "--list".into(),
        "--format".into(),
        "json".into(),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let listed = json_lines(&out);
    assert_eq!(listed.len(), 2 * 6 + 1, "{out}");
    assert_eq!(listed[0]["hub"]["target"], aa.as_str());
    assert_eq!(listed.last().unwrap()["count"], 12);
}

#[test]
fn a_bad_station_or_operator_is_a_usage_error_before_anything_is_sent() {
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    for (flag, value) in [("--station", ""), ("--operator", "tab\there")] {
        let reports = ReportFiles::new();
        let (code, out) = run(&args(&[&addr], &reports, &[flag, value]));
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains(&format!("error: {flag}")), "{out}");
        assert!(!reports.json_path().exists(), "nothing written");
    }
    // From the variable (a CI variable that is not set expands to ""):
    // the message names it, not only the flag nobody typed.
    let (code, out) = run_env(
        "VEGEHUB_HARNESS_STATION",
        "",
        &args(&[&addr], &ReportFiles::new(), &[]),
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("error: --station (or VEGEHUB_HARNESS_STATION): empty name"),
        "{out}"
    );
    assert!(hub.received().is_empty(), "nothing sent");
}
