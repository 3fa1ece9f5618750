//! Guaranteed teardown: a registry of what the harness has changed on each
//! hub and not yet verified undone ("obligations": actuator slots that may
//! be on, a config to restore with its backup), the cleanup that settles
//! them with its own timeouts and retries, and the Ctrl-C/SIGTERM handling
//! that triggers it.
//!
//! Scenarios register an obligation *before* the request that creates it and
//! clear it only once the undo is verified, so whatever ends the run (error,
//! panic, signal) the registry says exactly what may be left.

mod client_ops;
pub mod signal;
pub mod undo;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::device::ActuatorSlot;
use crate::session::actuator_limit::MaxOn;

pub use signal::{Interrupt, Signal};
pub use undo::{settle, CleanupPolicy, HubUndo, UndoEvent};

/// What cleanup and `restore` need from one hub. The harness's shared
/// client implements it; unit tests use scripted fakes.
pub trait HubOps: Sync {
    type Error: fmt::Display;
    /// Switch `slot` off now (`state 0`, `duration 0`). Cleanup never
    /// switches anything on, so it needs no other actuator command.
    fn actuator_off(&self, slot: u32) -> impl Future<Output = Result<(), Self::Error>> + Send;
    fn actuator_status(
        &self,
    ) -> impl Future<Output = Result<Vec<ActuatorSlot>, Self::Error>> + Send;
    /// The whole config document, exactly as `config/get` returns it
    /// (checked to be a JSON object that reports no error).
    fn config_get(&self) -> impl Future<Output = Result<String, Self::Error>> + Send;
    /// Write exactly these bytes with `config/set`.
    fn config_set(&self, config: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// The hub's MAC from `info/get` (any notation).
    fn mac(&self) -> impl Future<Output = Result<String, Self::Error>> + Send;
    /// Whether `e` is the hub refusing the request (a 4xx answer): sending
    /// it again cannot help, so cleanup does not retry it.
    fn refused(_e: &Self::Error) -> bool {
        false
    }
}

/// A config the harness may have changed, and how to put it back.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigDebt {
    /// The `config/get` answer as first read, byte for byte, before the
    /// harness wrote anything (what the backup holds).
    pub original: String,
    /// The backup file holding `original`.
    pub backup: PathBuf,
}

/// Everything not yet verified undone on one hub.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HubDebt {
    /// How to name the hub to a person: name, MAC, address as known.
    pub label: String,
    /// Actuator slots that may be on.
    pub slots: BTreeSet<u32>,
    pub config: Option<ConfigDebt>,
    /// Set when the hub at this address started answering with another
    /// MAC: (expected, got). Nothing more is written to it.
    pub identity_changed: Option<(String, String)>,
}

impl HubDebt {
    pub fn is_clear(&self) -> bool {
        self.slots.is_empty() && self.config.is_none()
    }
}

/// The shared registry of obligations, keyed by hub address (`HOST:PORT`).
/// Cheap to clone; every clone is the same registry.
#[derive(Debug, Clone)]
pub struct Obligations {
    inner: Arc<Mutex<BTreeMap<String, HubDebt>>>,
    max_on: MaxOn,
}

impl Obligations {
    /// `max_on` is only used to tell a person when on slots end by
    /// themselves.
    pub fn new(max_on: MaxOn) -> Obligations {
        Obligations {
            inner: Arc::default(),
            max_on,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, HubDebt>> {
        // A panic elsewhere while holding the lock must not stop cleanup.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_hub<R>(&self, hub: &str, f: impl FnOnce(&mut HubDebt) -> R) -> R {
        let mut map = self.lock();
        let debt = map.entry(hub.to_owned()).or_insert_with(|| HubDebt {
            label: hub.to_owned(),
            ..HubDebt::default()
        });
        let r = f(debt);
        if debt.is_clear() {
            let label = debt.label.clone();
            // Keep the label for later obligations on the same hub.
            map.insert(
                hub.to_owned(),
                HubDebt {
                    label,
                    ..HubDebt::default()
                },
            );
        }
        r
    }

    /// Name the hub for messages (e.g. `Desk (A1:B2:..) at 127.0.0.1:80`).
    pub fn set_label(&self, hub: &str, label: impl Into<String>) {
        let label = label.into();
        self.with_hub(hub, |d| d.label = label);
    }

    /// Call before sending an `on` to `slot`.
    pub fn slot_may_be_on(&self, hub: &str, slot: u32) {
        self.with_hub(hub, |d| d.slots.insert(slot));
    }

    /// Call once `slot` is verified off.
    pub fn slot_off(&self, hub: &str, slot: u32) {
        self.with_hub(hub, |d| d.slots.remove(&slot));
    }

    /// Call before every `config/set`, with the backup already written.
    /// A later call keeps the first original: that is the hub's real config.
    pub fn config_may_change(&self, hub: &str, original: String, backup: PathBuf) {
        self.with_hub(hub, |d| {
            d.config.get_or_insert(ConfigDebt { original, backup });
        });
    }

    /// Call once the original config is verified back on the hub.
    pub fn config_restored(&self, hub: &str) {
        self.with_hub(hub, |d| d.config = None);
    }

    /// The hub at `hub` answered with MAC `got` instead of `expected`: the
    /// harness writes nothing more there, and says so with what is owed.
    pub fn identity_changed(&self, hub: &str, expected: String, got: String) {
        self.with_hub(hub, |d| {
            d.identity_changed.get_or_insert((expected, got));
        });
    }

    /// The debt of one hub (empty when none).
    pub fn debt(&self, hub: &str) -> HubDebt {
        self.lock().get(hub).cloned().unwrap_or_default()
    }

    /// Addresses of the hubs that owe anything.
    pub fn hubs(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, d)| !d.is_clear())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Everything that may be left, for a person.
    pub fn leftovers(&self) -> Leftovers {
        Leftovers {
            hubs: self
                .lock()
                .iter()
                .filter(|(_, d)| !d.is_clear())
                .map(|(k, d)| (k.clone(), d.clone()))
                .collect(),
            max_on: self.max_on,
        }
    }

    pub fn is_clear(&self) -> bool {
        self.lock().values().all(HubDebt::is_clear)
    }
}

/// A snapshot of what may be left on hubs; `Display` writes what a person
/// must know and do, one line per fact.
#[derive(Debug, Clone, PartialEq)]
pub struct Leftovers {
    pub hubs: Vec<(String, HubDebt)>,
    max_on: MaxOn,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.hubs.is_empty()
    }
}

