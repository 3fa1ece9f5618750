//! The hub as an adversary (issue 10): for each way a hub misbehaved that
//! once broke the harness's promise, the simulator produces it as a fault
//! and the real binary's verdict flips: pass without the fault; with it the
//! documented exit code, the hub's config byte-equal to before (or an exit
//! 5 whose printed `restore` command, run here, brings it back), and no
//! relay on.

use std::path::Path;
use std::process::Output;

use vegehub_harness::safety::backup::{self, Backup, HubIdentity};
use vegehub_harness::sim::{config, state, SimHandle};

use crate::common::{
    assert_has, assert_lacks, harness_cmd, lines_are_short, output_of, received, sim_edited,
    sim_with, text, FAST, LIMIT, TERMINAL_CONTROLS,
};

fn run_in(dir: Option<&Path>, hub: &SimHandle, extra: &[&str]) -> Output {
    let addr = hub.addr().to_string();
    let mut args = vec!["--device", addr.as_str()];
    // The config round-trip may write (it is read-only without the flag).
    args.push("--write-config");
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    let mut cmd = harness_cmd();
    if let Some(dir) = dir {
        cmd.env("VEGEHUB_HARNESS_BACKUP_DIR", dir);
    }
    output_of(cmd.args(&args), LIMIT)
}

/// A run with the test process's backup dir (kept until the tests end,
/// so a printed restore command can use its backup).
fn run(hub: &SimHandle, extra: &[&str]) -> Output {
    run_in(None, hub, extra)
}

/// A run with `extra` against `hub` ends with `code`, its output names
/// every one of `needles`, and the hub is left as found; every failure
/// message starts with `case`. The run's output, also as text.
fn checked(
    case: &str,
    hub: &SimHandle,
    extra: &[&str],
    code: i32,
    needles: &[&str],
) -> (Output, String) {
    let before = hub.state().config_text();
    let o = run(hub, extra);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(code), "{case}:\n{out}");
    for n in needles {
        assert!(out.contains(n), "{case}: {n:?} not in:\n{out}");
    }
    left_as_found(hub, &before, &format!("{case}:\n{out}"));
    (o, out)
}

/// A faulted hub after a [`checked`] run: the hub, and the run's output,
/// also as text.
type Checked = (SimHandle, Output, String);

/// [`checked`] on a new-firmware hub with `faults` (named in the failure
/// messages).
fn checked_with(faults: &[&str], extra: &[&str], code: i32, needles: &[&str]) -> Checked {
    let hub = sim_with("hub-new-firmware", faults);
    let (o, out) = checked(&faults.join(" "), &hub, extra, code, needles);
    (hub, o, out)
}

/// The verdict flips with `faults`: the run with `extra` passes on a
/// healthy new-firmware hub, and is [`checked_with`] them.
fn flips(faults: &[&str], extra: &[&str], code: i32, needles: &[&str]) -> Checked {
    passes_without_fault("hub-new-firmware", extra);
    checked_with(faults, extra, code, needles)
}

/// The same run passes against a healthy hub of the same profile.
fn passes_without_fault(profile: &str, extra: &[&str]) {
    checked("without the fault", &sim_with(profile, &[]), extra, 0, &[]);
}

/// What `config/get` with every section answers on `hub`, exactly: what a
/// run backs up.
fn answer(hub: &SimHandle) -> String {
    let wanted = vegehub_harness::device::config::full_request();
    hub.state()
        .config_sections_text(wanted.as_object().expect("sections"))
}

/// A new-firmware hub with `faults`, its config before the run, and a run
/// with `extra` against it: its output, also as text.
fn faulted(faults: &[&str], extra: &[&str]) -> (SimHandle, String, Output, String) {
    let hub = sim_with("hub-new-firmware", faults);
    let before = hub.state().config_text();
    let o = run(&hub, extra);
    let out = text(&o);
    (hub, before, o, out)
}

/// The hub's config is byte-equal to `before` and no relay is on.
fn left_as_found(hub: &SimHandle, before: &str, out: &str) {
    assert_eq!(hub.state().config_text(), before, "config changed:\n{out}");
    assert!(
        hub.actuator_states().iter().all(|&s| s == 0),
        "a relay is on:\n{out}"
    );
}

