//! The run's safety settings and state in one place: the `--backup-dir`,
//! `--max-on-seconds` and `--show-secrets` flags, validated into a
//! [`Safety`] that scenarios use to back up before writing, to build
//! actuator commands, to register undo obligations and to redact output.

pub mod backup;
pub mod redact;
pub mod restore;
pub mod teardown;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;

use crate::exit_code;
use crate::safety::redact::Redactor;
use crate::session::actuator_limit::{parse_max_on, MaxOn};
use backup::{Backup, BackupError, HubIdentity};
use teardown::{
    CleanupPolicy, HubOps, HubUndo, Interrupt, Leftovers, Obligations, Signal, UndoEvent,
};

/// What the safety machinery has to tell a person, as it happens. The
/// binary's observer prints these (the library prints nothing).
#[derive(Debug)]
pub enum SafetyEvent<'a> {
    /// A hub's original config was backed up (printed so it is known even
    /// if the process is killed later).
    BackupWritten { hub: &'a str, path: &'a Path },
    /// Progress of cleanup.
    Undo(&'a UndoEvent),
    /// The first Ctrl-C/SIGTERM: the run stops and undoes this.
    Interrupted {
        signal: Signal,
        leftovers: &'a Leftovers,
    },
    /// The second signal: the process exits now, leaving this.
    GivingUp {
        signal: Signal,
        leftovers: &'a Leftovers,
    },
}

/// Receives safety events.
pub type SafetyObserver = Arc<dyn Fn(&SafetyEvent<'_>) + Send + Sync>;

/// Flags of the harness run that protect the hub.
#[derive(Debug, Clone, Default, Args)]
pub struct SafetyArgs {
    /// Where original configs are backed up before the harness first
    /// writes to a hub [default: $XDG_STATE_HOME/vegehub-harness/backups,
    /// i.e. ~/.local/state/vegehub-harness/backups on Linux].
    #[arg(long, value_name = "DIR", env = "VEGEHUB_HARNESS_BACKUP_DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Longest an actuator may be switched on; every `on` carries this as
    /// its device-side duration at most, so a relay switches itself off
    /// even if the harness dies.
    #[arg(long, value_name = "SECONDS", default_value_t = MaxOn::default(), value_parser = parse_max_on)]
    pub max_on_seconds: MaxOn,
    /// Print API keys and passwords from hub configs instead of redacting them.
    #[arg(long)]
    pub show_secrets: bool,
}

/// The run's safety state, shared by every scenario of every hub. Cheap to
/// clone.
#[derive(Clone)]
pub struct Safety {
    backup_dir: Option<PathBuf>,
    pub max_on: MaxOn,
    pub redactor: Redactor,
    pub obligations: Obligations,
    pub interrupt: Interrupt,
    pub cleanup: CleanupPolicy,
    /// Backups written this run, by hub address: one per hub, taken before
    /// its first write, with the config it holds.
    backups: Arc<Mutex<BTreeMap<String, Original>>>,
    observer: Option<SafetyObserver>,
}

impl std::fmt::Debug for Safety {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Safety")
            .field("backup_dir", &self.backup_dir)
            .field("max_on", &self.max_on)
            .field("obligations", &self.obligations)
            .finish_non_exhaustive()
    }
}

impl Safety {
    pub fn new(args: &SafetyArgs) -> Safety {
        Safety {
            backup_dir: args.backup_dir.clone(),
            max_on: args.max_on_seconds,
            redactor: Redactor::new(args.show_secrets),
            obligations: Obligations::new(args.max_on_seconds),
            interrupt: Interrupt::new(),
            cleanup: CleanupPolicy::default(),
            backups: Arc::default(),
            observer: None,
        }
    }

    /// The same run state, backing up to `dir` instead (for in-process
    /// simulated hubs). Shares obligations, backups, interrupt, redactor.
    pub fn with_backup_dir(&self, dir: PathBuf) -> Safety {
        Safety {
            backup_dir: Some(dir),
            ..self.clone()
        }
    }

    /// Send safety events to `observer` (the binary prints them).
    pub fn with_observer(mut self, observer: SafetyObserver) -> Safety {
        self.observer = Some(observer);
        self
    }

    fn emit(&self, event: SafetyEvent<'_>) {
        if let Some(o) = &self.observer {
            o(&event);
        }
    }

    /// Settle everything owed on `hub` (see [`teardown::settle`]), reporting
    /// progress to the observer.
    pub async fn settle<H: HubOps>(&self, hub: &str, ops: &H) -> HubUndo {
        let mut on_event = |e: UndoEvent| self.emit(SafetyEvent::Undo(&e));
        teardown::settle(hub, ops, &self.obligations, &self.cleanup, &mut on_event).await
    }

