//! At the bench, through the real binary: a default run writes nothing to a
//! real hub; questions only for what will run, after the hub is known, on a
//! pseudo-terminal; progress on long waits; whole result lines; a closed
//! stdout stops the run with the hub left clean; bad input refused before
//! the hub sees a request.

use std::time::Duration;

use vegehub_harness::sim::SimHandle;

use crate::common::{fast_args, harness_within, sim_with, text};
// Only the Unix-only tests below spawn the binary by hand.
#[cfg(unix)]
use {
    crate::common::{harness_cmd, output_of, output_within, spawn_piped, FAST},
    std::io::{BufRead, BufReader},
};

const LIMIT: Duration = Duration::from_secs(40);

/// Every opt-in to a change of the hub.
const OPT_INS: [&str; 3] = ["--write-config", "--actuators", "--setup"];

/// The paths of every request that changes a hub.
fn writes(hub: &SimHandle) -> Vec<String> {
    hub.received()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| {
            ["config/set", "actuators/set", "update/send"]
                .iter()
                .any(|w| p.ends_with(w))
        })
        .collect()
}

#[test]
fn a_default_run_against_a_real_hub_writes_nothing() {
    let hub = sim_with("hub-new-firmware", &[]);
    let o = harness_within(&fast_args(&hub.addr().to_string(), &[]), LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(writes(&hub), Vec::<String>::new(), "{out}");
    assert!(
        out.contains("config-round-trip ... ignored (not enabled (--write-config): read the config only, wrote nothing)"),
        "{out}"
    );
    assert!(
        out.contains("actuators         ... ignored (not enabled (--actuators))"),
        "{out}"
    );
    // The opt-ins are what makes it write: the record flips.
    let hub = sim_with("hub-new-firmware", &[]);
    let o = harness_within(&fast_args(&hub.addr().to_string(), &OPT_INS), LIMIT);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let w = writes(&hub);
    assert!(w.iter().any(|p| p.ends_with("config/set")), "{w:?}");
    assert!(w.iter().any(|p| p.ends_with("actuators/set")), "{w:?}");
}

/// Every bad input is refused with exit 2 (or its own code), one line naming
/// it, before the hub sees a single request.
// Linux: /proc, and /dev/stdout as a symbolic link (a device on macOS)
#[cfg(target_os = "linux")]
#[test]
fn bad_input_is_refused_before_the_hub_sees_a_request() {
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let a_dir = dir.path().display().to_string();
    let link = dir.path().join("stdout-link.json");
    std::os::unix::fs::symlink("/dev/stdout", &link).unwrap();
    let link = link.display().to_string();
    let same = dir.path().join("r.out").display().to_string();
    // The same file spelled another way.
    let same_too = dir.path().join(".").join("r.out").display().to_string();
    // Input files that would block or fill memory: a FIFO nobody writes,
    // a device, one over the size bound.
    let fifo = dir.path().join("plan.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", fifo.display());
    let fifo = fifo.display().to_string();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 5 << 20]).unwrap();
    let big = big.display().to_string();
    let sim_fifo = format!("--sim={fifo}");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["--report-json", "-"],
            2,
            "--report-json -: give a file name",
        ),
        (vec!["--junit", "-"], 2, "--junit -: give a file name"),
        (
            vec!["--report-json", "/dev/stdout"],
            2,
            "is a symbolic link",
        ),
        (vec!["--report-json", &link], 2, "is a symbolic link"),
        (vec!["--junit", "/dev/null"], 2, "is not a regular file"),
        (
            vec!["--junit", "/proc/x.xml"],
            2,
            "cannot create files in /proc",
        ),
        (vec!["--junit", &a_dir], 2, "is a directory"),
        (
            vec!["--report-json", &same, "--junit", &same],
            2,
            "give two files",
        ),
        (
            vec!["--report-json", &same, "--junit", &same_too],
            2,
            "give two files",
        ),
        (vec!["--plan", &fifo], 2, "not a regular file"),
        (vec!["--plan", "/dev/zero"], 2, "not a regular file"),
        (vec!["--plan", "/dev/stdin"], 2, "not a regular file"),
        (vec!["--plan", &big], 2, "larger than 4 MiB"),
        (vec![&sim_fifo], 2, "not a regular file"),
        (vec!["--retries", "12"], 2, "--retries"),
        (vec!["--device", &addr], 2, "give each hub once"),
        (vec!["no-such-scenario"], 6, "selected no scenario"),
        (
            vec!["--exact", "mac", "--skip", "mac"],
            6,
            "selected no scenario",
        ),
        (vec!["--sim=nope"], 2, "--sim=nope"),
        (vec!["--list", "--sim=nope"], 2, "--sim=nope"),
        (
            vec!["--list", "nothing-like-this"],
            6,
            "selected no scenario",
        ),
    ];
    for (extra, code, says) in cases {
        let o = harness_within(&fast_args(&addr, &extra), LIMIT);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{extra:?}: {}", text(&o));
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.contains("error: ") && first.contains(says),
            "{extra:?}: the first line names the input: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(hub.received().len(), 0, "{extra:?}: the hub saw a request");
    }
    // `--sim mac` is the simulator and a filter, not a profile named mac.
    let o = harness_within(&["--sim", "mac"], LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("running 1 test\ntest mac ... ok"), "{out}");
}

