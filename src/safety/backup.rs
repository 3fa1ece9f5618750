//! Config backups: the original config of a hub, written to disk atomically
//! before the harness first writes to the hub, and loaded back (validated)
//! by `restore`.
//!
//! A backup is `<backup-dir>/<MAC>-<UTC timestamp>.json`, mode 0600 (it keeps
//! the hub's API keys), holding the hub's identity and the harness version
//! beside the `config/get` answer exactly as the hub sent it
//! (`config_answer`, what `restore` writes back byte for byte) and its
//! parsed form (`config`, for reading). The backup directory must not be
//! writable by anyone else: whoever can replace a backup chooses what
//! `restore` writes to a hub.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::device::Mac;

/// Version of the backup file layout; `load` reads this one and format 1
/// (which had no exact answer: its `config` is written back re-encoded).
pub const FORMAT: u32 = 2;

/// Name of the sub-directory of the per-user state directory that holds
/// backups by default.
const DEFAULT_SUBDIR: [&str; 2] = ["vegehub-harness", "backups"];

/// Which hub a config came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubIdentity {
    /// 12 upper-case hex digits.
    pub mac: String,
    /// The hub's name (config `hub.name` or its mDNS instance), when known.
    #[serde(default)]
    pub name: Option<String>,
    /// Firmware version from `info/get`, when known.
    #[serde(default)]
    pub firmware: Option<String>,
    /// `HOST:PORT` the harness reached the hub at; `restore` uses it when no
    /// `--device` is given.
    pub address: String,
}

/// The on-disk document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backup {
    pub format: u32,
    /// Version of the harness that wrote the backup.
    pub harness_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub hub: HubIdentity,
    /// The config as parsed, for a person reading the file. Never written
    /// to a hub; `load` checks it agrees with `config_answer`.
    pub config: Value,
    /// The `config/get` answer byte for byte: what `restore` writes.
    #[serde(default)]
    pub config_answer: String,
}

impl Backup {
    /// A backup of the `config/get` answer `answer` (valid JSON) taken now
    /// by this harness version.
    pub fn new(hub: HubIdentity, answer: &str) -> Backup {
        Backup {
            format: FORMAT,
            harness_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            hub,
            config: serde_json::from_str(answer).unwrap_or(Value::Null),
            config_answer: answer.to_owned(),
        }
    }

    /// A backup of a document the harness holds only in parsed form.
    pub fn from_value(hub: HubIdentity, config: &Value) -> Backup {
        Backup::new(hub, &config.to_string())
    }
}

/// Why a backup could not be written or loaded. Each message names the file
/// or directory, on one line.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no per-user state directory to keep backups in (pass --backup-dir)")]
    NoDefaultDir,
    #[error("backup dir {}: {source}", dir.display())]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("backup {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("backup {}: not valid JSON{} ({source})", path.display(), if source.is_eof() { ", truncated" } else { "" })]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("backup {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("hub MAC {mac:?} is not a MAC address")]
    BadMac { mac: String },
    #[error(
        "backup dir {}: writable by others (mode {mode:o}): anyone could replace a backup that \
         `restore` later writes to a hub; use a private directory (chmod 700) or another --backup-dir",
        dir.display()
    )]
    NotPrivate { dir: PathBuf, mode: u32 },
    #[error(
        "backup dir {}: owned by another user (uid {owner}); use a directory of your own",
        dir.display()
    )]
    NotOwned { dir: PathBuf, owner: u32 },
    #[error("backup {}: writable by others (mode {mode:o}); it may have been replaced, so it is not used", path.display())]
    FileNotPrivate { path: PathBuf, mode: u32 },
}

/// The default backup directory: `$XDG_STATE_HOME/vegehub-harness/backups`
/// (`~/.local/state/...`) on Linux, the local application-data directory on
/// macOS (`~/Library/Application Support/...`) and Windows
/// (`%LOCALAPPDATA%\...`), which have no state directory.
pub fn default_dir() -> Option<PathBuf> {
    let base = dirs::state_dir().or_else(dirs::data_local_dir)?;
    Some(DEFAULT_SUBDIR.iter().fold(base, |p, s| p.join(s)))
}

/// The backup directory to use: the one given, else the default.
pub fn resolve_dir(given: Option<&Path>) -> Result<PathBuf, BackupError> {
    match given {
        Some(dir) => Ok(dir.to_owned()),
        None => default_dir().ok_or(BackupError::NoDefaultDir),
    }
}

/// Check, before any hub is contacted, that backups can be written to `dir`
/// and nobody else can change them: create it (0700) if needed, refuse it
/// if others may write it or it is not the user's own, then create and
/// remove a temp file in it.
pub fn check_writable(dir: &Path) -> Result<(), BackupError> {
    let err = |source| BackupError::Dir {
        dir: dir.to_owned(),
        source,
    };
    create_private_dir(dir).map_err(err)?;
    check_private(dir)?;
    let probe = tempfile::Builder::new()
        .prefix(".probe-")
        .tempfile_in(dir)
        .map_err(err)?;
    probe.close().map_err(err)
}