/// `restore` of a backup of `hub`'s whole config (the hub named `name` in
/// it), as a user runs it.
fn restore_from_backup(hub: &SimHandle, name: Option<&str>) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let identity = HubIdentity {
        mac: hub.state().profile().mac().to_string(),
        name: name.map(str::to_owned),
        firmware: None,
        address: hub.addr().to_string(),
    };
    let path = backup::write(dir.path(), &Backup::new(identity, &answer(hub))).unwrap();
    output_of(harness_cmd().arg("restore").arg(&path), LIMIT)
}

/// The `restore` command an exit 5 printed last, as arguments.
fn printed_restore(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("restore it with: vegehub-harness restore "))
        .unwrap_or_else(|| panic!("no restore command printed:\n{out}"));
    let cmd = line
        .split("restore it with: vegehub-harness ")
        .nth(1)
        .unwrap();
    // Paths here are plain (temp dirs): split on spaces, drop quotes.
    cmd.split_whitespace()
        .map(|w| w.trim_matches('\'').to_owned())
        .collect()
}

/// Run the printed restore command against the hub, faults off (a healthy
/// hub again); it must succeed and bring the config back byte for byte.
fn restore_brings_it_back(hub: &SimHandle, out: &str, before: &str) {
    let args = printed_restore(out);
    hub.state().set_faults_enabled(false);
    let o = output_of(harness_cmd().args(&args), LIMIT);
    assert_eq!(o.status.code(), Some(0), "restore {args:?}:\n{}", text(&o));
    left_as_found(hub, before, out);
}

// 1. Redirects are never followed, in runs and in `restore`.
#[test]
fn a_redirect_is_a_hub_failure_naming_status_and_location_never_followed() {
    passes_without_fault("hub-new-firmware", &[]);
    // Another server, with another config and MAC, on another port.
    let other = sim_with("hub-old-firmware", &[]);
    let port = other.addr().port();
    let location = format!("Location http://127.0.0.1:{port}/api/");
    for fault in [
        format!("redirect:302>{port}@config/get"),
        format!("redirect:307>{port}@config/set"),
        format!("redirect:301>{port}@info/get"),
    ] {
        checked_with(&[&fault], &[], 1, &["redirect", &location]);
        assert!(other.state().received().is_empty(), "{fault}: followed");
    }
    // `restore` does not follow one either: exit 5, nothing sent elsewhere.
    let hub = sim_with(
        "hub-new-firmware",
        &[&format!("redirect:307>{port}@config/set")],
    );
    let o = restore_from_backup(&hub, None);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(text(&o).contains("redirect"), "{}", text(&o));
    assert!(other.state().received().is_empty(), "restore followed");
}

// 2. An error in the answer body is a failure, whatever the HTTP status.
#[test]
fn an_error_field_in_a_200_answer_fails_the_write() {
    flips(
        &["error-field@config/set"],
        &["--exact", "config-round-trip"],
        1,
        &["the hub reported error 1"],
    );
    // The same on actuator status: never read as "off".
    checked_with(
        &["error-field@actuators/status"],
        &["--exact", "actuator-status"],
        1,
        &["reported error \"failure\""],
    );
}

// 3. Values are kept exactly, or the config is refused before any write.
#[test]
fn a_config_that_is_not_utf8_is_refused_before_any_write() {
    let refused = ["not valid UTF-8"];
    let (hub, _, out) = flips(&["non-utf8@config/get"], &["--setup"], 1, &refused);
    assert_eq!(received(&hub, "/api/config/set"), 0, "written:\n{out}");
}

#[test]
fn a_number_above_2_pow_64_is_carried_exactly_or_refused() {
    // Round-trip writes the exact bytes and compares exactly: it passes and
    // the number is untouched; setup would have to rebuild the document,
    // and refuses before writing.
    let hub = sim_with("hub-new-firmware", &["big-number"]);
    assert!(hub.state().config_text().contains(config::BIG_NUMBER));
    checked(
        "round-trip",
        &hub,
        &["--exact", "config-round-trip"],
        0,
        &[],
    );
    let refused = ["cannot be carried exactly"];
    checked("setup", &hub, &["--exact", "setup", "--setup"], 1, &refused);

    // A hub that stores it as a double (once): the round-trip sees the
    // change (as f64 the two are equal), and the exact restore puts the
    // original back.
    checked_with(
        &["big-number", "lossy-numbers,times=1"],
        &["--exact", "config-round-trip"],
        1,
        &[
            "differs at 1 path(s): hub.vh_total",
            "cleanup: config restored: verified",
        ],
    );
}

