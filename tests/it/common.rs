//! The one home of the integration tests' helpers: running the real binary
//! (always with a deadline), simulated hubs in-process, through the router
//! and as a `sim` process, and the report files. Test modules import
//! helpers from here only (`netns` holds the network-namespace helpers,
//! `pty` the binary on a pseudo-terminal, `proxy` the raw-TCP fault proxy
//! for HTTP framing faults, `mdns_raw` a responder sending exactly the
//! records it is given).

pub mod mdns_raw;
pub mod netns;
pub mod proxy;
#[cfg(unix)]
pub mod pty;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use serde_json::{json, Value};
use tower::ServiceExt;
use vegehub_harness::device::Mac;
use vegehub_harness::sim::advertise::Advertisement;
use vegehub_harness::sim::{
    self, app, ConnStats, FaultSpec, Profile, SimHandle, SimOptions, SimState,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_vegehub-harness");

/// Fast settings for a simulated hub: short timeouts, relays on briefly.
pub const FAST: &[&str] = &[
    "--timeout",
    "2s",
    "--verify-timeout",
    "1s",
    "--on-seconds",
    "2",
];

/// The scenarios of the built-in default plan, in its order.
pub const DEFAULT_SCENARIOS: [&str; 6] = [
    "mac",
    "info",
    "actuator-status",
    "config-round-trip",
    "actuators",
    "setup",
];

/// How long one run of the binary may take before the test fails.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Where the harness binary keeps config backups in tests: a temporary
/// directory of this test process, never the user's state directory.
pub fn backup_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for backups"))
        .path()
}

/// The harness binary with no colour and test-local backups.
pub fn harness_cmd() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("NO_COLOR", "1")
        .env("VEGEHUB_HARNESS_BACKUP_DIR", backup_dir());
    cmd
}

/// Start `cmd` with stdin closed and stdout and stderr piped; finish it
/// with [`output_within`].
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Run `cmd` to its end (stdin closed, stdout and stderr captured) within
/// `limit`.
pub fn output_of(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    output_within(spawn_piped(cmd), limit, &what)
}

/// The harness with `args`, run to its end within `limit`.
pub fn harness_within(args: &[&str], limit: Duration) -> Output {
    output_of(harness_cmd().args(args), limit)
}

/// The harness with `args`, run to its end within [`LIMIT`].
pub fn harness(args: &[&str]) -> Output {
    harness_within(args, LIMIT)
}

/// The harness against `hub` (`--device <its address>`, then `extra`)
/// within [`LIMIT`]: its exit code, and stdout then stderr as text.
pub fn run_on(hub: &SimHandle, extra: &[&str]) -> (Option<i32>, String) {
    let addr = hub.addr().to_string();
    let o = harness(&[&["--device", addr.as_str()], extra].concat());
    (o.status.code(), text(&o))
}

/// `--device <addr>`, the [`FAST`] settings, then `extra`: the arguments
/// of a quick run against one hub.
pub fn fast_args<'a>(addr: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    [&["--device", addr][..], FAST, extra].concat()
}

/// The harness against `addr` (a hub or a proxy in front of one) with the
/// [`FAST`] settings and `extra`, within [`LIMIT`].
pub fn run_at(addr: std::net::SocketAddr, extra: &[&str]) -> Output {
    harness(&fast_args(&addr.to_string(), extra))
}

/// Requests `hub` received on `path`.
pub fn received(hub: &SimHandle, path: &str) -> usize {
    hub.state()
        .received()
        .iter()
        .filter(|r| r.path == path)
        .count()
}

/// [`run_on`] with the [`FAST`] settings before `extra`, which ends with
/// `code`: stdout then stderr as text.
pub fn run_fast(hub: &SimHandle, extra: &[&str], code: i32) -> String {
    let (got, out) = run_on(hub, &[FAST, extra].concat());
    assert_eq!(got, Some(code), "{extra:?}:\n{out}");
    out
}