#[cfg(unix)] // symlinks, /proc, file modes, SIGPIPE semantics
#[test]
fn reports_are_0644_backups_stay_private() {
    use std::os::unix::fs::PermissionsExt;
    let hub = sim_with("hub-new-firmware", &[]);
    let addr = hub.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let junit = dir.path().join("run.xml");
    let (j, x) = (json.display().to_string(), junit.display().to_string());
    let files = ["--report-json", &j, "--junit", &x];
    let args = fast_args(
        &addr,
        &[&["--write-config", "config-round-trip"][..], &files].concat(),
    );
    let o = output_of(
        harness_cmd()
            .env("VEGEHUB_HARNESS_BACKUP_DIR", backups.path())
            .args(&args),
        LIMIT,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&json), 0o644);
    assert_eq!(mode(&junit), 0o644);
    let backup = std::fs::read_dir(backups.path())
        .unwrap()
        .next()
        .expect("a backup was written")
        .unwrap()
        .path();
    assert_eq!(mode(&backup), 0o600);
}

/// A hub of `profile`, its config before the run, and the harness started
/// against it with every opt-in and `extra`, stdout and stderr piped.
#[cfg(unix)]
fn changing_run(
    profile: &str,
    extra: &[&str],
) -> (SimHandle, serde_json::Value, std::process::Child) {
    let hub = sim_with(profile, &[]);
    let original = hub.config();
    let addr = hub.addr().to_string();
    let child = spawn_piped(
        harness_cmd()
            .args(["--device", &addr])
            .args(OPT_INS)
            .args(extra),
    );
    (hub, original, child)
}

/// The run stopped on a closed output (exit 141) and left `hub` clean:
/// every slot off and its config `original` again. `out` is shown on a
/// failure.
#[cfg(unix)]
fn stopped_clean(
    o: &std::process::Output,
    hub: &SimHandle,
    original: &serde_json::Value,
    out: &str,
) {
    assert_eq!(o.status.code(), Some(141), "{out}");
    let off = vec![0; hub.actuator_states().len()];
    assert_eq!(hub.actuator_states(), off, "a relay is on: {out}");
    assert_eq!(&hub.config(), original, "{out}");
}

/// `| head -3`: stdout closes after three lines. The run stops like on a
/// first Ctrl-C, what it changed is undone, and it exits 141, no panic.
#[cfg(unix)] // symlinks, /proc, file modes, SIGPIPE semantics
#[test]
fn a_closed_stdout_stops_the_run_quietly_with_exit_141() {
    let json = tempfile::tempdir().unwrap();
    let record = json.path().join("run.json");
    let record_arg = record.display().to_string();
    let args = [FAST, &["--report-json", &record_arg]].concat();
    let (hub, original, mut child) = changing_run("hub-new-firmware", &args);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    drop(lines);
    let o = output_within(child, LIMIT, "harness | head -3");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(seen[1], "running 6 tests");
    stopped_clean(&o, &hub, &original, &format!("{seen:?}\n{err}"));
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("standard output closed: stopping the run"),
        "{err}"
    );
    // The record says how the run ended.
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(r["exit_code"], 141, "{r}");
    assert_ne!(r["status"], "running", "{r}");
}