// 4. A config of a shape the harness does not understand is not written.
#[test]
fn a_config_of_unexpected_shape_means_no_write() {
    passes_without_fault("hub-new-firmware", &["--setup"]);
    for shape in ["null", "array", "string"] {
        let fault = format!("shape:{shape}@config/get");
        let needles = ["not a JSON object", "does not write a config"];
        let (hub, _, out) = checked_with(&[&fault], &["--setup"], 1, &needles);
        assert_eq!(received(&hub, "/api/config/set"), 0, "{shape}:\n{out}");
    }
}

// 5. Every write is owed against the run's first backup: a signal during
// setup after the round-trip restores; a refused restore ends with the
// command that brings it back.
#[cfg(unix)]
#[test]
fn a_signal_during_setup_after_the_round_trip_restores_the_original() {
    use crate::common::{wait_hub, Spawned};
    // config/get: 1 round-trip read, 2 its read-back, 3 its check against
    // the original, 4 setup's read, 5 setup's read-back (slow: the signal
    // comes while the test config is on the hub).
    let hub = sim_with("hub-new-firmware", &["delay:5s@config/get,after=4,times=1"]);
    let before = hub.state().config_text();
    let addr = hub.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let run = Spawned::with_backups(
        &["--device", &addr, "--write-config", "--setup"],
        dir.path(),
    );
    wait_hub(&hub, "the test config on the hub", |s| {
        s.config_text().contains("VEGEHUB_HARNESS_TEST")
    });
    run.signal(libc::SIGTERM);
    let (code, out) = run.finish(LIMIT);
    assert_eq!(code, Some(130), "{out}");
    assert!(!out.contains("nothing to undo"), "{out}");
    left_as_found(&hub, &before, &out);
}

#[test]
fn a_refused_final_restore_is_exit_5_and_the_printed_command_works() {
    passes_without_fault("hub-new-firmware", &["--setup"]);
    // config/set: 1 the round-trip's, 2 setup's test config; every restore
    // after that is refused.
    let (hub, before, o, out) = faulted(&["status:500@config/set,after=2"], &["--setup"]);
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert_ne!(
        hub.state().config_text(),
        before,
        "the fault kept the test config"
    );
    restore_brings_it_back(&hub, &out, &before);
}

// 6. A slot the hub does not report is unknown, not off.
#[test]
fn a_slot_missing_from_status_is_unknown_and_exit_5() {
    let extra = ["--exact", "actuators", "--actuators"];
    // The relay itself did switch off (left as found): the harness just
    // cannot know it.
    let unknown = "slot(s) 1 unknown (not reported by actuators/status)";
    let (_, _, out) = flips(&["missing-slot:1@actuators/status"], &extra, 5, &[unknown]);
    assert!(!out.contains("actuators off: verified"), "{out}");
}

// 7. Bounded work whatever the hub claims.
#[test]
fn a_hub_claiming_4294967295_actuators_gets_no_command() {
    let claim = ["claim-actuators:4294967295@info/get"];
    let too_many = "hub.num_actuators is 4294967295, more than the harness handles (32)";
    let (hub, _, out) = flips(&claim, &["--actuators"], 1, &[too_many]);
    assert_eq!(received(&hub, "/api/actuators/set"), 0, "{out}");
    assert!(hub.state().received().len() < 50, "bounded requests");
}

/// Neither stream of `o` carries a character a terminal acts on.
fn no_raw_control(o: &Output) {
    assert_lacks(&text(o), TERMINAL_CONTROLS);
}