/// The scenarios `--list` names with `args` (exit 0, every stdout line a
/// `<name>: test`), in order.
pub fn listed(args: &[&str]) -> Vec<String> {
    let o = harness(&[args, &["--list"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            l.strip_suffix(": test")
                .unwrap_or_else(|| panic!("not a listed test: {l:?}\n{}", text(&o)))
                .to_string()
        })
        .collect()
}

/// stdout, then stderr, as text (for assertion messages and searches).
pub fn text(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `hay` holds every one of `needles`; a failure names the missing one and
/// shows `hay`.
pub fn assert_has(hay: &str, needles: &[&str]) {
    for n in needles {
        assert!(hay.contains(n), "{n:?} not in:\n{hay}");
    }
}

/// Characters a terminal acts on, which no output of the harness may carry
/// raw: ESC, BEL, CR, a C1 CSI (U+009B) and a right-to-left override
/// (U+202E).
pub const TERMINAL_CONTROLS: &[&str] = &["\x1b", "\x07", "\r", "\u{9b}", "\u{202e}"];

/// `hay` holds none of `needles`; a failure names the one found and shows
/// `hay`.
pub fn assert_lacks(hay: &str, needles: &[&str]) {
    for n in needles {
        assert!(!hay.contains(n), "{n:?} found in:\n{hay}");
    }
}

/// The run ended with `code` and its output (stdout then stderr) names
/// every one of `needles`; that output as text.
pub fn ended(o: &Output, code: i32, needles: &[&str]) -> String {
    let out = text(o);
    assert_eq!(o.status.code(), Some(code), "{out}");
    assert_has(&out, needles);
    out
}

/// No line of `out` is 1 KiB or longer: hub text quoted in a message is
/// cut, however long the hub made it.
pub fn lines_are_short(out: &str) {
    for line in out.lines() {
        assert!(line.len() < 1024, "a {}-byte line:\n{line}", line.len());
    }
}

/// The run failed with `code` and exactly one stderr line naming `needles`.
pub fn one_line_error(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

/// The harness as a user runs it: backups in the (test-local) per-user
/// state directory rather than a given backup dir.
pub fn user_cmd() -> Command {
    let mut c = Command::new(BIN);
    // Never touch the real per-user state directory from a test.
    c.env(
        "XDG_STATE_HOME",
        std::env::temp_dir().join("vegehub-harness-it-state"),
    );
    c.env_remove("VEGEHUB_HARNESS_BACKUP_DIR");
    c
}

/// `restore <path> <extra>` as a user runs it, within [`LIMIT`].
pub fn restore(path: &Path, extra: &[&str]) -> Output {
    output_of(user_cmd().arg("restore").arg(path).args(extra), LIMIT)
}

/// The backup files (`*.json`) in `dir`.
#[cfg_attr(not(unix), allow(dead_code))] // used by Unix-only tests
pub fn backups_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect()
        })
        .unwrap_or_default()
}

/// Send `SIG<sig>` with kill(1) to `child`, a process this test started,
/// by its id.
pub fn send_signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .expect("kill(1) runs");
    assert!(status.success(), "kill -{sig} {pid}");
}

/// Wait for a child with a deadline; kill it (only it, by its id) if it
/// overruns, and fail the test naming `what`.
pub fn output_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.expect("child output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not end within {limit:?}");
        }
    }
}