/// A closed stderr in the middle of switching relays (`-v` writes every
/// exchange there): the run stops at once, switches every slot off and
/// restores the config, verified, and exits 141.
#[cfg(unix)] // symlinks, /proc, file modes, SIGPIPE semantics
#[test]
fn a_closed_stderr_mid_change_leaves_the_hub_clean() {
    // Ons of 5 s: time to close stderr while one is on.
    let verbose = ["-v", "--on-seconds", "5"];
    let timeouts = ["--timeout", "3s", "--verify-timeout", "3s"];
    let args = [&verbose[..], &timeouts].concat();
    let (hub, original, mut child) = changing_run("hub-4-relay-ac", &args);
    let stderr = child.stderr.take().unwrap();
    assert!(
        hub.wait_state(Duration::from_secs(20), |s| s
            .actuator_states()
            .contains(&1)),
        "no slot switched on"
    );
    drop(stderr);
    let o = output_within(child, LIMIT, "harness with a closed stderr");
    let out = String::from_utf8_lossy(&o.stdout);
    stopped_clean(&o, &hub, &original, &out);
    assert!(
        out.contains("not run: interrupted by output closed"),
        "{out}"
    );
}

#[cfg(unix)]
mod on_a_terminal {
    use super::*;
    use crate::common::pty::{finish, spawn, Pty};

    /// The first status answer takes 1.5 s: long enough for a progress
    /// line.
    const SLOW_STATUS: [&str; 1] = ["delay:1500ms@actuators/status,times=1"];

    /// Run `s` to its end after its one question: the exit code is `code`
    /// and nothing was asked again. Its output.
    fn asked_once(s: &mut Pty, code: i32) -> String {
        let (out, got) = finish(s);
        assert_eq!(got, code, "{out}");
        let asked = out.matches("Allow this on").count();
        assert_eq!(asked, 1, "asked again: {out}");
        out
    }