// 8. Hub strings never reach the terminal raw: not on the console, not in
// the JSON it prints (`--format json`, `record`), not in report files
// someone may `cat`; JSON still carries the exact value.
#[test]
fn control_characters_from_the_hub_are_shown_escaped_on_every_path() {
    // The fake strength fails info, named and escaped.
    let (hub, o, _) = flips(
        &["ctrl-chars"],
        &["--setup", "--actuators", "-v"],
        1,
        &["wifi.strength", "\\x1b"],
    );
    no_raw_control(&o);

    let files = crate::common::ReportFiles::new();
    let mut args = vec!["--setup", "--format", "json"];
    let file_args = files.args();
    args.extend(file_args.iter().map(String::as_str));
    let (_, o, _) = checked_with(&["ctrl-chars"], &args, 1, &[]);
    no_raw_control(&o);
    for path in [files.json_path(), files.junit_path(), files.html_path()] {
        assert_lacks(&std::fs::read_to_string(&path).unwrap(), TERMINAL_CONTROLS);
    }
    let record = files.record();
    assert_eq!(record["hubs"][0]["identity"]["name"], config::CTRL_NAME);
    // `record` prints a profile holding the hub's name.
    let named = sim_edited("hub-old-firmware", |doc| {
        doc["name"] = config::CTRL_NAME.into();
        doc["config"]["hub"]["name"] = config::CTRL_NAME.into();
    });
    let addr = named.addr().to_string();
    let o = output_of(harness_cmd().args(["record", "--device", &addr]), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let profile: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(profile["config"]["hub"]["name"], config::CTRL_NAME);
    no_raw_control(&o);

    // `restore` prints the hub's name from the backup: escaped too.
    let o = restore_from_backup(&hub, Some(config::CTRL_NAME));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("Desk\\x1b[2J"), "{}", text(&o));
    no_raw_control(&o);
}

// 9. Secrets under unknown key names, and unparseable bodies, stay out of
// the JSON record, the JUnit file and -v.
#[test]
fn secrets_under_unknown_keys_and_in_unparseable_bodies_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let html = dir.path().join("r.html");
    let files = [
        "--report-json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--report-html",
        html.to_str().unwrap(),
    ];
    for faults in [
        // Setup fails (the hub ignores it): its exchanges, with the
        // config, are recorded; each write's answer echoes a secret in a
        // harmless field (once recorded whole).
        &["secret-fields", "ignore-set@config/set"][..],
        // A config/get body cut off mid-document, secrets inside.
        &["secret-fields", "malformed@config/get"][..],
    ] {
        let hub = sim_with("hub-new-firmware", faults);
        let stored = hub.state().config_text();
        let number = [config::NUMBER_SECRET];
        let secrets = [&config::SECRETS[..], &number].concat();
        for s in &secrets {
            assert!(stored.contains(s), "the fault stores {s}");
        }
        let args = [&["--setup", "-v"][..], &files].concat();
        let (_, out) = checked(&faults.join(" "), &hub, &args, 1, &[]);
        let record = std::fs::read_to_string(&json).unwrap();
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(record.contains("exchanges"), "{record}");
        assert_lacks(&out, &secrets);
        assert_lacks(&record, &secrets);
        assert_lacks(&xml, &secrets);
        assert_lacks(&std::fs::read_to_string(&html).unwrap(), &secrets);
        if faults.contains(&"ignore-set@config/set") {
            assert!(
                record.contains("stored; wifi_pass is <redacted>, api_key is <redacted>"),
                "{record}"
            );
        }
        if faults.contains(&"malformed@config/get") {
            assert!(record.contains("bytes, not recorded; sha256 "), "{record}");
        }
    }
    // The number spelt as serde_json would not (`90210.750`): setup
    // refuses to rebuild the config, and its message, quoting both
    // spellings, shows neither.
    let hub = sim_with("hub-new-firmware", &["secret-fields"]);
    let respelt = hub
        .state()
        .config_text()
        .replace(config::NUMBER_SECRET, "90210.750");
    hub.state().set_config_text(&respelt, true).unwrap();
    let args = [&["--setup", "-v"][..], &files].concat();
    let (_, out) = checked("a respelt number", &hub, &args, 1, &[]);
    let refused =
        "(number at hub.api_key is written <redacted>, a rebuilt config would say <redacted>)";
    assert_has(&out, &[refused]);
    for shown in [
        out,
        std::fs::read_to_string(&json).unwrap(),
        std::fs::read_to_string(&junit).unwrap(),
        std::fs::read_to_string(&html).unwrap(),
    ] {
        assert_lacks(&shown, &["90210.75"]);
    }
}

