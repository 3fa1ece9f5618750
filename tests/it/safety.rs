//! Safety: the `restore` command and backup files, through the real binary.

use std::net::TcpListener;

use serde_json::{json, Value};

use crate::common::{one_line_error, restore};

fn backup_doc(address: &str, mac: &str) -> Value {
    json!({
        "format": 1,
        "harness_version": "0.1.0",
        "created_at": "2026-11-22T03:00:00Z",
        "hub": {"mac": mac, "name": "Desk", "firmware": "5.1.1", "address": address},
        "config": {"endpoints": [], "error": 0}
    })
}

/// A listener standing in for a hub that must receive nothing: after the
/// command, no connection may be pending on it.
fn silent_hub() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

fn assert_untouched(l: &TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the hub was contacted from {peer}"),
        Err(e) => panic!("accept: {e}"),
    }
}

#[test]
fn truncated_backup_is_a_one_line_error_and_nothing_is_sent() {
    let (l, addr) = silent_hub();
    let dir = tempfile::tempdir().unwrap();
    let text = serde_json::to_string_pretty(&backup_doc(&addr, "A1B2C3D4E5F6")).unwrap();
    let p = dir.path().join("cut.json");
    std::fs::write(&p, &text[..text.len() - 20]).unwrap();
    one_line_error(&restore(&p, &[]), 2, &["cut.json", "truncated"]);
    assert_untouched(&l);
}

#[test]
fn non_json_backup_is_a_one_line_error_and_nothing_is_sent() {
    let (l, addr) = silent_hub();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("notes.txt");
    std::fs::write(&p, "hub at ").unwrap();
    one_line_error(
        &restore(&p, &["--device", &addr]),
        2,
        &["notes.txt", "not valid JSON"],
    );
    // JSON, but not a backup.
    let p = dir.path().join("config.json");
    std::fs::write(&p, json!({"endpoints": []}).to_string()).unwrap();
    one_line_error(
        &restore(&p, &["--device", &addr]),
        2,
        &["config.json", "not a vegehub-harness backup"],
    );
    assert_untouched(&l);
}

#[test]
fn missing_backup_and_bad_device_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    one_line_error(
        &restore(&dir.path().join("nope.json"), &[]),
        2,
        &["nope.json"],
    );
    let p = dir.path().join("b.json");
    std::fs::write(&p, backup_doc("127.0.0.1:1", "A1B2C3D4E5F6").to_string()).unwrap();
    one_line_error(
        &restore(&p, &["--device", "http://x/"]),
        2,
        &["--device \"http://x/\""],
    );
}

#[test]
fn unreachable_hub_is_exit_4_naming_it() {
    // A closed loopback port: bind, read the port, drop the listener.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("b.json");
    std::fs::write(&p, backup_doc(&addr, "A1B2C3D4E5F6").to_string()).unwrap();
    one_line_error(&restore(&p, &[]), 4, &[&addr, "unreachable"]);
}