    #[test]
    fn questions_name_the_hub_and_what_will_happen_and_re_ask() {
        // Old firmware keeps a name in its config.
        let hub = sim_with("hub-old-firmware", &[]);
        let addr = hub.addr().to_string();
        let mut s = spawn(&fast_args(&addr, &[]));
        // config-round-trip first: the hub named by its config name, MAC,
        // address and relays. What is shown, and the line typed after it.
        let hub_line = format!("Vege_1C_07 (MAC A1B2C3D41C07, {addr}, 1 relay):");
        let ask = "Allow this on Vege_1C_07?";
        let first_ask = "Allow this on Vege_1C_07? [y]es, [n]o, [a]ll hubs, none: ";
        let actuators = "actuators will switch each of its 1 relay(s) on for 2 s and off";
        for (shown, typed) in [
            (hub_line.as_str(), None),
            (
                "config-round-trip will write its config back unchanged",
                None,
            ),
            (first_ask, Some("yes please")),
            ("\"yes please\" is not an answer", None),
            (ask, Some("n")),
            (actuators, None),
            (ask, Some("y")),
            ("setup will write a test API key", None),
            (ask, Some("none")),
        ] {
            s.expect(shown).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
            if let Some(line) = typed {
                s.send_line(line).unwrap();
            }
        }
        let (out, code) = finish(&mut s);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("test actuators         ... ok"), "{out}");
        assert!(
            out.contains("test config-round-trip ... ignored (not allowed at the prompt (--write-config allows it): read the config only, wrote nothing)"),
            "{out}"
        );
        assert!(
            out.contains("test setup             ... ignored (not allowed at the prompt (--setup allows it))"),
            "{out}"
        );
        let w = writes(&hub);
        assert!(w.iter().all(|p| p.ends_with("actuators/set")), "{w:?}");
        assert!(!w.is_empty());
    }

    /// The README's question, word for word, from the binary.
    #[test]
    fn the_readme_question_is_what_the_binary_asks() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
        let after = readme
            .split("costs two read-only requests")
            .nth(1)
            .expect("the README section");
        let block = after
            .split("```text\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("the README example");
        let hub = sim_with("hub-old-firmware", &[]);
        let addr = hub.addr().to_string();
        let mut s = spawn(&["--device", &addr, "--exact", "actuators"]);
        s.expect("none: ").expect("the question");
        let shown = s.screen();
        s.send_line("n").unwrap();
        let (out, code) = finish(&mut s);
        assert_eq!(code, 0, "{out}");
        for line in block.lines() {
            let line = line.replace("127.0.0.1:8080", &addr);
            let line = line.trim_end().trim_end_matches("none:");
            assert!(
                shown.contains(line),
                "README line {line:?} not in:\n{shown}"
            );
        }
    }

    /// `a` answers for every hub of the run: the second hub is not asked.
    #[test]
    fn all_answers_for_every_hub_at_once() {
        let one = sim_with("hub-old-firmware", &[]);
        let two = sim_with("hub-new-firmware", &[]);
        let (a1, a2) = (one.addr().to_string(), two.addr().to_string());
        let mut s = spawn(&fast_args(&a1, &["--device", &a2, "--exact", "actuators"]));
        s.expect("Allow this on Vege_1C_07?").unwrap();
        s.send_line("a").unwrap();
        let out = asked_once(&mut s, 0);
        assert!(
            !out.contains("A1B2C3D4A620 (no name"),
            "second hub shown for a question: {out}"
        );
        let oks = out
            .lines()
            .filter(|l| l.contains("actuators") && l.ends_with("... ok"))
            .count();
        assert_eq!(oks, 2, "{out}");
        assert!(two
            .received()
            .iter()
            .any(|r| r.path.ends_with("actuators/set")));
    }

    /// Two hubs waiting at once: two progress lines, each padded to the
    /// terminal's full width so the terminal wraps the first onto its own
    /// row. Lifting them for a result line must erase only them: every
    /// result line is on the screen at the end.
    #[test]
    fn progress_for_two_hubs_at_once_erases_no_result_line() {
        let one = sim_with("hub-old-firmware", &SLOW_STATUS);
        let two = sim_with("hub-new-firmware", &SLOW_STATUS);
        let (a1, a2) = (one.addr().to_string(), two.addr().to_string());
        let mut s = spawn(&[
            "--device",
            &a1,
            "--device",
            &a2,
            "--timeout",
            "4s",
            "--exact",
            "actuator-status",
        ]);
        let (out, code) = finish(&mut s);
        assert_eq!(code, 0, "{out}");
        let raw = s.raw();
        for a in [&a1, &a2] {
            let wait = format!("waiting for {a}: answer to GET /api/actuators/status");
            assert!(raw.contains(&wait), "no progress line for {a}: {raw:?}");
        }
        for mac in ["A1B2C3D41C07", "A1B2C3D4A620"] {
            let line = format!("test [{mac}] actuator-status ... ok");
            assert!(out.lines().any(|l| l == line), "{line:?} erased:\n{out}");
        }
        assert!(!out.contains("waiting for"), "progress left behind:\n{out}");
    }

    /// Ctrl-C at a question: no more questions, nothing written, exit 130,
    /// without waiting for Enter. Ctrl-D (the end of input): no to this
    /// and every later question, the read-only scenarios still run.
    #[test]
    fn ctrl_c_or_ctrl_d_at_a_question_asks_nothing_more() {
        use expectrl::ControlCode::{EndOfText, EndOfTransmission};
        for (key, code, says) in [
            (EndOfText, 130, "SIGINT (Ctrl-C) received: stopping the run"),
            (EndOfTransmission, 0, "(no answer: not allowed)"),
        ] {
            let hub = sim_with("hub-new-firmware", &[]);
            let mut s = spawn(&fast_args(&hub.addr().to_string(), &[]));
            s.expect("Allow this on A1B2C3D4A620?").unwrap();
            s.send(key).unwrap();
            let out = asked_once(&mut s, code);
            assert!(out.contains(says), "{key:?}: {out}");
            assert_eq!(writes(&hub), Vec::<String>::new(), "{out}");
        }
    }

    /// Colour on a terminal, but none on a `TERM=dumb` one, which shows
    /// escape sequences as text.
    #[test]
    fn a_dumb_terminal_gets_no_escape_sequences() {
        for (term, coloured) in [("dumb", false), ("xterm", true)] {
            let mut cmd = crate::common::harness_cmd();
            cmd.env_remove("NO_COLOR")
                .env("TERM", term)
                .args(["--sim", "--exact", "mac"]);
            let mut s = crate::common::pty::spawn_cmd(cmd);
            let (out, code) = finish(&mut s);
            assert_eq!(code, 0, "{term}: {out}");
            assert_eq!(s.raw().contains('\x1b'), coloured, "{term}: {:?}", s.raw());
        }
    }

    #[test]
    fn nothing_is_asked_for_what_will_not_run() {
        let hub = sim_with("hub-new-firmware", &[]);
        let addr = hub.addr().to_string();
        let no_relays = sim_with("hub-battery-sensor", &[]);
        let no_relays = no_relays.addr().to_string();
        // A read-only filter, and a read-only plan: no question at all;
        // nor about relays on a hub that has none.
        let smoke = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/smoke.json");
        for (addr, extra) in [
            (&addr, &["--exact", "mac"][..]),
            (&addr, &["--plan", smoke]),
            (&addr, &["--actuators", "actuators"]),
            (&no_relays, &["--exact", "actuators"]),
        ] {
            let mut s = spawn(&fast_args(addr, extra));
            let (out, code) = finish(&mut s);
            assert_eq!(code, 0, "{extra:?}: {out}");
            assert!(!out.contains("Allow this"), "{extra:?}: {out}");
            assert!(out.contains("test result: ok."), "{extra:?}: {out}");
        }
    }

    #[test]
    fn long_waits_show_progress_and_notes_never_split_a_result_line() {
        // The status answer takes 1.5 s: the wait shows, with its deadline.
        let hub = sim_with("hub-new-firmware", &SLOW_STATUS);
        let addr = hub.addr().to_string();
        let mut s = spawn(&[
            "--device",
            &addr,
            "--timeout",
            "4s",
            "--write-config",
            "-v",
            "actuator-status",
        ]);
        s.expect(format!("waiting for {addr}: answer to GET /api/actuators/status: 1.").as_str())
            .unwrap();
        s.expect("s of 4.0s").unwrap();
        let (out, code) = finish(&mut s);
        assert_eq!(code, 0, "{out}");
        // With -v every exchange is a note; each result line is whole.
        for l in out
            .lines()
            .filter(|l| l.starts_with("test ") && !l.starts_with("test result"))
        {
            assert!(
                l.ends_with(" ok") || l.ends_with("FAILED") || l.contains("... ignored ("),
                "a split result line: {l:?} in\n{out}"
            );
        }
        assert!(out.contains("-> 200"), "no -v exchange: {out}");
    }
}