// 10. Answers are read up to a bound.
#[test]
fn huge_answers_are_not_read_past_the_limit() {
    passes_without_fault("hub-new-firmware", &["--actuators"]);
    for fault in ["huge:50M@info/get", "huge:1M@actuators/status"] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("r.json");
        let (hub, before, o, out) = faulted(
            &[fault],
            &["--actuators", "--report-json", json.to_str().unwrap()],
        );
        assert_ne!(o.status.code(), Some(0), "{fault}:\n{out}");
        assert!(
            out.contains("answer larger than 262144 bytes; stopped reading it"),
            "{fault}:\n{out}"
        );
        let size = std::fs::metadata(&json).unwrap().len();
        assert!(size < 1024 * 1024, "{fault}: a {size}-byte report");
        left_as_found(&hub, &before, &out);
    }
    // A config answer of exactly the limit is carried exactly; one byte
    // more is not read, so not written back.
    let limit = vegehub_harness::session::client::MAX_ANSWER_BYTES;
    let padded = |note: &str| {
        let note = note.to_owned();
        sim_edited("hub-new-firmware", |doc| {
            doc["config"]["endpoints"][0]["config"]["note"] = note.into();
        })
    };
    let pad = limit - answer(&padded("")).len();
    let round_trip = ["--exact", "config-round-trip"];
    let hub = padded(&"x".repeat(pad));
    assert_eq!(answer(&hub).len(), limit);
    checked("at the limit", &hub, &round_trip, 0, &[]);
    let hub = padded(&"x".repeat(pad + 1));
    let too_big = "answer larger than 262144 bytes";
    checked("a byte over", &hub, &round_trip, 1, &[too_big]);
    assert_eq!(received(&hub, "/api/config/set"), 0);
}

// 11. The hub cannot change under the run.
#[test]
fn a_mac_change_stops_every_write_and_exit_5_names_both_macs() {
    passes_without_fault("hub-new-firmware", &["--exact", "setup", "--setup"]);
    // info/get: 1 the MAC for the backup, 2 the check before the test
    // config; from 3 on (the check before the restore) another device.
    let (hub, before, o, out) = faulted(
        &["mac-change@info/get,after=2"],
        &["--exact", "setup", "--setup"],
    );
    let mac = hub.state().profile().mac().to_string();
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert_has(&out, &[&mac, state::OTHER_MAC, "stopped writing to it"]);
    // Only the test config was written: nothing after the change.
    assert_eq!(received(&hub, "/api/config/set"), 1, "{out}");
    restore_brings_it_back(&hub, &out, &before);
}