/// Fault specs as on the command line, parsed.
pub fn faults(specs: &[&str]) -> Vec<FaultSpec> {
    specs
        .iter()
        .map(|f| f.parse::<FaultSpec>().unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// A simulated hub from a built-in profile with `faults` (fault specs as on
/// the command line), on its own thread and runtime, ready on return.
pub fn sim_with(name: &str, specs: &[&str]) -> SimHandle {
    let mut opts = SimOptions::new(profile(name));
    opts.faults = faults(specs);
    sim::start_with(opts).expect("simulator starts")
}

/// A simulated hub from a built-in profile's fixture file after `edit`
/// (a hub with values no built-in profile has: a 4 KiB version, an
/// endpoint id at i64::MAX), ready on return.
pub fn sim_edited(profile: &str, edit: impl FnOnce(&mut Value)) -> SimHandle {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/{profile}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut doc: Value = serde_json::from_str(&text).expect("the fixture is JSON");
    edit(&mut doc);
    let profile =
        Profile::parse(&doc.to_string(), &path, profile).unwrap_or_else(|e| panic!("{e}"));
    sim::start_with(SimOptions::new(profile)).expect("simulator starts")
}

/// Wait, woken by the simulator's own state changes, until `pred` holds
/// for the hub's state; fail naming `what` after [`LIMIT`].
#[cfg_attr(not(unix), allow(dead_code))] // used by Unix-only tests
pub fn wait_hub(hub: &SimHandle, what: &str, pred: impl Fn(&SimState) -> bool) {
    assert!(
        hub.wait_state(LIMIT, pred),
        "not seen within {LIMIT:?}: {what}"
    );
}

/// Wait (up to 5 s, woken by the hub's connection events) until `pred`
/// holds for `hub`'s connection stats; fail naming `what` and the stats.
pub async fn conns_reach(hub: &SimHandle, what: &str, pred: impl Fn(&ConnStats) -> bool) {
    assert!(
        hub.wait_until(Duration::from_secs(5), pred).await,
        "{what}: {:?}",
        hub.stats()
    );
}

/// Let `ms` of paused tokio time pass, and the timers it fires run.
pub async fn elapse(ms: u64) {
    tokio::time::advance(Duration::from_millis(ms)).await;
    tokio::task::yield_now().await;
}

/// What a hub `instance` with `mac` announces over mDNS: port `port` on
/// 127.0.0.1, firmware 5.1.1, one sensor, two actuators (tests change
/// what they need).
pub fn advertisement(mac: &str, instance: &str, port: u16) -> Advertisement {
    Advertisement {
        mac: Mac::parse(mac).expect("test MAC"),
        instance: Some(instance.to_owned()),
        port,
        addrs: vec!["127.0.0.1".parse().unwrap()],
        version: "5.1.1".into(),
        sensors: vec!["Sensor1".into()],
        actuators: 2,
        power_mode: 0,
    }
}

/// A built-in hub profile.
pub fn profile(name: &str) -> Profile {
    Profile::load(name).unwrap_or_else(|e| panic!("{e}"))
}

/// Every section a hub's config may hold, for reading whole documents.
pub const ALL_SECTIONS: &str = r#"{"hub":[],"api_key":[],"endpoints":[],"sensors":[],"actuators":[],"schedules":[],"web_conditions":[],"schedule_overrides":[]}"#;

/// The simulator's router for a profile, no socket.
pub fn router(name: &str) -> (Router, SimState) {
    router_with(name, &[])
}

/// The simulator's router for a profile with `specs` (fault specs as on
/// the command line), no socket.
pub fn router_with(name: &str, specs: &[&str]) -> (Router, SimState) {
    let state = SimState::new(profile(name), faults(specs));
    (app(state.clone()), state)
}

/// One request through the router: status and body (JSON when it parses,
/// else a JSON string of the raw text).
pub async fn call(app: &Router, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub async fn post(app: &Router, path: &str, body: &str) -> (StatusCode, Value) {
    call(app, Method::POST, path, body).await
}

pub async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    call(app, Method::GET, path, "").await
}

/// `actuators/set` through the router: slot `target` to `state` for
/// `duration` seconds.
pub async fn set_actuator(app: &Router, target: i64, duration: u64, state: u8) -> StatusCode {
    let body = json!({"target": target, "duration": duration, "state": state});
    post(app, "/api/actuators/set", &body.to_string()).await.0
}

/// An HTTP client for a simulated hub on a real socket.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Send `req` and read its answer as JSON.
pub async fn json_answer(req: reqwest::RequestBuilder) -> Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// The report files of one run in a directory of the test's own.
pub struct ReportFiles {
    pub dir: tempfile::TempDir,
}

impl ReportFiles {
    pub fn new() -> ReportFiles {
        ReportFiles {
            dir: tempfile::tempdir().expect("a temp dir for reports"),
        }
    }

    pub fn json_path(&self) -> std::path::PathBuf {
        self.dir.path().join("run.json")
    }

    pub fn junit_path(&self) -> std::path::PathBuf {
        self.dir.path().join("junit.xml")
    }

    pub fn html_path(&self) -> std::path::PathBuf {
        self.dir.path().join("report.html")
    }

    /// `--report-json`, `--junit` and `--report-html` into this directory.
    pub fn args(&self) -> Vec<String> {
        let p = |p: std::path::PathBuf| p.display().to_string();
        vec![
            "--report-json".into(),
            p(self.json_path()),
            "--junit".into(),
            p(self.junit_path()),
            "--report-html".into(),
            p(self.html_path()),
        ]
    }

    pub fn record(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.json_path()).expect("the run record was written");
        serde_json::from_str(&text).expect("the run record is JSON")
    }

    pub fn junit(&self) -> String {
        std::fs::read_to_string(self.junit_path()).expect("the JUnit file was written")
    }

    /// The JUnit file, checked against the schema ([`validate_junit`]).
    pub fn valid_junit(&self) -> String {
        validate_junit(&self.junit_path());
        self.junit()
    }

    pub fn html(&self) -> String {
        std::fs::read_to_string(self.html_path()).expect("the HTML report was written")
    }
}

/// Validate a JUnit file against the JUnit 10 schema Jenkins' xunit plugin
/// uses (ci/junit-10.xsd), with xmllint (Debian's libxml2-utils, installed
/// by .ci/run).
pub fn validate_junit(path: &Path) {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/junit-10.xsd");
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "xmllint not runnable ({e}): install libxml2-utils (apt-get install libxml2-utils)"
            )
        });
    assert!(
        out.status.success(),
        "{} is not valid against the JUnit 10 schema:\n{}\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

/// A running harness whose stderr lines can be waited for.
pub struct Spawned {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stdout_reader: Option<std::thread::JoinHandle<()>>,
}

impl Spawned {
    /// Start the harness (see [`harness_cmd`]) with piped stdout and stderr;
    /// stdout is read to the end unless `own_stdout` (the test then reads
    /// or closes `child.stdout` itself).
    pub fn start(args: &[String], own_stdout: bool) -> Spawned {
        let mut cmd = harness_cmd();
        cmd.args(args);
        Spawned::spawn(cmd, own_stdout)
    }

    /// Start the harness with `args` and its backups in `backups`; stdout
    /// is read to the end.
    #[cfg_attr(not(unix), allow(dead_code))] // used by Unix-only tests
    pub fn with_backups(args: &[&str], backups: &Path) -> Spawned {
        let mut cmd = harness_cmd();
        cmd.args(args).env("VEGEHUB_HARNESS_BACKUP_DIR", backups);
        Spawned::spawn(cmd, false)
    }

    /// Start `cmd` (built from [`harness_cmd`], adjusted by the test);
    /// stdout is read to the end.
    #[cfg_attr(not(unix), allow(dead_code))] // used by Unix-only tests
    pub fn with_cmd(cmd: Command) -> Spawned {
        Spawned::spawn(cmd, false)
    }

    fn spawn(mut cmd: Command, own_stdout: bool) -> Spawned {
        let mut child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("harness starts");
        let (tx, lines) = mpsc::channel();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (err, e2) = (child.stderr.take().expect("stderr piped"), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                e2.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout_reader = (!own_stdout).then(|| {
            use std::io::Read;
            let (mut out, o2) = (child.stdout.take().expect("stdout piped"), stdout.clone());
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                o2.lock().unwrap().push_str(&s);
            })
        });
        Spawned {
            child,
            lines,
            stderr,
            stdout,
            stdout_reader,
        }
    }

    /// Wait for a stderr line containing `needle`. (Only the signal tests,
    /// Unix-only, wait for a line.)
    #[cfg_attr(not(unix), allow(dead_code))]
    pub fn wait_line(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "no stderr line with {needle:?} within {limit:?}:\n{}",
                    self.stderr.lock().unwrap()
                ),
            }
        }
    }

    /// Send `sig` to the child this test started, by its id.
    #[cfg(unix)]
    pub fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child process, by its id.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill({sig})");
    }

    /// Wait for the exit within `limit`; the exit code, and stdout then
    /// stderr as text.
    pub fn finish(self, limit: Duration) -> (Option<i32>, String) {
        let pid = self.child.id();
        let (tx, rx) = mpsc::channel();
        let mut child = self.child;
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(limit) {
            Ok(s) => s.expect("exit status"),
            Err(_) => {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                panic!(
                    "harness did not exit within {limit:?}:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
        };
        // stderr closes with the process; wait for its reader to drain.
        let deadline = std::time::Instant::now() + limit;
        while self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
        {}
        if let Some(r) = self.stdout_reader {
            let _ = r.join();
        }
        let text = format!(
            "{}\n--- stderr ---\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        );
        (status.code(), text)
    }
}

/// A running `sim` process with its stdout lines arriving on a channel;
/// killed (by its id) if the test drops it without stopping it.
pub struct SimProcess {
    child: Option<Child>,
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
        SimProcess {
            child: Some(child),
            lines,
            url,
        }
    }

    /// The next stdout line (after the URL) within `limit` (`sim --count`
    /// prints one line per hub).
    pub fn next_line(&self, limit: Duration) -> String {
        self.lines
            .recv_timeout(limit)
            .unwrap_or_else(|_| panic!("sim printed no further line within {limit:?}"))
    }

    /// Send SIGTERM and wait (with a deadline) for the exit; returns the
    /// exit code and the remaining stdout lines.
    pub fn terminate(self) -> (Option<i32>, Vec<String>) {
        self.stop("TERM")
    }

    /// Send `SIG<sig>` and wait (with a deadline) for the exit; returns the
    /// exit code and the remaining stdout lines.
    pub fn stop(mut self, sig: &str) -> (Option<i32>, Vec<String>) {
        let mut child = self.child.take().expect("running");
        send_signal(&child, sig);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("sim did not exit within 10 s of SIG{sig}"))
            .unwrap();
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        (status.code(), rest)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A shipped hub profile's file (`fixtures/NAME.json`).
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.json"))
}

/// Define a test that runs on Linux only; elsewhere it is listed as
/// ignored with `reason`, so it never silently passes.
#[macro_export]
macro_rules! linux_test {
    ($reason:literal, $(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[test]
        #[cfg_attr(not(target_os = "linux"), ignore = $reason)]
        fn $name() $body
    };
}

/// Define a test that drives the public clients of the compatibility
/// venv ([`compat_python`]), which ci/test.sh makes on Linux.
#[macro_export]
macro_rules! compat_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $crate::linux_test! {
            "the compatibility venv is made by ci/test.sh (Linux)",
            $(#[$meta])* fn $name() $body
        }
    };
}

/// The Python of the compatibility venv, `target/compat-venv`, which holds
/// the public clients of `ci/compat-requirements.txt` (made by
/// `ci/compat-venv.sh`, which `ci/test.sh` runs). When it is missing the
/// test fails naming that command; it never skips.
pub fn compat_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compat-venv");
    let py = if cfg!(windows) {
        venv.join("Scripts/python.exe")
    } else {
        venv.join("bin/python")
    };
    assert!(
        py.exists(),
        "{} is missing: run `ci/compat-venv.sh` (ci/test.sh runs it) to install the \
         pinned public clients the compatibility tests drive (ci/compat-requirements.txt)",
        py.display()
    );
    py
}