/// The `[default: …]` `help` shows for `flag`, within its own entry.
fn default_in_help(help: &str, flag: &str) -> Option<String> {
    let entry = &help[help.find(&format!("{flag} <"))?..];
    let entry = &entry[..entry[2..].find("\n      -").map_or(entry.len(), |i| i + 2)];
    let at = entry.find("[default: ")? + "[default: ".len();
    entry[at..].split(']').next().map(str::to_owned)
}

#[test]
fn help_shows_each_default_as_the_constant_the_run_uses() {
    use vegehub_harness::device::duration::FlagDuration;
    use vegehub_harness::session;
    let shown = |f: std::time::Duration| FlagDuration(f).to_string();
    let help = text(&harness_within(&["--help"], LIMIT));
    for (flag, want) in [
        (
            "--close-timeout",
            shown(session::ledger::DEFAULT_CLOSE_DEADLINE),
        ),
        (
            "--discover-timeout",
            shown(vegehub_harness::discovery::DEFAULT_TIMEOUT),
        ),
        (
            "--connect-timeout",
            shown(session::client::DEFAULT_CONNECT_TIMEOUT),
        ),
        (
            "--max-on-seconds",
            session::actuator_limit::DEFAULT_MAX_ON_SECONDS.to_string(),
        ),
    ] {
        assert_eq!(default_in_help(&help, flag), Some(want), "{flag}:\n{help}");
    }
    let help = text(&harness_within(&["discover", "--help"], LIMIT));
    assert_eq!(
        default_in_help(&help, "--timeout"),
        Some(shown(vegehub_harness::discovery::DEFAULT_TIMEOUT)),
        "{help}"
    );
}

#[test]
fn help_is_our_own_and_completions_and_man_page_come_from_it() {
    let o = harness_within(&["--help"], LIMIT);
    let help = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    for libtest in ["Usefull", "Json output", "tests are run on serially"] {
        assert!(
            !help.contains(libtest),
            "libtest-mimic's text in --help: {libtest}"
        );
    }
    for flag in [
        "--write-config",
        "--actuators",
        "--setup",
        "--format",
        "--color",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef vegehub-harness"),
        ("fish", "complete -c vegehub-harness"),
    ] {
        let o = harness_within(&["completions", shell], LIMIT);
        let script = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(script.contains(marker), "{shell}: {script:.200}");
        assert!(script.contains("write-config"), "{shell}: flags missing");
    }
    let o = harness_within(&["man"], LIMIT);
    let page = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        page.starts_with(".ie") && page.contains(".TH vegehub-harness 1"),
        "{page:.300}"
    );
    assert!(page.contains("write\\-config"), "{page:.300}");
    let o = harness_within(&["completions", "tcsh"], LIMIT);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

