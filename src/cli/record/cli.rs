//! `vegehub-harness record --device HOST[:PORT] [--out FILE]`: the thin
//! command around [`super`]; the only part of record that prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::{compare, profile, read, redact, Mismatch, Reads, RecordError};
use crate::exit_code;
use crate::report::escape::escape;
use crate::session::client::{self, HubClient, SessionConfig};
use crate::sim::{Profile, SimOptions};

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The hub to record. Only read requests are sent: info/get,
    /// config/get and actuators/status.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub device: String,
    /// Write the profile here (e.g. fixtures/customer-hub.json) instead of
    /// to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// A failed `record`, with its exit code.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(
        "profile {where_} does NOT reproduce the hub: a simulator started from it answers differently at {}",
        list(.mismatches)
    )]
    Differs {
        where_: String,
        mismatches: Vec<Mismatch>,
    },
    #[error("{0}")]
    Write(String),
}

fn list(m: &[Mismatch]) -> String {
    m.iter()
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Failure {
    fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => exit_code::USAGE,
            Failure::Record(RecordError::Read { .. }) => exit_code::NO_HUB,
            Failure::Record(RecordError::NotAProfile { .. })
            | Failure::Differs { .. }
            | Failure::Write(_) => exit_code::SCENARIO_FAILED,
        }
    }
}

/// Run the `record` command; returns the process exit code.
pub fn run(args: RecordArgs) -> i32 {
    match run_inner(&args) {
        Ok(()) => exit_code::SUCCESS,
        Err(e) => {
            eprintln!("vegehub-harness: error: {}", escape(&e.to_string()));
            e.exit_code()
        }
    }
}

/// What one recording produced.
struct Recorded {
    text: String,
    hidden: Vec<String>,
    mismatches: Vec<Mismatch>,
    summary: String,
}

fn run_inner(args: &RecordArgs) -> Result<(), Failure> {
    // Everything is checked before the first request.
    let (host, port) = crate::cli::run_args::parse_device(&args.device)
        .map_err(|r| Failure::Usage(format!("--device {:?}: {r}", args.device)))?;
    if let Some(out) = &args.out {
        check_out(out, args.force)?;
    }
    let host_port = crate::cli::run_args::host_port(&host, port);
    // One runtime and one client for the command, as in a run.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start the runtime: {e}")))?;
    let session = SessionConfig::default();
    let http = {
        let _enter = runtime.enter();
        let ledger =
            crate::session::ledger::Ledger::new(crate::session::ledger::DEFAULT_CONN_BUDGET);
        client::build_http(&session, ledger.new_session())
            .map_err(|e| Failure::Usage(e.to_string()))?
    };
    let hub = HubClient::new(
        http.clone(),
        format!("http://{host_port}"),
        host_port.clone(),
        session.clone(),
        None,
    );
    let where_ = args
        .out
        .as_ref()
        .map_or_else(|| "(stdout)".to_owned(), |p| p.display().to_string());
    let result = runtime.block_on(record(&hub, http, session, &where_));
    // Close the session before reporting.
    drop(hub);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let r = result?;
    // The file is written even when it does not reproduce the hub, so the
    // difference can be looked at; the exit code says it is not faithful.
    match &args.out {
        Some(out) => write_atomic(out, &r.text)?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(r.text.as_bytes())
                .map_err(|e| Failure::Write(format!("writing the profile to stdout: {e}")))?;
        }
    }
    // Hub text (names, JSON keys) is escaped like every terminal line.
    eprintln!("{}", escape(&r.summary));
    if r.hidden.is_empty() {
        eprintln!("vegehub-harness: no value needed a placeholder");
    } else {
        eprintln!(
            "vegehub-harness: {} value(s) replaced by {:?}: {}",
            r.hidden.len(),
            super::PLACEHOLDER,
            escape(&r.hidden.join(", "))
        );
    }
    if !r.mismatches.is_empty() {
        return Err(Failure::Differs {
            where_,
            mismatches: r.mismatches,
        });
    }
    eprintln!(
        "vegehub-harness: verified: a simulator started from the profile answers info/get, config/get and actuators/status as the hub did (placeholders apart)"
    );
    Ok(())
}

/// Read, redact, build the profile, and prove it on an in-process simulator.
async fn record(
    hub: &HubClient,
    http: reqwest::Client,
    session: SessionConfig,
    where_: &str,
) -> Result<Recorded, Failure> {
    let reads = read(hub).await?;
    let (redacted, hidden) = redact(&reads);
    let doc = profile(hub.hub(), &redacted)?;
    let text = crate::report::escape::json_for_terminal(
        serde_json::to_string_pretty(&doc).expect("a JSON value serialises"),
    ) + "\n";
    // The simulator's own loader is the judge of the format.
    let loaded =
        Profile::parse(&text, Path::new(where_), where_).map_err(|e| RecordError::NotAProfile {
            hub: hub.hub().to_owned(),
            reason: e.to_string(),
        })?;
    let summary = format!(
        "vegehub-harness: recorded hub {} (MAC {}, firmware {}, {}) at {} into {where_}",
        loaded.name(),
        loaded.mac(),
        loaded.firmware(),
        loaded.generation(),
        hub.hub(),
    );
    let sim = crate::sim::spawn(SimOptions::new(loaded))
        .await
        .map_err(|e| Failure::Write(format!("cannot start a simulator to verify: {e}")))?;
    let sim_client = HubClient::new(http, sim.base_url(), sim.addr().to_string(), session, None);
    let sim_reads: Result<Reads, RecordError> = read(&sim_client).await;
    let _ = sim.stop().await;
    let mismatches = compare(&redacted, &sim_reads?);
    Ok(Recorded {
        text,
        hidden,
        mismatches,
        summary,
    })
}

fn check_out(out: &Path, force: bool) -> Result<(), Failure> {
    if out.is_dir() {
        return Err(Failure::Usage(format!(
            "--out {}: is a directory",
            out.display()
        )));
    }
    if out.exists() && !force {
        return Err(Failure::Usage(format!(
            "--out {}: exists (pass --force to replace it)",
            out.display()
        )));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Failure::Usage(format!(
            "--out {}: directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(())
}

/// Write through a temporary file in the same directory, then rename, so a
/// fixture is never left half written.
fn write_atomic(out: &Path, text: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::Write(format!("--out {}: {e}", out.display()));
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.persist(out).map_err(|e| fail(e.error))?;
    Ok(())
}
