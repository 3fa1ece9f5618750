//! Network namespaces for tests that speak mDNS: every such test runs in a
//! user + network namespace of its own, never on this machine's interfaces.
//!
//! `netns_test!` makes a normal `#[test]` that re-runs this test binary,
//! filtered to exactly that test, under `unshare -rn` (after `ip link set lo
//! up`), and asserts that the inner run passed exactly one test. Inside, the
//! marker variable names the test, and the body runs. So plain `cargo test`
//! does the right thing, and a machine that cannot make a namespace FAILS
//! these tests loudly; they never skip and never fall back to the real
//! network. (On Windows and macOS, which have no such namespaces, they are
//! listed as ignored, with that reason.)
//!
//! `Veth` adds a second namespace joined to the test's own by a veth pair,
//! for tests that need a real link between a hub and the harness.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};

/// Set to the test's name in the re-run inside the namespace.
const MARKER: &str = "VEGEHUB_IT_NETNS";

/// How long one test inside a namespace may take, all its runs included.
const INNER_LIMIT: std::time::Duration = std::time::Duration::from_secs(180);

/// Define a test whose body runs in a fresh network namespace.
#[macro_export]
macro_rules! netns_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $crate::linux_test! {
            "needs a Linux network namespace (unshare -rn)",
            $(#[$meta])* fn $name() {
                $crate::common::netns::isolated(
                    concat!(module_path!(), "::", stringify!($name)),
                    || $body,
                )
            }
        }
    };
}

/// Run `body` inside a namespace made for the test `path` (a module path
/// such as `it::discovery::finds_a_hub`).
pub fn isolated(path: &str, body: impl FnOnce()) {
    // libtest names tests without the crate: `discovery::finds_a_hub`.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if std::env::var(MARKER).as_deref() == Ok(name) {
        assert_fresh_namespace();
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let mut cmd = Command::new("unshare");
    cmd.args(["-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(MARKER, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run `unshare -rn` ({e}); mDNS tests need their own network namespace \
             and never run on the real interface"
        )
    });
    // The deadline of every binary run inside, whatever the body waits for.
    let out = super::output_within(child, INNER_LIMIT, name);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} inside `unshare -rn` ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n\
         (if unshare itself failed: this machine cannot make an unprivileged network \
         namespace; these tests must not run on the real interface, so they fail)",
        out.status
    );
}

/// The namespace must hold nothing but `lo`, up: proof that the body is not
/// on the machine's real network.
fn assert_fresh_namespace() {
    // /proc/self/net follows the calling thread's namespace (sysfs does not).
    let dev = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let mut intfs: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim().to_string()))
        .collect();
    intfs.sort();
    assert_eq!(
        intfs,
        ["lo"],
        "not in a fresh network namespace; refusing to speak mDNS here"
    );
}

/// A second namespace joined to the test's own by a veth pair (`Link`): a
/// command runs there once the link is up; it ends when the `Veth` drops.
pub struct Veth {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// Link 0: this side's interface and address.
pub const HOST_ADDR: &str = "169.254.77.1";
/// Link 0: the far side's interface and address.
pub const PEER_IF: &str = "vh1";
pub const PEER_ADDR: &str = "169.254.77.2";

/// Link `n`: `vh{2n}` here with `169.254.{77+n}.1/24`, `vh{2n+1}` there with
/// `.2` (link-local addresses; one /24 per link so replies leave by the
/// link they belong to).
pub struct Link {
    pub host_if: String,
    pub host_addr: String,
    pub peer_if: String,
    pub peer_addr: String,
}

impl Link {
    pub fn nth(n: u8) -> Link {
        Link {
            host_if: format!("vh{}", 2 * n),
            host_addr: format!("169.254.{}.1", 77 + n),
            peer_if: format!("vh{}", 2 * n + 1),
            peer_addr: format!("169.254.{}.2", 77 + n),
        }
    }
}

impl Veth {
    /// Make the far namespace, link it, and run `argv` there. Returns once
    /// the far command has been started, with its stdout readable by line.
    pub fn spawn(argv: &[&str]) -> (Veth, BufReader<std::process::ChildStdout>) {
        Veth::spawn_on(&Link::nth(0), argv)
    }

    /// As `spawn`, over link `link`.
    pub fn spawn_on(link: &Link, argv: &[&str]) -> (Veth, BufReader<std::process::ChildStdout>) {
        let Link {
            host_if,
            host_addr,
            peer_if,
            peer_addr,
        } = link;
        // The far side announces it is inside its namespace, waits for the
        // link to be moved in, configures it, then becomes `argv`.
        let script = format!(
            "echo in-namespace; read go; ip link set lo up && \
             ip addr add {peer_addr}/24 dev {peer_if} && ip link set {peer_if} up && \
             {wait} && echo link-up && exec \"$@\"",
            wait = wait_oper_up(peer_if)
        );
        let mut child = Command::new("unshare")
            .args(["-n", "sh", "-c", &script, "sh"])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare -n for the far namespace");
        let mut stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        expect_line(&mut out, "in-namespace");
        let pid = child.id().to_string();
        run(&[
            "ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if, "netns", &pid,
        ]);
        run(&[
            "ip",
            "addr",
            "add",
            &format!("{host_addr}/24"),
            "dev",
            host_if,
        ]);
        run(&["ip", "link", "set", host_if, "up"]);
        writeln!(stdin.as_mut().expect("stdin"), "go").expect("start the far side");
        expect_line(&mut out, "link-up");
        run(&["sh", "-c", &wait_oper_up(host_if)]);
        (Veth { child, stdin }, out)
    }
}

impl Veth {
    /// Write a line to the far command's stdin (a command that waits with
    /// `read` until this side is ready).
    pub fn send_line(&mut self, line: &str) {
        writeln!(self.stdin.as_mut().expect("stdin"), "{line}").expect("to the far side");
    }

    /// Wait for the far command to end.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        self.child.wait().expect("wait for the far namespace")
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A shell snippet that polls (bounded) until `intf` is operationally up:
/// the kernel reports carrier asynchronously after `ip link set up`, and
/// mdns-sd only uses interfaces that are up when it starts.
fn wait_oper_up(intf: &str) -> String {
    format!(
        "n=0; until ip -o link show dev {intf} | grep -q 'state UP'; do \
         n=$((n+1)); [ $n -lt 5000 ] || {{ echo {intf} never came up >&2; exit 1; }}; done"
    )
}

fn expect_line(out: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    out.read_line(&mut line)
        .expect("read from the far namespace");
    assert_eq!(line.trim(), want, "far namespace setup");
}

fn run(argv: &[&str]) {
    let st = Command::new(argv[0])
        .args(&argv[1..])
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")));
    assert!(st.success(), "{} failed: {st}", argv.join(" "));
}

/// Names of this process's threads (`/proc/self/task/*/comm`).
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect()
}

/// How many mdns-sd daemon threads this process runs right now.
pub fn mdns_daemon_threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| *n == "mDNS_daemon")
        .count()
}

/// Wait until exactly `n` mdns-sd daemon threads run. A daemon answers its
/// shutdown just before its thread returns, so the count may lag by a
/// moment; anything longer than the deadline is a daemon left running.
pub fn await_mdns_daemon_threads(n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let now = mdns_daemon_threads();
        if now == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{now} mdns-sd daemon threads still running, expected {n}"
        );
        std::thread::yield_now();
    }
}
