//! The harness run through the real binary against the simulated hub:
//! every verdict seen flipping when the hub misbehaves, exit codes asserted,
//! and the simulator's state checked afterwards.

use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Fast settings for a simulated hub: relays follow at once.
const FAST: &[&str] = &[
    "--timeout",
    "2s",
    "--verify-timeout",
    "1s",
    "--on-seconds",
    "2",
];

/// Run the harness binary with `args`; the run must end within `limit`.
fn harness(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_vegehub-harness"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("harness starts");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("harness output"),
        Err(_) => {
            // Only the child this test started, by its id.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("harness did not end within {limit:?}: {args:?}");
        }
    }
}

fn device_args<'a>(hub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--device", hub];
    v.extend_from_slice(FAST);
    v.extend_from_slice(extra);
    v
}

fn text(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

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

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn a_closed_port_is_exit_4() {
    let port = closed_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let o = harness(&device_args(&addr, &[]), LIMIT);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out}");
    assert!(out.contains("unreachable"), "{out}");
    assert!(line(&out, "info").contains("hub unreachable"), "{out}");
}

#[test]
fn no_target_is_exit_2_and_says_what_to_pass() {
    let o = harness(&[], LIMIT);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--device") && err.contains("--sim"), "{err}");
    assert_eq!(err.lines().count(), 1, "one-line error: {err}");
}

#[test]
fn list_names_the_plan_and_contacts_nothing() {
    let o = harness(&["--list", "--device", "127.0.0.1:9"], LIMIT);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    let names: Vec<&str> = out.lines().map(|l| l.trim_end_matches(": test")).collect();
    assert_eq!(
        names,
        [
            "mac",
            "info",
            "actuator-status",
            "config-round-trip",
            "actuators",
            "setup"
        ]
    );
}
