//! `vegehub-harness restore BACKUP.json`: the thin command around
//! [`crate::safety::restore::restore`]; the only part of restore that prints.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::exit_code;
use crate::report::escape::escape;
use crate::safety::backup;
use crate::safety::restore::{restore, RestoreError};
use crate::safety::teardown::CleanupPolicy;
use crate::session::client::{self, HubClient, SessionConfig};

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup file written by a harness run (printed by the run, kept in
    /// --backup-dir).
    #[arg(value_name = "BACKUP.json")]
    pub backup: PathBuf,
    /// The hub to restore [default: the address recorded in the backup].
    #[arg(long, value_name = "HOST[:PORT]")]
    pub device: Option<String>,
    /// Restore even when the hub's MAC differs from the backup's.
    #[arg(long)]
    pub force: bool,
}

/// Run the `restore` command; returns the process exit code.
pub fn run(args: RestoreArgs) -> i32 {
    match run_inner(args) {
        Ok(()) => exit_code::SUCCESS,
        Err(e) => {
            eprintln!("vegehub-harness: error: {}", escape(&e.to_string()));
            e.exit_code()
        }
    }
}

fn run_inner(args: RestoreArgs) -> Result<(), RestoreError> {
    // Everything is validated before the first request.
    let b = backup::load(&args.backup)?;
    let address = args.device.clone().unwrap_or_else(|| b.hub.address.clone());
    let bad = |reason: String| RestoreError::BadAddress {
        address: address.clone(),
        reason,
    };
    let (host, port) = super::run_args::parse_device(&address).map_err(bad)?;
    let host_port = super::run_args::host_port(&host, port);
    // One runtime and one client for the command, as in a run.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(format!("cannot start the runtime: {e}")))?;
    let session = SessionConfig::default();
    let http = {
        let _enter = runtime.enter();
        // One request, no plan: `restore` has no connection gate, but the
        // client is still built the one way, through a session layer.
        let ledger =
            crate::session::ledger::Ledger::new(crate::session::ledger::DEFAULT_CONN_BUDGET);
        client::build_http(&session, ledger.new_session()).map_err(|e| bad(e.to_string()))?
    };
    let hub = HubClient::new(
        http,
        format!("http://{host_port}"),
        host_port.clone(),
        session,
        None,
    );
    let policy = CleanupPolicy::default();
    let r = runtime.block_on(restore(
        &b,
        &args.backup,
        &host_port,
        &hub,
        args.force,
        &policy,
    ));
    // Close the session before reporting: drop the client, then the
    // runtime awaits its connection tasks.
    drop(hub);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let r = r?;
    if !r.mac_matched {
        eprintln!(
            "vegehub-harness: warning: --force: wrote the backup of {} to hub {} (MAC {})",
            escape(&backup_mac(&b)),
            escape(&address),
            r.hub_mac
        );
    }
    let address = escape(&address);
    println!(
        "restored config of hub {}{} at {address} from {} (taken {} by harness {}): verified, reads back deep-equal",
        b.hub.name.as_deref().map(|n| format!("{} ", escape(n))).unwrap_or_default(),
        r.hub_mac,
        escape(&args.backup.display().to_string()),
        escape(&b.created_at),
        escape(&b.harness_version),
    );
    Ok(())
}

fn backup_mac(b: &backup::Backup) -> String {
    crate::device::Mac::parse(&b.hub.mac)
        .map(|m| m.to_string())
        .unwrap_or_else(|| b.hub.mac.clone())
}
