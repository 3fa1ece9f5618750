//! The `restore` command against the simulated hub: a verified restore, a
//! backup of another hub refused (and forced), a hub that will not keep the
//! config (exit 5), and bad backups that send nothing.

use crate::common::{one_line_error, restore, sim_with, text};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use vegehub_harness::safety::backup::{self, Backup, HubIdentity};
use vegehub_harness::sim::SimHandle;

/// What `config/get` with every section answers on `hub`: what a harness
/// run backs up.
fn config_get_doc(hub: &SimHandle) -> Value {
    let wanted = vegehub_harness::device::config::full_request();
    hub.state()
        .config_sections(wanted.as_object().expect("sections object"))
}

/// A backup of `hub`'s current config, as a run would write it.
fn backup_of(hub: &SimHandle, dir: &Path, mac: &str) -> PathBuf {
    let b = Backup::from_value(
        HubIdentity {
            mac: mac.into(),
            name: Some("Vege_A6_20".into()),
            firmware: Some("5.1.1".into()),
            address: hub.addr().to_string(),
        },
        &config_get_doc(hub),
    );
    backup::write(dir, &b).unwrap()
}

/// Change the simulated hub's config the way a crashed `setup` would have.
fn tamper(hub: &SimHandle) -> Value {
    let mut doc = config_get_doc(hub);
    doc["endpoints"].as_array_mut().unwrap().push(
        json!({"id": 2, "name": "VEGEHUB_HARNESS_TEST", "type": "custom", "enabled": true,
            "connection_method": "wifi", "config": {"api_key": "VEGEHUB_HARNESS_TEST_API_KEY",
            "data_format": "json", "url": "http://127.0.0.1:9/VEGEHUB_HARNESS_TEST"}}),
    );
    hub.state().set_config(&doc, true).unwrap();
    hub.config()
}

const MAC: &str = "A1:B2:C3:D4:A6:20";

#[test]
fn restore_brings_the_config_back_deep_equal() {
    let hub = sim_with("hub-new-firmware", &[]);
    let original = hub.config();
    let dir = tempfile::tempdir().unwrap();
    let path = backup_of(&hub, dir.path(), MAC);
    assert_ne!(tamper(&hub), original);
    // Address taken from the backup.
    let out = restore(&path, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout.contains("verified"), "{stdout}");
    assert_eq!(hub.config(), original);
}

#[test]
fn restore_on_old_firmware_too() {
    let hub = sim_with("hub-old-firmware", &[]);
    let original = hub.config();
    let mac = hub.state().profile().mac().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = backup_of(&hub, dir.path(), &mac);
    let mut doc = config_get_doc(&hub);
    doc["api_key"] = json!("VEGEHUB_HARNESS_TEST_API_KEY");
    doc["hub"]["server_url"] = json!("http://127.0.0.1:9/x");
    hub.state().set_config(&doc, true).unwrap();
    assert_ne!(hub.config(), original);
    let addr = hub.addr().to_string();
    let out = restore(&path, &["--device", &addr]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(hub.config(), original);
}

#[test]
fn a_backup_of_another_hub_is_refused_and_nothing_written_unless_forced() {
    let hub = sim_with("hub-new-firmware", &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = backup_of(&hub, dir.path(), "11:22:33:44:55:66");
    let tampered = tamper(&hub);
    let out = restore(&path, &[]);
    one_line_error(
        &out,
        2,
        &[
            "MAC A1:B2:C3:D4:A6:20",
            "11:22:33:44:55:66",
            "--force",
            "nothing written",
        ],
    );
    assert_eq!(hub.config(), tampered, "a refused restore wrote to the hub");

    let out = restore(&path, &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --force"));
    assert_ne!(hub.config(), tampered);
}

#[test]
fn a_hub_that_refuses_the_restore_is_exit_5_naming_the_backup() {
    let hub = sim_with("hub-new-firmware", &["status:500@config/set"]);
    let dir = tempfile::tempdir().unwrap();
    let path = backup_of(&hub, dir.path(), MAC);
    let out = restore(&path, &[]);
    one_line_error(
        &out,
        5,
        &[&path.display().to_string(), "NOT verified", "500"],
    );
}

#[test]
fn a_hub_that_ignores_the_restore_is_exit_5() {
    let hub = sim_with("hub-new-firmware", &["ignore-set@config/set"]);
    let dir = tempfile::tempdir().unwrap();
    let path = backup_of(&hub, dir.path(), MAC);
    // Tamper through the state (the fault only ignores HTTP writes).
    tamper(&hub);
    let out = restore(&path, &[]);
    one_line_error(&out, 5, &["read back differs at endpoints"]);
}

#[test]
fn bad_backups_send_nothing_to_the_hub() {
    let hub = sim_with("hub-new-firmware", &[]);
    let dir = tempfile::tempdir().unwrap();
    let good = backup_of(&hub, dir.path(), MAC);
    let text = std::fs::read_to_string(&good).unwrap();
    let cut = dir.path().join("cut.json");
    std::fs::write(&cut, &text[..text.len() * 2 / 3]).unwrap();
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "not json at all").unwrap();
    let addr = hub.addr().to_string();
    one_line_error(
        &restore(&cut, &["--device", &addr]),
        2,
        &["cut.json", "truncated"],
    );
    one_line_error(
        &restore(&junk, &["--device", &addr]),
        2,
        &["junk.json", "not valid JSON"],
    );
    // A FIFO nobody writes to is refused, not waited on.
    #[cfg(unix)]
    {
        let fifo = dir.path().join("backup.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        one_line_error(
            &restore(&fifo, &["--device", &addr]),
            2,
            &["backup.fifo", "not a regular file"],
        );
    }
    assert_eq!(hub.stats().requests, 0, "a bad backup reached the hub");
    assert_eq!(hub.stats().accepted, 0);
}