/// Write `backup` into `dir` atomically and durably: a temp file in the same
/// directory (created 0600), fsync, rename to its final name (never over an
/// existing file), fsync the directory. Returns the final path. On error no
/// partial file is left behind under the final name.
pub fn write(dir: &Path, backup: &Backup) -> Result<PathBuf, BackupError> {
    let mac = Mac::parse(&backup.hub.mac).ok_or_else(|| BackupError::BadMac {
        mac: backup.hub.mac.clone(),
    })?;
    create_private_dir(dir).map_err(|source| BackupError::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    check_private(dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut body = serde_json::to_vec_pretty(backup).expect("a JSON value always serialises");
    body.push(b'\n');

    // tempfile creates the file with mode 0600 on Unix, in `dir`, so the
    // rename below stays on one file system and is atomic.
    let mut tmp = tempfile::Builder::new()
        .prefix(".backup-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|source| BackupError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
    let tmp_path = tmp.path().to_owned();
    let io = |source| BackupError::Write {
        path: tmp_path.clone(),
        source,
    };
    tmp.write_all(&body).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;

    // Two backups of one hub within a second (two runs, or a test) get a
    // numbered suffix rather than overwriting each other.
    let mut n = 0u32;
    let path = loop {
        let name = match n {
            0 => format!("{}-{stamp}.json", mac.as_str()),
            _ => format!("{}-{stamp}-{n}.json", mac.as_str()),
        };
        let path = dir.join(name);
        match tmp.persist_noclobber(&path) {
            Ok(_) => break path,
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => {
                tmp = e.file;
                n += 1;
            }
            Err(e) => {
                return Err(BackupError::Write {
                    path,
                    source: e.error,
                })
            }
        }
    };
    sync_dir(dir).map_err(|source| BackupError::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    Ok(path)
}

/// Load and validate a backup: it must be complete JSON of a known format,
/// for a well-formed MAC, with a config object that agrees with the exact
/// answer kept beside it, in a file only its owner can write.
pub fn load(path: &Path) -> Result<Backup, BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o022 != 0 {
                return Err(BackupError::FileNotPrivate {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
    }
    let text = crate::device::file::read_bounded(path).map_err(|source| BackupError::Read {
        path: path.to_owned(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&text).map_err(|source| BackupError::Json {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| BackupError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let format = match value.get("format").and_then(Value::as_u64) {
        Some(f) if f == 1 || f == u64::from(FORMAT) => f,
        Some(f) => return Err(invalid(format!("unknown backup format {f}"))),
        None => return Err(invalid("not a vegehub-harness backup (no format)".into())),
    };
    let mut backup: Backup =
        serde_json::from_value(value).map_err(|e| invalid(format!("not a backup: {e}")))?;
    if format == 1 {
        // Format 1 kept only the parsed form: that is what is written back.
        backup.config_answer = backup.config.to_string();
    }
    match serde_json::from_str::<Value>(&backup.config_answer) {
        Ok(answer) => {
            let d = crate::device::json_diff::diff_paths(&answer, &backup.config);
            if !d.is_empty() {
                return Err(invalid(format!(
                    "config and config_answer disagree at {} (edited?); restore would write config_answer",
                    d.join(", ")
                )));
            }
        }
        Err(e) => return Err(invalid(format!("config_answer is not JSON: {e}"))),
    }
    let Some(mac) = Mac::parse(&backup.hub.mac) else {
        return Err(invalid(format!(
            "hub.mac {:?} is not a MAC",
            backup.hub.mac
        )));
    };
    if !backup.config.is_object() {
        return Err(invalid("config is not a JSON object".into()));
    }
    Ok(Backup {
        hub: HubIdentity {
            mac: mac.as_str().to_owned(),
            ..backup.hub
        },
        ..backup
    })
}

/// Refuse a directory others can write (or that belongs to someone else).
fn check_private(dir: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(dir).map_err(|source| BackupError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(BackupError::NotPrivate {
                dir: dir.to_owned(),
                mode,
            });
        }
        // Who we are, without unsafe code: the owner of a file we create.
        let me = tempfile::tempfile_in(dir)
            .and_then(|f| f.metadata())
            .map(|m| m.uid())
            .map_err(|source| BackupError::Dir {
                dir: dir.to_owned(),
                source,
            })?;
        if meta.uid() != me {
            return Err(BackupError::NotOwned {
                dir: dir.to_owned(),
                owner: meta.uid(),
            });
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    // Said plainly: creating over a file only says "File exists".
    if dir.exists() && !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "exists and is not a directory",
        ));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Make the rename durable: on Unix a directory's entries are only on disk
/// once the directory itself is synced.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Backup {
        Backup::from_value(
            HubIdentity {
                mac: "a1:b2:c3:d4:e5:f6".into(),
                name: Some("Desk".into()),
                firmware: Some("5.1.1".into()),
                address: "127.0.0.1:8080".into(),
            },
            &json!({"endpoints": [{"id": 1, "config": {"api_key": "secret"}}], "error": 0}),
        )
    }

    #[test]
    fn writes_then_loads_the_same_document() {
        let dir = tempfile::tempdir().unwrap();
        let b = sample();
        let path = write(dir.path(), &b).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("A1B2C3D4E5F6-"), "{name}");
        assert!(name.ends_with("Z.json"), "{name}");
        let back = load(&path).unwrap();
        assert_eq!(back.config, b.config);
        assert_eq!(back.hub.mac, "A1B2C3D4E5F6");
        assert_eq!(back.harness_version, env!("CARGO_PKG_VERSION"));
        // Only the backup remains: no temp file left behind.
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn backup_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let path = write(&sub, &sample()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(&sub).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
    }

    #[test]
    fn the_answer_is_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let answer = "{\"hub\":{\"name\":\"K\\u00fcche\"},\"n\":123456789012345678901234567890,\"f\":1.50}\n";
        let mut b = sample();
        b = Backup::new(b.hub, answer);
        let back = load(&write(dir.path(), &b).unwrap()).unwrap();
        assert_eq!(back.config_answer, answer);
    }

    #[cfg(unix)]
    #[test]
    fn a_dir_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let msg = check_writable(&open).unwrap_err().to_string();
        assert!(msg.contains("writable by others (mode 777)"), "{msg}");
        assert!(write(&open, &sample()).is_err());
        assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
        // A backup file others can write is not loaded.
        let private = dir.path().join("p");
        let path = write(&private, &sample()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let msg = load(&path).unwrap_err().to_string();
        assert!(msg.contains("writable by others"), "{msg}");
    }

    #[test]
    fn two_backups_in_one_second_do_not_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), &sample()).unwrap();
        let b = write(dir.path(), &sample()).unwrap();
        assert_ne!(a, b);
        assert!(a.exists() && b.exists());
    }

    #[test]
    fn unwritable_dir_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, "x").unwrap();
        // A path under a regular file cannot be created, even by root.
        let err = write(&file.join("backups"), &sample()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("plain-file"), "{msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn writability_is_checked_without_leaving_anything() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("new");
        check_writable(&sub).unwrap();
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let msg = check_writable(&file).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("backup dir {}: ", file.display())),
            "{msg}"
        );
    }

    #[test]
    fn truncated_and_non_json_are_one_line_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(dir.path(), &sample()).unwrap();
        let text = std::fs::read_to_string(&good).unwrap();
        let cut = dir.path().join("cut.json");
        std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
        let msg = load(&cut).unwrap_err().to_string();
        assert!(
            msg.contains("cut.json") && msg.contains("truncated"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));

        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "hello").unwrap();
        let msg = load(&junk).unwrap_err().to_string();
        assert!(
            msg.contains("junk.json") && msg.contains("not valid JSON"),
            "{msg}"
        );
        assert!(!msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn json_that_is_not_a_backup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body, want) in [
            ("cfg.json", json!({"endpoints": []}), "no format"),
            ("fmt.json", json!({"format": 9}), "unknown backup format 9"),
            (
                "edit.json",
                json!({"format": 2, "harness_version": "0", "created_at": "x",
                    "hub": {"mac": "A1B2C3D4E5F6", "address": "h:1"},
                    "config": {"a": 2}, "config_answer": "{\"a\":1}"}),
                "disagree at a",
            ),
            (
                "nohub.json",
                json!({"format": 1, "config": {}}),
                "not a backup",
            ),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, body.to_string()).unwrap();
            let msg = load(&p).unwrap_err().to_string();
            assert!(msg.contains(name) && msg.contains(want), "{msg}");
        }
        let mut b = serde_json::to_value(sample()).unwrap();
        b["hub"]["mac"] = json!("nope");
        let p = dir.path().join("mac.json");
        std::fs::write(&p, b.to_string()).unwrap();
        assert!(load(&p)
            .unwrap_err()
            .to_string()
            .contains("\"nope\" is not a MAC"));
        b["hub"]["mac"] = json!("A1B2C3D4E5F6");
        b["config"] = json!([1]);
        b["config_answer"] = json!("[1]");
        std::fs::write(&p, b.to_string()).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("config is not"));
    }

    #[test]
    fn default_dir_is_per_user_state() {
        let d = default_dir().expect("a test machine has a home directory");
        assert!(d.ends_with("vegehub-harness/backups"), "{}", d.display());
    }
}
