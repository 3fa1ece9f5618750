//! The trials: the plan turned into one libtest-mimic trial per hub and
//! scenario (the filter applied as libtest-mimic applies it), `--jobs` hubs
//! in flight at once, and the cycles run (one, or a soak's many), each
//! trial handing its scenario to its hub's thread and waiting for the
//! verdict.

use std::sync::{mpsc, Mutex};
use std::time::Instant;

use libtest_mimic::{Completion, Trial};

use crate::error::FatalError;
use crate::report::sink::ReportSink;
use crate::report::soak_record::SoakReport;
use crate::scenario::{Scenario, Verdict};

use super::hub::Tally;
use super::targets::{Hub, Session};
use super::{json_stream, RunConfig};

/// The trials of a run, ready to run cycle after cycle.
pub(super) struct Trials {
    /// libtest's arguments, with at most `jobs` test threads.
    libtest: libtest_mimic::Arguments,
    /// Hubs in flight at once.
    jobs: usize,
    /// What each cycle runs, in order: (hub, scenario, kind); a soak's
    /// cycles repeat it with the cycle in the kind.
    selected: Vec<(usize, Scenario, String)>,
    filtered_out: usize,
    /// Per hub, the scenarios the filter keeps, so the hub's thread knows
    /// what to expect.
    pub(super) expected: Vec<Vec<Scenario>>,
    /// To each hub's thread.
    senders: Vec<mpsc::Sender<Job>>,
}

/// Build the trials, and per hub the scenarios the filter keeps (same
/// predicate libtest-mimic applies). Trials go scenario by scenario across
/// a batch of --jobs hubs (all by default), one test thread per hub of a
/// batch, so every hub of a batch makes progress at once and no more than
/// --jobs hubs are in flight. Returns the receiving end of each hub's
/// channel, for its thread.
pub(super) fn build_trials(
    cfg: &RunConfig,
    hubs: &[Hub],
) -> Result<(Trials, Vec<mpsc::Receiver<Job>>), FatalError> {
    let several = hubs.len() > 1;
    let jobs = jobs_for(cfg.jobs, hubs.len());
    let mut libtest = cfg.libtest.clone();
    libtest.test_threads = Some(libtest.test_threads.map_or(jobs, |t| t.min(jobs)));
    let mut trials = Vec::new();
    let mut selected: Vec<(usize, Scenario, String)> = Vec::new();
    let mut filtered_out = 0;
    let mut expected = vec![Vec::new(); hubs.len()];
    let (senders, receivers): (Vec<_>, Vec<_>) =
        hubs.iter().map(|_| mpsc::channel::<Job>()).unzip();
    let indices: Vec<usize> = (0..hubs.len()).collect();
    for batch in indices.chunks(jobs) {
        for s in cfg.scenarios() {
            for &i in batch {
                let mut trial = Trial::test(s.name(), || Ok(()));
                if several {
                    trial =
                        trial.with_kind(crate::report::escape::escape(&hubs[i].shown).into_owned());
                }
                if !libtest.is_filtered_out(&trial) {
                    expected[i].push(s);
                    selected.push((i, s, trial.kind().to_owned()));
                } else {
                    filtered_out += 1;
                }
                trials.push(trial);
            }
        }
    }
    // A filter that selects nothing is a mistake, said before any hub is
    // contacted.
    if selected.is_empty() {
        return Err(nothing_selected(&cfg.libtest));
    }
    Ok((
        Trials {
            libtest,
            jobs,
            selected,
            filtered_out,
            expected,
            senders,
        },
        receivers,
    ))
}

/// Run the hubs: the cycles, each running every trial once. The verdicts
/// come from the records; the printed lines only count the same trials.
/// With --format json the harness's own stream replaces libtest's lines,
/// and this drives the hubs instead. The human text is ours too: whole
/// lines through the one terminal writer, which never panics on a closed
/// stdout (it stops the run instead, see main). A soak runs the same
/// selection cycle after cycle, over the same session and hub threads; each
/// cycle is measured when its last scenario has ended. Returns the harness
/// error that stopped the cycles, if any, and the soak's report.
pub(super) fn run_cycles(
    cfg: &RunConfig,
    session: &Session,
    trials: Trials,
    sink: &ReportSink,
    tally: &Mutex<Tally>,
) -> (Option<String>, Option<SoakReport>) {
    sink.start(trials.expected.iter().map(Vec::len).sum());
    let json = json_stream(cfg);
    let soak = cfg.soak.repeat.is_soak();
    let ledger = &session.ledger;
    let items_of = |cycle: u32| -> Vec<crate::report::text::Item> {
        trials
            .selected
            .iter()
            .map(|(i, s, kind)| {
                let (tx, s) = (trials.senders[*i].clone(), *s);
                crate::report::text::Item {
                    kind: match (soak, kind.is_empty()) {
                        (false, _) => kind.clone(),
                        (true, true) => format!("cycle {cycle}"),
                        (true, false) => format!("cycle {cycle} {kind}"),
                    },
                    name: s.name().to_owned(),
                    lane: *i,
                    job: Box::new(move || text_result(ask(&tx, cycle, s))),
                }
            })
            .collect()
    };
    let mut harness_error = None;
    let mut cycles = Vec::new();
    let soak_started = Instant::now();
    let mut cycle = 1u32;
    while cfg.soak.repeat.another(cycle, soak_started.elapsed())
        && !cfg.safety.interrupt.is_interrupted()
        && harness_error.is_none()
    {
        let cycle_started = Instant::now();
        let opened_before = ledger.open_now().0;
        if json {
            drive(
                trials.senders.clone(),
                trials.expected.clone(),
                cycle,
                trials.libtest.test_threads == Some(1),
                trials.jobs,
            );
            if crate::report::stream::stdout_closed() {
                harness_error =
                    Some("stdout closed (broken pipe): the run stopped early".to_owned());
            }
        } else {
            let parallel = trials.libtest.test_threads.unwrap_or(trials.jobs);
            crate::report::text::run(
                trials.libtest.quiet,
                items_of(cycle),
                trials.filtered_out,
                parallel,
            );
        }
        if soak {
            let (total, open) = ledger.open_now();
            let t = std::mem::take(&mut *tally.lock().unwrap_or_else(|e| e.into_inner()));
            cycles.push(crate::report::soak_record::Cycle {
                cycle,
                passed: t.passed,
                failed: t.failures.len(),
                failures: t.failures,
                duration: cycle_started.elapsed(),
                connections_opened: total - opened_before,
                connections_total: total,
                connections_open: open,
                sockets_open: crate::report::soak_record::sockets_open(),
                rss_bytes: crate::report::soak_record::rss_bytes(),
            });
            if let Some(leak) = cfg.soak.debug_leak {
                leak.leak();
            }
        }
        cycle += 1;
    }
    if super::cleanup::DebugPanic::from_env().trials {
        panic!("VEGEHUB_HARNESS_DEBUG_PANIC: the run's trials fail on purpose");
    }
    // No more cycles: each hub's thread ends when its channel closes.
    drop(trials.senders);
    let soak_report = soak.then(|| SoakReport::new(cycles));
    if let Some(r) = &soak_report {
        sink.set_soak(r);
    }
    (harness_error, soak_report)
}