impl fmt::Display for Leftovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.hubs.is_empty() {
            return f.write_str("nothing left modified on any hub");
        }
        let mut first = true;
        for (addr, debt) in &self.hubs {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "hub {}:", debt.label)?;
            if !debt.slots.is_empty() {
                let slots: Vec<String> = debt.slots.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "\n  actuator slot(s) {} may be on (each switches itself off within {} s of being switched on)",
                    slots.join(", "),
                    self.max_on.seconds()
                )?;
            }
            if let Some((expected, got)) = &debt.identity_changed {
                write!(
                    f,
                    "\n  the hub at {addr} now answers with MAC {got}, not {expected}: the harness stopped writing to it"
                )?;
            }
            if let Some(c) = &debt.config {
                write!(
                    f,
                    "\n  config may be modified; restore it with: {}",
                    restore_command(&c.backup.display().to_string(), addr)
                )?;
            }
        }
        Ok(())
    }
}

/// The command a person runs to put a hub's original config back: printed
/// for what may be left, and carried in every report's cleanup outcome.
pub fn restore_command(backup: &str, device: &str) -> String {
    format!(
        "vegehub-harness restore {} --device {}",
        shell_quote(backup),
        shell_quote(device)
    )
}

/// Quote a path so the printed command can be pasted into a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_tracks_until_verified_undone() {
        let o = Obligations::new(MaxOn::default());
        assert!(o.is_clear());
        o.set_label("127.0.0.1:1", "Desk (A1:B2:C3:D4:E5:F6) at 127.0.0.1:1");
        o.slot_may_be_on("127.0.0.1:1", 0);
        o.slot_may_be_on("127.0.0.1:1", 1);
        o.config_may_change("127.0.0.1:1", r#"{"a": 1}"#.into(), "/b/x.json".into());
        o.config_may_change("127.0.0.1:1", r#"{"a": 2}"#.into(), "/b/y.json".into());
        assert_eq!(o.hubs(), vec!["127.0.0.1:1"]);
        let d = o.debt("127.0.0.1:1");
        assert_eq!(
            d.config.unwrap().original,
            r#"{"a": 1}"#,
            "first original kept"
        );
        let text = o.leftovers().to_string();
        assert_eq!(
            text,
            "hub Desk (A1:B2:C3:D4:E5:F6) at 127.0.0.1:1:\n  actuator slot(s) 0, 1 may be on (each switches itself off within 10 s of being switched on)\n  config may be modified; restore it with: vegehub-harness restore /b/x.json --device 127.0.0.1:1"
        );
        o.slot_off("127.0.0.1:1", 0);
        o.slot_off("127.0.0.1:1", 1);
        o.config_restored("127.0.0.1:1");
        assert!(o.is_clear());
        assert!(o.leftovers().is_empty());
        assert!(o.hubs().is_empty());
        // The label survives for later obligations.
        o.slot_may_be_on("127.0.0.1:1", 2);
        assert!(o.leftovers().to_string().starts_with("hub Desk"));
    }

    #[test]
    fn odd_paths_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a/b.json"), "/a/b.json");
        assert_eq!(shell_quote("/a b/it's.json"), r"'/a b/it'\''s.json'");
    }
}
