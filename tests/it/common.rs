//! Helpers every test module that runs the real binary shares.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use vegehub_harness::sim::{self, FaultSpec, Profile, SimHandle, SimOptions};

pub const BIN: &str = env!("CARGO_BIN_EXE_vegehub-harness");

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

/// A simulated hub from a built-in profile with `faults` (fault specs as on
/// the command line), on its own thread and runtime, ready on return.
pub fn sim_with(profile: &str, faults: &[&str]) -> SimHandle {
    let mut opts = SimOptions::new(Profile::load(profile).unwrap_or_else(|e| panic!("{e}")));
    opts.faults = faults
        .iter()
        .map(|f| f.parse::<FaultSpec>().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    sim::start_with(opts).expect("simulator starts")
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
        use std::io::BufRead;
        let mut child = harness_cmd()
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("harness starts");
        let (tx, lines) = mpsc::channel();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (err, e2) = (child.stderr.take().expect("stderr piped"), stderr.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
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