crate::netns_test! {
    /// Inside a namespace with no system mDNS (no responder for the
    /// system's resolver to ask), a `.local` name is found by the
    /// harness's own mDNS query, shown with -v; a name nobody answers for
    /// is said, and the hub is unreachable (exit 4).
    fn a_local_name_the_system_cannot_resolve_is_found_over_mdns() {
        let sim = crate::common::SimProcess::start(&["--advertise", "--profile", "hub-old-firmware"]);
        let port: u16 = sim.url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap();
        // The system resolver cannot.
        assert!(
            std::net::ToSocketAddrs::to_socket_addrs(&("Vege_1C_07.local", port)).is_err(),
            "the system resolved the name: this namespace has system mDNS"
        );
        let device = format!("vege_1c_07.local:{port}");
        let o = crate::common::harness(&["--device", &device, "-v", "--exact", "mac"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(0), "{out}");
        assert!(out.contains("test mac ... ok"), "{out}");
        assert!(
            out.contains("vegehub-harness: vege_1c_07.local: the system resolver could not resolve it (")
                && out.contains("); over mDNS: 127.0.0.1 in "),
            "{out}"
        );
        // Flip: no hub answers for this name.
        let device = format!("nobody_here.local:{port}");
        let o = crate::common::harness(&["--device", &device, "--discover-timeout", "0.5", "--exact", "mac"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(4), "{out}");
        assert!(out.contains("nobody_here.local: the system resolver could not resolve it"), "{out}");
        assert!(out.contains("not over mDNS either: no answer within 0.5 s"), "{out}");
        let (code, _) = sim.terminate();
        assert_eq!(code, Some(0));
    }
}

crate::netns_test! {
    /// The run's no-hub hint names the run's own flag.
    fn no_hub_found_hints_at_discover_timeout() {
        let o = crate::common::harness(&["--discover-timeout", "0.5", "mac"]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(4), "{out}");
        assert!(out.contains("Try a longer --discover-timeout,"), "{out}");
    }
}

/// A hub that refuses a request (4xx) is not asked again: cleanup gives up
/// on it at once and says so; a server error (5xx) is retried (the flip).
#[test]
fn a_refused_cleanup_request_is_not_retried() {
    let sets = |code: u16| {
        let fault = format!("status:{code}@config/set,after=1");
        let hub = sim_with("hub-new-firmware", &[fault.as_str()]);
        let addr = hub.addr().to_string();
        let o = crate::common::harness(&["--device", &addr, "--setup", "--exact", "setup"]);
        let n = hub
            .received()
            .iter()
            .filter(|r| r.path.ends_with("config/set"))
            .count();
        (o, n)
    };
    let (o, refused) = sets(400);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(5), "{out}");
    assert!(
        out.contains("http status 400 (refused by the hub: not retried)"),
        "{out}"
    );
    // The test settings, the scenario's restore, the run's cleanup: once each.
    assert_eq!(refused, 3, "{out}");
    let (o, failed) = sets(500);
    assert_eq!(o.status.code(), Some(5), "{}", text(&o));
    assert!(failed > refused, "a 5xx is retried: {failed} config/set");
}

/// A `--timeout` too short for the hub fails scenarios, never the undo:
/// cleanup's requests run on cleanup's own clock (3 s an attempt), so the
/// relays are verified off (exit 1, not 5). Status answers take 300 ms
/// against a 100 ms `--timeout`.
#[test]
fn a_timeout_too_short_for_the_hub_still_leaves_it_as_found() {
    let hub = sim_with("hub-new-firmware", &["delay:300ms@actuators/status"]);
    let addr = hub.addr().to_string();
    let args = [
        "--timeout",
        "100ms",
        "--verify-timeout",
        "1s",
        "--on-seconds",
        "2",
    ];
    let extra = ["--actuators", "--exact", "actuators"];
    let o = crate::common::harness(&[&["--device", addr.as_str()][..], &args, &extra].concat());
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("run cleanup: verified: slot(s) [0, 1] off"),
        "{out}"
    );
    assert_eq!(hub.actuator_states(), [0, 0], "{out}");
}
