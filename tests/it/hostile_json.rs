//! The hub as an adversary in its JSON: answers nested 100k deep, `NaN`
//! and `Infinity`, values of the wrong type or out of range, a config of
//! 100k endpoints, produced by the fault proxy (`common::proxy`) rewriting
//! a real simulated hub's answers. The call they hit fails naming it (exit
//! 1; exit 5 when relays can then not be verified off), nothing is built
//! on them, and the hub is left as found.

use crate::common::proxy::{FaultProxy, Framing};
use crate::common::{
    ended, harness_cmd, lines_are_short, output_of, run_at, sim_with, text, LIMIT,
};

/// One hostile answer: the fault, on which path, with which run, the exit
/// code and a part of the one-line reason.
struct Case {
    fault: Framing,
    path: &'static str,
    args: &'static [&'static str],
    code: i32,
    needle: &'static str,
}

const INFO: &[&str] = &["--exact", "info"];
const ROUND_TRIP: &[&str] = &["--exact", "config-round-trip", "--write-config"];
const ACTUATORS: &[&str] = &["--exact", "actuators", "--actuators"];
const SETUP: &[&str] = &["--exact", "setup", "--setup"];

#[test]
fn hostile_json_fails_the_call_and_leaves_the_hub_as_found() {
    let cases = vec![
        Case {
            fault: Framing::Deep(100_000),
            path: "/api/info/get",
            args: INFO,
            code: 1,
            needle: "recursion limit exceeded",
        },
        Case {
            fault: Framing::Deep(100_000),
            path: "/api/config/get",
            args: ROUND_TRIP,
            code: 1,
            needle: "recursion limit exceeded",
        },
        Case {
            fault: Framing::Deep(100_000),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "recursion limit exceeded",
        },
        Case {
            fault: Framing::Replace("\"batt_v\":9.0", "\"batt_v\":NaN"),
            path: "/api/info/get",
            args: INFO,
            code: 1,
            needle: "POST /api/info/get: answer is not the documented shape",
        },
        Case {
            fault: Framing::Replace("\"num_actuators\":2", "\"num_actuators\":4294967296"),
            path: "/api/info/get",
            args: ACTUATORS,
            code: 1,
            needle: "invalid value: integer `4294967296`, expected u32",
        },
        Case {
            fault: Framing::Replace("\"mac_addr\":\"A1:B2:C3:D4:A6:20\"", "\"mac_addr\":1"),
            path: "/api/info/get",
            args: INFO,
            code: 1,
            needle: "wifi.mac_addr should be a string, got 1",
        },
        Case {
            fault: Framing::Replace("\"state\":0", "\"state\":Infinity"),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "GET /api/actuators/status: answer is not the documented shape",
        },
        Case {
            fault: Framing::Replace("\"state\":0", "\"state\":\"0\""),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "actuators[0]: invalid type: string",
        },
        Case {
            fault: Framing::Replace("\"slot\":0", "\"slot\":-1"),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "actuators[0]: invalid value: integer `-1`",
        },
        Case {
            fault: Framing::Replace("\"slot\":0", "\"slot\":1e300"),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "actuators[0]: invalid type: floating point",
        },
        Case {
            fault: Framing::Replace("\"state\":0", "\"state\":-0"),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "invalid type: floating point `-0.0`, expected u8",
        },
        // An error field holding an object is quoted by its kind only: its
        // keys are the hub's (once printed whole, secret and all).
        Case {
            fault: Framing::Replace("\"error\":\"success\"", "\"error\":{\"psk\":\"SECRET-1\"}"),
            path: "/api/actuators/status",
            args: ACTUATORS,
            code: 5,
            needle: "the hub reported error an object",
        },
        // A byte-order mark, a second document after the first, a number
        // no f64 holds, a lone surrogate: not JSON, so not used.
        Case {
            fault: Framing::Replace("{\"hub\"", "\u{feff}{\"hub\""),
            path: "/api/info/get",
            args: INFO,
            code: 1,
            needle: "expected value at line 1 column 1",
        },
        Case {
            fault: Framing::Replace("\"error\":0}", "\"error\":0}{\"error\":1}"),
            path: "/api/config/get",
            args: ROUND_TRIP,
            code: 1,
            needle: "not JSON: trailing characters",
        },
        Case {
            fault: Framing::Replace("\"batt_v\":9.0", "\"batt_v\":1e400"),
            path: "/api/info/get",
            args: INFO,
            code: 1,
            needle: "number out of range",
        },
        // Held exactly, but setup's rebuilt config would say it otherwise
        // (once written as 1.0, beside a new endpoint of id 1).
        Case {
            fault: Framing::Replace("\"id\":1,", "\"id\":1E0,"),
            path: "/api/config/get",
            args: SETUP,
            code: 1,
            needle: "number at endpoints[0].id is written 1E0, a rebuilt config would say 1.0",
        },
        Case {
            fault: Framing::Replace("\"Cloud\"", "\"Cloud\\udc00\""),
            path: "/api/config/get",
            args: ROUND_TRIP,
            code: 1,
            needle: "lone leading surrogate in hex escape",
        },
        Case {
            fault: Framing::ManyEndpoints(100_000),
            path: "/api/config/get",
            args: ROUND_TRIP,
            code: 1,
            needle: "answer larger than 262144 bytes",
        },
    ];
    let threads: Vec<_> = cases
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                let hub = sim_with("hub-new-firmware", &[]);
                let before = hub.state().config_text();
                let proxy = FaultProxy::start(hub.addr(), c.path, c.fault, 0);
                let o = run_at(proxy.addr(), c.args);
                let out = text(&o);
                let what = format!("{:?} on {}", c.fault, c.path);
                assert_eq!(o.status.code(), Some(c.code), "{what}:\n{out}");
                assert!(out.contains(c.needle), "{what}: no {:?}:\n{out}", c.needle);
                assert!(!out.contains("panicked"), "{what}:\n{out}");
                assert!(!out.contains("SECRET"), "{what}: a secret shown:\n{out}");
                assert!(
                    !hub.state()
                        .received()
                        .iter()
                        .any(|r| r.path == "/api/config/set"),
                    "{what}: written:\n{out}"
                );
                assert_eq!(hub.state().config_text(), before, "{what}:\n{out}");
                assert!(
                    hub.actuator_states().iter().all(|&s| s == 0),
                    "{what}: a relay is on:\n{out}"
                );
            })
        })
        .collect();
    for t in threads {
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

// Hub text in a one-line error is cut: `record` once printed a 4 KiB MAC
// whole.
#[test]
fn record_cuts_a_4_kib_mac_in_its_one_line_error() {
    let hub = sim_with("hub-new-firmware", &[]);
    let long: &'static str = Box::leak(format!("\"mac_addr\":\"{}\"", "A".repeat(4096)).into());
    let proxy = FaultProxy::start(
        hub.addr(),
        "/api/info/get",
        Framing::Replace("\"mac_addr\":\"A1:B2:C3:D4:A6:20\"", long),
        0,
    );
    let addr = proxy.addr().to_string();
    let o = output_of(harness_cmd().args(["record", "--device", &addr]), LIMIT);
    let out = ended(&o, 1, &["info.wifi.mac_addr \"AAAA", "is not a MAC"]);
    lines_are_short(&out);
}
