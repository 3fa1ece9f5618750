//! `vegehub-harness sim` as a real process: the URL as the first stdout
//! line, answers like a hub, the connections line on SIGTERM, and one-line
//! errors with exit code 2 for bad input.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_vegehub-harness");

/// A running `sim` process with its stdout lines arriving on a channel.
pub struct SimProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    pub url: String,
}

impl SimProcess {
    pub fn start(args: &[&str]) -> SimProcess {
        let mut child = Command::new(BIN)
            .arg("sim")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let url = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("no URL on stdout within 10 s");
        SimProcess { child, lines, url }
    }

    /// The simulator's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM and wait (with a deadline) for the exit; returns the
    /// exit code and the remaining stdout lines.
    pub fn terminate(self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let (tx, rx) = mpsc::channel();
        let mut child = self.child;
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("sim did not exit within 10 s of SIGTERM")
            .unwrap();
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (status.code(), rest)
    }
}

fn run_to_end(args: &[&str]) -> Output {
    let (tx, rx) = mpsc::channel();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let _ = tx.send(Command::new(BIN).arg("sim").args(args).output());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("sim did not exit within 10 s")
        .unwrap()
}

#[tokio::test]
async fn sim_prints_its_url_answers_like_an_old_hub_and_reports_connections() {
    let sim = SimProcess::start(&["--profile", "hub-old-firmware"]);
    assert!(sim.url.starts_with("http://127.0.0.1:"), "{}", sim.url);
    // What `curl -d '{"hub":[],"api_key":[],"endpoints":[]}' URL/api/config/get`
    // sends: a form content type, which the hub ignores.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answer: Value = http
        .post(format!("{}/api/config/get", sim.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"hub":[],"api_key":[],"endpoints":[]}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<_> = answer.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["hub", "api_key", "endpoints", "error"]);
    assert_eq!(answer["endpoints"], json!(null));
    assert_eq!(answer["error"], 0);
    assert!(answer["api_key"].is_string());
    assert!(answer["hub"]["server_url"].is_string());

    // The client's pooled connection is still open when the signal arrives.
    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(rest, ["connections: accepted 1, open at shutdown 1"]);
    drop(http);
}

#[test]
fn sim_with_nothing_connected_reports_zero() {
    let sim = SimProcess::start(&[]);
    let (code, rest) = sim.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(rest, ["connections: accepted 0, open at shutdown 0"]);
}

fn assert_one_line_usage_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "printed a URL for a failed start");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr:?} should name {needle:?}");
}

#[test]
fn unknown_or_malformed_profile_is_a_one_line_error_with_exit_2() {
    let out = run_to_end(&["--profile", "hub-nonexistent"]);
    assert_one_line_usage_error(&out, "hub-nonexistent");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad-hub.json");
    std::fs::write(&bad, "{\"name\": ").unwrap();
    let out = run_to_end(&["--profile", bad.to_str().unwrap()]);
    assert_one_line_usage_error(&out, bad.to_str().unwrap());
}

#[test]
fn bad_fault_spec_is_a_one_line_error_with_exit_2() {
    let out = run_to_end(&["--fault", "drop", "--fault", "status:9000@info/get"]);
    assert_one_line_usage_error(&out, "status:9000@info/get");
}

#[test]
fn bind_failure_is_a_one_line_error_with_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run_to_end(&["--bind", &addr]);
    assert_one_line_usage_error(&out, &addr);
}

fn harness_to_end(args: &[&str]) -> Output {
    let (tx, rx) = mpsc::channel();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || {
        let _ = tx.send(Command::new(BIN).args(args).output());
    });
    rx.recv_timeout(Duration::from_secs(15))
        .expect("vegehub-harness did not exit within 15 s")
        .unwrap()
}

crate::netns_test! {
    fn sim_advertise_registers_the_profile_and_unregisters_on_sigterm() {
        let sim = SimProcess::start(&["--profile", "hub-battery-sensor", "--advertise"]);
        let port: u16 = sim.url.rsplit(':').next().unwrap().parse().unwrap();
        let out = harness_to_end(&["discover", "--expect", "1", "--timeout", "5", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        let hub = &doc["hubs"][0];
        // The profile's own hub name, as a user-named real hub announces it.
        assert_eq!(hub["instance"], "Desk_Temp_Soil");
        assert_eq!(hub["port"], port);
        assert_eq!(hub["addresses"][0]["ip"], "127.0.0.1");
        let txt = &hub["txt"];
        assert_eq!(txt["version"], "5.1.1");
        assert_eq!(txt["type"], "hub");
        assert_eq!(txt["sensors"], "2");
        assert_eq!(txt["actuators"], "0");
        assert_eq!(txt["sens_1"], "Soil");
        assert_eq!(txt["sens_2"], "Temp");
        assert_eq!(txt["power_mode"], "1");

        let (code, rest) = sim.terminate();
        assert_eq!(code, Some(0));
        assert_eq!(rest, ["connections: accepted 0, open at shutdown 0"]);
        // The goodbye on shutdown is checked in
        // discovery::simulator_advertises_its_profile_and_says_goodbye.
    }
}

#[test]
fn sim_help_documents_every_fault_kind() {
    let out = Command::new(BIN).args(["sim", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for kind in [
        "status:CODE",
        "delay:DUR",
        "hang",
        "drop",
        "malformed",
        "conn-close",
        "ignore-set",
        "stuck-off[:SLOT]",
        "stuck-on[:SLOT]",
        "max-conns:N",
        "reboot-after:N",
        "after=N",
        "times=N",
    ] {
        assert!(help.contains(kind), "--help lacks {kind}:\n{help}");
    }
}

#[test]
fn sim_stops_on_sigint_too() {
    let sim = SimProcess::start(&["--profile", "hub-4-relay-ac"]);
    let status = Command::new("kill")
        .args(["-INT", &sim.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (tx, rx) = mpsc::channel();
    let SimProcess {
        mut child, lines, ..
    } = sim;
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("sim did not exit within 10 s of SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(5)).unwrap(),
        "connections: accepted 0, open at shutdown 0"
    );
}
