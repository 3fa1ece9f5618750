//! The listing (`--list`): what a run would run, named as the run names
//! it, without starting or changing anything.

use std::time::{Duration, Instant};

use libtest_mimic::Trial;

use crate::error::FatalError;
use crate::report::model::RunReport;
use crate::scenario::facts::{display_name, unique_names};
use crate::session::client::{self, HubClient, SessionConfig};
use crate::session::ledger::Ledger;

use super::targets::{host_port, identify};
use super::trials::nothing_selected;
use super::{json_stream, RunConfig, Target, TargetSpec};

/// List only: listing starts nothing and changes nothing. With several hubs
/// given by address, each is asked for its MAC (read-only), so the names
/// listed are the names the run prints and filters match.
pub(super) fn list_only(cfg: &RunConfig, started: Instant) -> Result<RunReport, FatalError> {
    let n = match &cfg.targets {
        TargetSpec::Given(t) => t.len(),
        TargetSpec::Discover(_) => 1,
    };
    let names = match &cfg.targets {
        TargetSpec::Given(t) if !json_stream(cfg) => {
            listed_names(t, &cfg.session, cfg.conn.budget)?
        }
        _ => Vec::new(),
    };
    let plan = cfg.scenarios();
    let names = &names;
    let trials = (0..n.max(1))
        .flat_map(|i| {
            plan.iter().map(move |&s| {
                let t = Trial::test(s.name(), || Ok(()));
                match names.get(i) {
                    Some(name) => t.with_kind(crate::report::escape::escape(name).into_owned()),
                    None if n > 1 => t.with_kind(format!("hub{}", i + 1)),
                    None => t,
                }
            })
        })
        .collect::<Vec<_>>();
    let selected: Vec<(String, String)> = trials
        .iter()
        .filter(|t| !cfg.libtest.is_filtered_out(t))
        .map(|t| (t.kind().to_owned(), t.name().to_owned()))
        .collect();
    if selected.is_empty() {
        return Err(nothing_selected(&cfg.libtest));
    }
    if json_stream(cfg) {
        // The stream names hubs by target, as its run events do.
        let hubs: Vec<Option<String>> = match &cfg.targets {
            TargetSpec::Given(t) => t.iter().map(|t| Some(host_port(t))).collect(),
            TargetSpec::Discover(_) => vec![None],
        };
        let names: Vec<&str> = plan
            .iter()
            .filter(|s| {
                !cfg.libtest
                    .is_filtered_out(&Trial::test(s.name(), || Ok(())))
            })
            .map(|s| s.name())
            .collect();
        // A closed stdout ends a listing quietly.
        let _ = crate::report::stream::list(&mut std::io::stdout().lock(), &hubs, &names);
    } else {
        crate::report::text::list(&selected);
    }
    Ok(RunReport {
        hubs: Vec::new(),
        interrupted: None,
        listed_only: true,
        elapsed: started.elapsed(),
        reports: None,
        connections: None,
        harness_error: None,
        soak: None,
    })
}

/// The names `--list` shows for the hubs of a run: the names the run
/// itself gives them (one hub has none: its lines carry no hub). Several
/// hubs given by address are asked for their MAC first, as the run does.
fn listed_names(
    targets: &[Target],
    session: &SessionConfig,
    budget: usize,
) -> Result<Vec<String>, FatalError> {
    if targets.len() < 2 {
        return Ok(Vec::new());
    }
    let mut names: Vec<(Option<String>, Option<crate::device::Mac>, String)> = Vec::new();
    for t in targets {
        match t {
            Target::Sim { profile } => {
                let p = crate::sim::Profile::load(profile)
                    .map_err(|e| FatalError::Usage(format!("--sim {profile}: {e:#}")))?;
                names.push((
                    Some(p.name().to_owned()),
                    Some(p.mac().clone()),
                    String::new(),
                ));
            }
            Target::Device { .. } => names.push((None, None, host_port(t))),
        }
    }
    let devices: Vec<usize> = (0..targets.len())
        .filter(|&i| matches!(targets[i], Target::Device { .. }))
        .collect();
    if !devices.is_empty() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FatalError::Other(anyhow::anyhow!("starting the async runtime: {e}")))?;
        let ledger = Ledger::new(budget);
        let http = {
            let _enter = runtime.enter();
            client::build_http(session, ledger.new_session())
                .map_err(|e| FatalError::Other(e.into()))?
        };
        let clients: Vec<HubClient> = devices
            .iter()
            .map(|&i| {
                let hp = &names[i].2;
                HubClient::new(
                    http.clone(),
                    format!("http://{hp}"),
                    hp.clone(),
                    session.clone(),
                    None,
                )
                .with_ledger(ledger.clone())
            })
            .collect();
        let macs = runtime.block_on(identify(&clients, &ledger, session));
        for (i, mac) in devices.into_iter().zip(macs) {
            names[i].1 = mac;
        }
        drop(clients);
        drop(http);
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
    Ok(unique_names(
        names
            .iter()
            .map(|(n, m, a)| display_name(n.as_deref(), m.as_ref(), a))
            .collect(),
    ))
}