/// The error when the filter and `--skip` leave nothing to run.
pub(super) fn nothing_selected(args: &libtest_mimic::Arguments) -> FatalError {
    let mut what = Vec::new();
    if let Some(f) = &args.filter {
        what.push(format!(
            "filter {f:?}{}",
            if args.exact { " (--exact)" } else { "" }
        ));
    }
    for s in &args.skip {
        what.push(format!("--skip {s:?}"));
    }
    FatalError::NothingSelected(format!(
        "{} selected no scenario (scenarios of this plan: see --list); nothing was run",
        what.join(" and ")
    ))
}

/// A trial's verdict as the text report shows it.
fn text_result(r: Result<Completion, libtest_mimic::Failed>) -> crate::report::text::TrialResult {
    use crate::report::text::TrialResult;
    match r {
        Ok(Completion::Completed) => TrialResult::Passed,
        Ok(Completion::Ignored { reason }) => TrialResult::Ignored(reason.unwrap_or_default()),
        Err(f) => TrialResult::Failed(f.message().unwrap_or_default().to_owned()),
    }
}

/// `--format json`: ask each hub's thread for its scenarios in plan order,
/// one driver per hub (or all in turn with `--test-threads 1`), until done
/// or stdout is closed.
fn drive(
    senders: Vec<mpsc::Sender<Job>>,
    expected: Vec<Vec<Scenario>>,
    cycle: u32,
    one_thread: bool,
    jobs: usize,
) {
    let closed = crate::report::stream::stdout_closed;
    if one_thread {
        let longest = expected.iter().map(Vec::len).max().unwrap_or(0);
        for k in 0..longest {
            for (tx, list) in senders.iter().zip(&expected) {
                if let Some(&s) = list.get(k) {
                    if closed() {
                        return;
                    }
                    let _ = ask(tx, cycle, s);
                }
            }
        }
        return;
    }
    // --jobs: a batch of hubs at a time.
    let mut hubs: Vec<_> = senders.into_iter().zip(expected).collect();
    while !hubs.is_empty() {
        let rest = hubs.split_off(jobs.min(hubs.len()));
        std::thread::scope(|scope| {
            for (tx, list) in hubs {
                scope.spawn(move || {
                    for s in list {
                        if closed() {
                            break;
                        }
                        let _ = ask(&tx, cycle, s);
                    }
                });
            }
        });
        hubs = rest;
    }
}

/// Hubs in flight at once: `--jobs`, at most the number of hubs; all of
/// them by default.
fn jobs_for(jobs: Option<usize>, hubs: usize) -> usize {
    jobs.unwrap_or(hubs).clamp(1, hubs.max(1))
}

/// A trial asking its hub's thread to run one scenario of one cycle.
pub(super) struct Job {
    pub(super) cycle: u32,
    pub(super) scenario: Scenario,
    pub(super) reply: mpsc::Sender<Verdict>,
}

/// A trial's body: hand the scenario to its hub's thread and wait.
fn ask(
    tx: &mpsc::Sender<Job>,
    cycle: u32,
    scenario: Scenario,
) -> Result<Completion, libtest_mimic::Failed> {
    let (reply, answer) = mpsc::channel();
    tx.send(Job {
        cycle,
        scenario,
        reply,
    })
    .map_err(|_| "the hub's thread has stopped")?;
    match answer.recv() {
        Ok(Verdict::Pass) => Ok(Completion::Completed),
        Ok(Verdict::Skip(why)) => Ok(Completion::ignored_with(
            crate::report::escape::escape(&why).into_owned(),
        )),
        // libtest prints the message: hub text in it is escaped.
        Ok(Verdict::Fail(msg)) => Err(crate::report::escape::escape(&msg).into_owned().into()),
        Err(_) => Err("the hub's thread stopped before answering".into()),
    }
}
