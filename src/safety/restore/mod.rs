//! Restoring a hub's config from a backup file: check the hub is the one
//! the backup was taken from, write the backed-up document, read it back and
//! verify it deep-equal. Used by the `restore` command; prints nothing.

use std::path::{Path, PathBuf};

use crate::device::Mac;
use crate::exit_code;
use crate::safety::backup::{Backup, BackupError};
use crate::safety::teardown::undo::{restore_verified, retry};
use crate::safety::teardown::{CleanupPolicy, HubOps};

/// Why a restore did not happen or could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("--device {address:?}: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("hub at {address}: unreachable, nothing written ({error})")]
    Unreachable { address: String, error: String },
    #[error("hub at {address}: answered MAC {reported:?}, which is not a MAC; nothing written")]
    BadMac { address: String, reported: String },
    #[error(
        "hub at {address} has MAC {hub} but backup {} is of {backup}; nothing written (pass --force to restore it anyway)",
        path.display()
    )]
    MacMismatch {
        address: String,
        hub: Mac,
        backup: Mac,
        path: PathBuf,
    },
    #[error(
        "hub at {address}: restore from {} NOT verified, the hub may be left modified: {error}",
        path.display()
    )]
    NotVerified {
        address: String,
        path: PathBuf,
        error: String,
    },
}

impl RestoreError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RestoreError::Backup(_)
            | RestoreError::BadAddress { .. }
            | RestoreError::MacMismatch { .. } => exit_code::USAGE,
            RestoreError::Unreachable { .. } | RestoreError::BadMac { .. } => exit_code::NO_HUB,
            RestoreError::NotVerified { .. } => exit_code::HUB_MODIFIED,
        }
    }
}

/// A verified restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The MAC the hub reported.
    pub hub_mac: Mac,
    /// False when `--force` wrote a backup of another hub.
    pub mac_matched: bool,
}

/// Write `backup` (loaded from `path`) to the hub behind `ops` at `address`
/// and verify it reads back deep-equal. Nothing is written unless the hub
/// answers with the backup's MAC, or `force` is set.
pub async fn restore<H: HubOps>(
    backup: &Backup,
    path: &Path,
    address: &str,
    ops: &H,
    force: bool,
    policy: &CleanupPolicy,
) -> Result<Restored, RestoreError> {
    let expected = Mac::parse(&backup.hub.mac).ok_or_else(|| BackupError::Invalid {
        path: path.to_owned(),
        reason: format!("hub.mac {:?} is not a MAC", backup.hub.mac),
    })?;
    let reported = ops.mac().await.map_err(|e| RestoreError::Unreachable {
        address: address.to_owned(),
        error: e.to_string(),
    })?;
    let hub_mac = Mac::parse(&reported).ok_or_else(|| RestoreError::BadMac {
        address: address.to_owned(),
        reported,
    })?;
    let mac_matched = hub_mac == expected;
    if !mac_matched && !force {
        return Err(RestoreError::MacMismatch {
            address: address.to_owned(),
            hub: hub_mac,
            backup: expected,
            path: path.to_owned(),
        });
    }
    retry(
        policy,
        || restore_verified(ops, &backup.config_answer, policy),
        |_, _, _| {},
    )
    .await
    .map_err(|error| RestoreError::NotVerified {
        address: address.to_owned(),
        path: path.to_owned(),
        error,
    })?;
    Ok(Restored {
        hub_mac,
        mac_matched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::backup::HubIdentity;
    use crate::safety::teardown::undo::tests::FakeHub;
    use serde_json::json;
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    fn backup() -> Backup {
        Backup::from_value(
            HubIdentity {
                mac: "A1B2C3D4E5F6".into(),
                name: None,
                firmware: None,
                address: "127.0.0.1:1".into(),
            },
            &json!({"endpoints": [], "error": 0}),
        )
    }

    fn hub(mac: &str) -> FakeHub {
        FakeHub {
            mac: mac.into(),
            config: Mutex::new(json!({"endpoints": [{"id": 9}], "error": 0})),
            ..FakeHub::default()
        }
    }

    async fn go(h: &FakeHub, force: bool) -> Result<Restored, RestoreError> {
        restore(
            &backup(),
            Path::new("/b/x.json"),
            "127.0.0.1:1",
            h,
            force,
            &CleanupPolicy::default(),
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn restores_and_verifies() {
        let h = hub("a1:b2:c3:d4:e5:f6");
        let r = go(&h, false).await.unwrap();
        assert!(r.mac_matched);
        assert_eq!(*h.config.lock().unwrap(), backup().config);
    }

    #[tokio::test(start_paused = true)]
    async fn another_hub_is_refused_without_a_write_unless_forced() {
        let h = hub("11:22:33:44:55:66");
        let e = go(&h, false).await.unwrap_err();
        assert_eq!(e.exit_code(), exit_code::USAGE);
        assert_eq!(
            e.to_string(),
            "hub at 127.0.0.1:1 has MAC 11:22:33:44:55:66 but backup /b/x.json is of A1:B2:C3:D4:E5:F6; nothing written (pass --force to restore it anyway)"
        );
        assert_eq!(h.config_sets.load(Ordering::SeqCst), 0);
        let r = go(&h, true).await.unwrap();
        assert!(!r.mac_matched);
        assert_eq!(h.config_sets.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hub_that_does_not_keep_the_config_is_exit_5() {
        let h = FakeHub {
            mangle: true,
            ..hub("A1B2C3D4E5F6")
        };
        let e = go(&h, false).await.unwrap_err();
        assert_eq!(e.exit_code(), exit_code::HUB_MODIFIED);
        let msg = e.to_string();
        assert!(
            msg.contains("/b/x.json") && msg.contains("mangled"),
            "{msg}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_hub_is_exit_4() {
        let h = FakeHub {
            fail_first: 1.into(),
            ..hub("A1B2C3D4E5F6")
        };
        let e = go(&h, false).await.unwrap_err();
        assert_eq!(e.exit_code(), exit_code::NO_HUB);
        assert_eq!(h.config_sets.load(Ordering::SeqCst), 0);
    }
}