    /// Listen for Ctrl-C/SIGTERM on the current runtime. The first signal
    /// sets [`Safety::interrupt`] and announces what will be undone; the
    /// second announces what may be left and exits the process at once:
    /// 5 if anything may be left modified, else 130.
    pub fn listen_for_signals(&self) -> std::io::Result<()> {
        let first = self.clone();
        let second = self.clone();
        teardown::signal::listen(
            self.interrupt.clone(),
            move |signal| {
                let leftovers = first.obligations.leftovers();
                first.emit(SafetyEvent::Interrupted {
                    signal,
                    leftovers: &leftovers,
                });
            },
            move |signal| {
                let leftovers = second.obligations.leftovers();
                let code = if leftovers.is_empty() {
                    exit_code::INTERRUPTED
                } else {
                    exit_code::HUB_MODIFIED
                };
                // Exit even if saying what is left panics: the person
                // asked twice.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    second.emit(SafetyEvent::GivingUp {
                        signal,
                        leftovers: &leftovers,
                    })
                }));
                std::process::exit(code);
            },
        )?;
        Ok(())
    }

    /// The directory backups go to.
    pub fn backup_dir(&self) -> Result<PathBuf, BackupError> {
        backup::resolve_dir(self.backup_dir.as_deref())
    }

    /// Call before every `config/set` on a hub, with the `config/get`
    /// answer just read (`read_text`, exact). The first call for a hub
    /// writes the backup of that answer: the run's original. Every call
    /// registers the restore of that original as owed, so each write is
    /// covered whatever discharged an earlier one. An error means nothing
    /// may be written to the hub.
    pub fn before_config_write(
        &self,
        hub: &HubIdentity,
        read_text: &str,
    ) -> Result<BackupWritten, BackupError> {
        let mut backups = self.backups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(original) = backups.get(&hub.address) {
            let original = original.clone();
            drop(backups);
            self.obligations.config_may_change(
                &hub.address,
                original.text.clone(),
                original.backup.clone(),
            );
            return Ok(BackupWritten {
                path: original.backup.clone(),
                original,
                new: false,
            });
        }
        let dir = self.backup_dir()?;
        let path = backup::write(&dir, &Backup::new(hub.clone(), read_text))?;
        let original = Original {
            text: read_text.to_owned(),
            backup: path.clone(),
        };
        self.obligations
            .config_may_change(&hub.address, original.text.clone(), path.clone());
        backups.insert(hub.address.clone(), original.clone());
        drop(backups);
        self.emit(SafetyEvent::BackupWritten {
            hub: &hub.address,
            path: &path,
        });
        Ok(BackupWritten {
            path,
            original,
            new: true,
        })
    }

    /// The backup taken of `hub` this run, if any.
    pub fn backup_of(&self, hub_address: &str) -> Option<PathBuf> {
        self.original_of(hub_address).map(|o| o.backup)
    }

    /// The config `hub` had before the run's first write to it, if the run
    /// wrote to it.
    pub fn original_of(&self, hub_address: &str) -> Option<Original> {
        self.backups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(hub_address)
            .cloned()
    }
}

/// A hub's config before the run's first write to it: the exact
/// `config/get` answer, and the backup file holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub text: String,
    pub backup: PathBuf,
}

/// Where a hub's backup is, the original it holds, and whether this call
/// wrote it (print the path the first time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupWritten {
    pub path: PathBuf,
    pub original: Original,
    pub new: bool,
}

impl BackupWritten {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use serde_json::json;

    #[derive(Debug, Parser)]
    struct T {
        #[command(flatten)]
        s: SafetyArgs,
    }

    fn id(addr: &str) -> HubIdentity {
        HubIdentity {
            mac: "A1B2C3D4E5F6".into(),
            name: None,
            firmware: None,
            address: addr.into(),
        }
    }

    #[test]
    fn flags_parse_and_default() {
        let t = T::try_parse_from(["x"]).unwrap();
        assert_eq!(t.s.max_on_seconds.seconds(), 10);
        assert!(!t.s.show_secrets);
        let t = T::try_parse_from(["x", "--max-on-seconds", "3", "--show-secrets"]).unwrap();
        assert_eq!(t.s.max_on_seconds.seconds(), 3);
        assert!(t.s.show_secrets);
        let e = T::try_parse_from(["x", "--max-on-seconds", "0"]).unwrap_err();
        assert!(e.to_string().contains("--max-on-seconds"), "{e}");
    }

    #[test]
    fn one_backup_per_hub_then_the_obligation_is_registered() {
        let dir = tempfile::tempdir().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let s = Safety::new(&SafetyArgs {
            backup_dir: Some(dir.path().to_owned()),
            ..SafetyArgs::default()
        })
        .with_observer(Arc::new(move |e| {
            if let SafetyEvent::BackupWritten { hub, path } = e {
                seen2
                    .lock()
                    .unwrap()
                    .push(format!("{hub} {}", path.display()));
            }
        }));
        let first = s
            .before_config_write(&id("127.0.0.1:1"), r#"{"a": 1}"#)
            .unwrap();
        assert!(first.new);
        // A verified restore discharges the obligation; the next write
        // registers it again, against the first original.
        s.obligations.config_restored("127.0.0.1:1");
        let again = s
            .before_config_write(&id("127.0.0.1:1"), r#"{"a": 2}"#)
            .unwrap();
        assert_eq!(
            again,
            BackupWritten {
                path: first.path.clone(),
                original: first.original.clone(),
                new: false
            }
        );
        assert_eq!(backup::load(&first.path).unwrap().config, json!({"a": 1}));
        assert_eq!(
            backup::load(&first.path).unwrap().config_answer,
            r#"{"a": 1}"#
        );
        let debt = s.obligations.debt("127.0.0.1:1");
        let owed = debt.config.unwrap();
        assert_eq!(owed.backup, first.path);
        assert_eq!(owed.original, r#"{"a": 1}"#);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![format!("127.0.0.1:1 {}", first.path.display())],
            "announced once"
        );
        assert_eq!(s.backup_of("127.0.0.1:1"), Some(first.path));
    }

    #[test]
    fn a_failing_backup_registers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let s = Safety::new(&SafetyArgs {
            backup_dir: Some(file.join("sub")),
            ..SafetyArgs::default()
        });
        assert!(s.before_config_write(&id("h"), "{}").is_err());
        assert!(s.obligations.is_clear());
        assert_eq!(s.backup_of("h"), None);
    }
}