/// `tests/compat/SCRIPT` under the compatibility venv's Python.
pub fn compat_cmd(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(compat_python());
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/compat")
            .join(script),
    )
    .args(args)
    .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// Run a compatibility script to its end within `limit`.
pub fn compat_run(script: &str, args: &[&str], limit: Duration) -> Output {
    output_of(&mut compat_cmd(script, args), limit)
}

/// A long-running compatibility script (the python-zeroconf responder):
/// stdout lines on a channel, stdin open until [`CompatProcess::finish`];
/// killed (by its id) if the test drops it.
pub struct CompatProcess {
    child: Option<Child>,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl CompatProcess {
    pub fn start(script: &str, args: &[&str]) -> CompatProcess {
        let mut child = compat_cmd(script, args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        CompatProcess {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait for the stdout line `want`; fail with what was printed.
    pub fn wait_line(&mut self, want: &str, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l == want => return,
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "no line {want:?} within {limit:?}; printed: {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Close stdin (the script's cue to end) and wait for its exit code.
    pub fn finish(mut self, limit: Duration) -> Option<i32> {
        drop(self.stdin.take());
        let child = self.child.take().expect("running");
        output_within(child, limit, "compat script").status.code()
    }
}

impl Drop for CompatProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Read `path` (a file another process rewrites, such as a report while
/// the run goes on) until `pred` holds for its text or `limit` passes;
/// whether it held.
pub fn wait_file(path: &Path, limit: Duration, pred: impl Fn(&str) -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    loop {
        if std::fs::read_to_string(path).is_ok_and(|t| pred(&t)) {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        // A bounded poll: nothing announces the other process's rename.
        std::thread::sleep(Duration::from_millis(20));
    }
}