// 12. A backup dir others can write is refused before anything is sent.
#[cfg(unix)]
#[test]
fn a_world_writable_backup_dir_is_refused_with_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hub = sim_with("hub-new-firmware", &[]);
    let o = run_in(Some(dir.path()), &hub, &["--exact", "config-round-trip"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let hub = sim_with("hub-new-firmware", &[]);
    let o = run_in(Some(dir.path()), &hub, &["--exact", "config-round-trip"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("writable by others (mode 777)"), "{out}");
    assert!(hub.state().received().is_empty(), "{out}");
}

// 13. A key twice is not read as either value: `"state":1,"state":0` once
// read as off (a parser keeps the last), a write answering
// `{"error":1,"error":0}` as done, a config whose error field says two
// things as good, an info answer with two MACs as the last one.
#[test]
fn a_key_twice_in_an_answer_is_unknown_never_the_last_value() {
    let actuators = ["--exact", "actuators", "--actuators"];
    // The first off of slot 0 is ignored: honestly read, the scenario
    // fails and the cleanup's off works.
    let stuck_once = "stuck-on:0,times=1";
    checked_with(&[stuck_once], &actuators, 1, &["slot 0 did not turn off"]);
    // Status entries saying "state":1,"state":0 once passed this run
    // (exit 0): now every status is unknown, never off.
    let (_, _, out) = checked_with(
        &[stuck_once, "dup-key@actuators/status"],
        &actuators,
        5,
        &["key \"state\" appears twice"],
    );
    assert!(!out.contains("verified: every slot reads off"), "{out}");

    passes_without_fault("hub-new-firmware", &["--exact", "config-round-trip"]);
    for (fault, scenario, needle) in [
        (
            "dup-key@config/set",
            "config-round-trip",
            "key \"error\" appears twice",
        ),
        (
            "dup-key@config/get",
            "config-round-trip",
            "the error field appears twice",
        ),
        ("dup-key@info/get", "info", "key \"mac_addr\" appears twice"),
    ] {
        checked_with(&[fault], &["--exact", scenario], 1, &[needle]);
    }
}

// 14. A slot listed twice (a copy reading off first) once passed the same
// ignored off; now its state is unknown.
#[test]
fn a_slot_listed_twice_is_unknown_never_off() {
    let (_, _, out) = checked_with(
        &["stuck-on:0,times=1", "dup-slot"],
        &["--exact", "actuators", "--actuators"],
        5,
        &["slot 0 is listed twice"],
    );
    assert!(!out.contains("verified: every slot reads off"), "{out}");
}

// 15. Only the documented success value is success: `"0"`, `false`,
// `null`, `0.0` and `""` are not `0`. (`"0"` once passed a write that was
// not done.)
#[test]
fn only_the_documented_error_value_means_success() {
    passes_without_fault("hub-new-firmware", &["--exact", "config-round-trip"]);
    for value in ["\"0\"", "false", "null", "0.0", "\"\""] {
        for (endpoint, scenario, needle) in [
            ("config/set", "config-round-trip", "the hub reported error"),
            ("config/get", "config-round-trip", "the hub reported error"),
            ("actuators/status", "actuator-status", "error"),
        ] {
            let fault = format!("error-value:{value}@{endpoint}");
            checked_with(&[&fault], &["--exact", scenario], 1, &[needle]);
        }
    }
}

// 16. A relay that switches itself back on right after an off (a schedule
// window opening again) once ended the run "verified off" and then ran:
// off is now two reads in a row.
#[test]
fn a_relay_that_switches_itself_back_on_is_not_verified_off() {
    // The run's own cleanup retries until the window has closed and the
    // slot reads off twice: verified, so not exit 5 but 1.
    flips(
        &["relapse:1"],
        &["--exact", "actuators", "--actuators"],
        1,
        &["all-off not verified", "slot(s) [1] on"],
    );
}

// 17. A config write answered 200 but stored only in part is seen by
// reading back, and the restore is verified the same way.
#[test]
fn a_config_stored_only_in_part_fails_and_is_restored() {
    let setup = ["--exact", "setup", "--setup"];
    passes_without_fault("hub-old-firmware", &setup);
    let hub = sim_with("hub-old-firmware", &["partial-set"]);
    let restored = "cleanup: config restored: verified";
    checked("partial-set", &hub, &setup, 1, &["api_key", restored]);
}

// 18. Hub text quoted in a message is cut: a 4 KiB firmware version (or
// MAC, or Wi-Fi strength) once made a 4 KiB "one-line" error.
#[test]
fn long_hub_strings_are_cut_in_messages() {
    let long = format!("5.{}", "9".repeat(4096));
    let hub = sim_edited("hub-new-firmware", |doc| {
        doc["firmware"] = long.clone().into();
        doc["info"]["hub"]["version"] = long.into();
    });
    let needles = ["hub.version \"5.999", "is not a version string"];
    let (_, out) = checked("a 4 KiB version", &hub, &["--exact", "info"], 1, &needles);
    lines_are_short(&out);
}

// 19. The hub's numbers are not the harness's arithmetic: an endpoint id
// at i64::MAX once panicked `setup` (the new id overflowed).
#[test]
fn an_endpoint_id_at_the_top_of_i64_is_no_panic() {
    let hub = sim_edited("hub-new-firmware", |doc| {
        doc["config"]["endpoints"][0]["id"] = i64::MAX.into();
    });
    let before = hub.state().config_text();
    assert!(before.contains("9223372036854775807"), "{before}");
    let (_, out) = checked(
        "id i64::MAX",
        &hub,
        &["--exact", "setup", "--setup"],
        0,
        &[],
    );
    assert!(!out.contains("panicked"), "{out}");
}

// 20. Time is bounded per scenario, not only per request: a hub that
// answers every status read just inside the request timeout is stopped at
// the scenario's budget, failed naming it, and what it changed is undone
// on cleanup's own clock (relays off, config as found).
#[test]
fn a_slow_hub_is_stopped_at_the_scenario_budget_and_left_as_found() {
    let extra = [
        "--actuators",
        "--scenario-timeout",
        "5s",
        "--exact",
        "actuators",
    ];
    let needles = [
        "actuators: did not finish within its 5s budget (--scenario-timeout)",
        "off: done, verified",
    ];
    flips(&["delay:700ms@actuators/status"], &extra, 1, &needles);
}
