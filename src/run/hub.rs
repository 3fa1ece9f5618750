//! One hub's own thread: it runs the hub's scenarios in plan order, each
//! when its trial asks, as a task on the run's runtime; judges each (the
//! harness's own lag, redaction, the plan's measurements), records it, and
//! at the end undoes whatever the scenarios left owed on the hub.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::runtime::Handle;

use crate::error::FatalError;
use crate::plan::{Plan, Step};
use crate::report::model::HubReport;
use crate::report::sink::ReportSink;
use crate::scenario::{self, HubFacts, Record, Scenario, Verdict};
use crate::session::client::{Contact, HubClient};

use super::cleanup::{DebugPanic, HubCleanup};
use super::targets::{Hub, Session};
use super::trials::{Job, Trials};
use super::RunConfig;

/// What a hub's thread takes from the plan: each scenario's parameters and
/// measurements, and where to record each scenario as it ends.
pub(super) struct PlanCx {
    plan: Arc<Plan>,
    /// The reports and this hub's index in them.
    sink: (Arc<ReportSink>, usize),
    /// Undoes what the hub owes when its scenarios end (also the run's
    /// test-only panics).
    cleanup: HubCleanup,
    /// Verdicts of the cycle under way, over every hub (a soak's per-cycle
    /// pass/fail).
    tally: Arc<Mutex<Tally>>,
}

/// Verdicts of one cycle: passed (or skipped) and the failures.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) passed: usize,
    /// `HUB SCENARIO: message`.
    pub(super) failures: Vec<String>,
}

/// A hub's thread as the run holds it: the thread (its report, and the
/// panic that cut its scenarios short, if any), and what the run needs to
/// undo what the hub owes should the thread die past its own cleanup.
pub(super) struct Worker {
    thread: JoinHandle<(HubReport, Option<String>)>,
    cleanup: HubCleanup,
    /// The hub's index in the reports, and when its thread started.
    index: usize,
    started: Instant,
}

/// Start each hub's thread, registered with the reports; each waits for
/// its trials.
pub(super) fn spawn_hubs(
    cfg: &RunConfig,
    session: &Session,
    hubs: Vec<Hub>,
    trials: &Trials,
    receivers: Vec<mpsc::Receiver<Job>>,
    sink: &Arc<ReportSink>,
    tally: &Arc<Mutex<Tally>>,
) -> Result<Vec<Worker>, FatalError> {
    let plan = Arc::new(cfg.plan.clone());
    let mut workers = Vec::new();
    let debug = DebugPanic::from_env();
    for ((hub, expected), rx) in hubs.into_iter().zip(trials.expected.clone()).zip(receivers) {
        let handle = session.runtime.handle().clone();
        let label = hub.label.clone();
        let facts = HubFacts {
            name: hub.name.clone(),
            ..HubFacts::default()
        };
        let index = sink.add_hub(&hub.label, &facts, hub.found.as_ref());
        let cleanup = HubCleanup {
            label: hub.label.clone(),
            client: hub.client.clone(),
            safety: hub.options.safety.clone(),
            ledger: hub.ledger.clone(),
            debug: debug.clone(),
            undone: Arc::default(),
        };
        let ctx = PlanCx {
            plan: plan.clone(),
            sink: (sink.clone(), index),
            cleanup: cleanup.clone(),
            tally: tally.clone(),
        };
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name(format!("hub {label}"))
            .spawn(move || hub_thread(handle, hub, expected, rx, ctx))
            .map_err(|e| {
                FatalError::Other(anyhow::anyhow!("starting the thread for {label}: {e}"))
            })?;
        workers.push(Worker {
            thread,
            cleanup,
            index,
            started,
        });
    }
    Ok(workers)
}

/// Wait for every hub's thread to end (their channels are closed). A hub
/// thread only panics on a harness bug; it undoes what its hub owes all the
/// same, and the run still closes its session and writes its reports, with
/// the panic as its harness error. A thread that died past its own cleanup
/// has what its hub owes undone here, over the session, before the
/// connection gate.
pub(super) fn join_hubs(
    workers: Vec<Worker>,
    rt: &Handle,
    sink: &ReportSink,
    harness_error: &mut Option<String>,
) -> Vec<HubReport> {
    let mut reports = Vec::new();
    for w in workers {
        let panicked = match w.thread.join() {
            Ok((report, panicked)) => {
                reports.push(report);
                panicked
            }
            Err(p) => {
                w.cleanup.undo_owed(rt);
                if let Some(undo) = w.cleanup.undone() {
                    sink.hub_done(w.index, w.started.elapsed(), Some(&undo));
                }
                Some(scenario::setup::panic_message(&*p))
            }
        };
        if let Some(m) = panicked {
            harness_error.get_or_insert(format!("a hub thread panicked: {m}"));
        }
    }
    reports
}

/// One hub's thread: run the expected scenarios in plan order, each when
/// its trial asks, on the run's runtime; then close the hub. A panic
/// outside any scenario (a harness bug) ends the scenarios, not the
/// cleanup: it is handed back with the report.
fn hub_thread(
    rt: Handle,
    hub: Hub,
    expected: Vec<Scenario>,
    rx: mpsc::Receiver<Job>,
    ctx: PlanCx,
) -> (HubReport, Option<String>) {
    let started = Instant::now();
    let mut facts = HubFacts {
        name: hub.name.clone(),
        ..HubFacts::default()
    };
    let mut records = Vec::new();
    // The channel goes with the scenarios: once they end, however, the
    // trials still waiting are told at once, not after the cleanup.
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_plan(&rt, &hub, &expected, rx, &ctx, &mut facts, &mut records)
    }))
    .err()
    .map(|p| scenario::setup::panic_message(&*p));
    let report = close_hub(&rt, hub, facts, records, started, &ctx);
    (report, panicked)
}

/// Run the expected scenarios, cycle after cycle (one without a soak),
/// until the trials stop coming.
fn run_plan(
    rt: &Handle,
    hub: &Hub,
    expected: &[Scenario],
    rx: mpsc::Receiver<Job>,
    ctx: &PlanCx,
    facts: &mut HubFacts,
    records: &mut Vec<Record>,
) {
    let (sink, index) = (&ctx.sink.0, ctx.sink.1);
    let mut waiting: HashMap<(u32, Scenario), mpsc::Sender<Verdict>> = HashMap::new();
    let mut first = true;
    'plan: for cycle in 1u32.. {
        if expected.is_empty() {
            // Nothing of this hub's passes the filter: wait for the end.
            let _ = rx.recv();
            break;
        }
        for (k, &s) in expected.iter().enumerate() {
            // With several test threads, trials may ask out of order: keep the
            // early ones until their turn.
            let reply = loop {
                if let Some(r) = waiting.remove(&(cycle, s)) {
                    break r;
                }
                match rx.recv() {
                    Ok(job) => {
                        waiting.insert((job.cycle, job.scenario), job.reply);
                    }
                    Err(_) => break 'plan,
                }
            };
            let step = ctx
                .plan
                .steps
                .iter()
                .find(|st| st.scenario().name() == s.name())
                .expect("every expected scenario comes from the plan");
            // A soak's later cycle starts from the hub as it was: what an
            // earlier one left owed (its own cleanup failed) is undone
            // now, not hours later at the end of the run.
            if k == 0 && cycle > 1 && !hub.options.safety.interrupt.is_interrupted() {
                ctx.cleanup.undo_new_debt(rt);
            }
            sink.scenario_started(index, s, cycle);
            let (mut record, over) = run_scenario(rt, hub, s, step, facts, first);
            first = false;
            // Out of its budget, stopped where it was: what it changed is
            // undone now, on cleanup's own clock, before the next scenario.
            if over {
                ctx.cleanup.undo_owed(rt);
            }
            let verdict = record.verdict.clone();
            {
                let mut t = ctx.tally.lock().unwrap_or_else(|e| e.into_inner());
                match &verdict {
                    Verdict::Fail(m) => t.failures.push(format!("{} {s}: {m}", hub.label)),
                    _ => t.passed += 1,
                }
            }
            // A soak keeps the first cycle whole and, of later cycles, what
            // failed or left something owed: memory stays flat over a long
            // soak, and every failure is still in the reports.
            let keep = cycle == 1
                || matches!(record.verdict, Verdict::Fail(_))
                || record.cleanup.iter().any(|c| !c.verified);
            if keep {
                if cycle > 1 {
                    if let Verdict::Fail(m) = &record.verdict {
                        record.verdict = Verdict::Fail(format!("cycle {cycle}: {m}"));
                    }
                }
                sink.scenario_done(index, facts, &record);
                records.push(record);
            } else {
                sink.scenario_not_kept(index);
            }
            let _ = reply.send(verdict);
            if ctx.cleanup.debug.hub_thread {
                panic!("VEGEHUB_HARNESS_DEBUG_PANIC: the hub's thread fails on purpose");
            }
        }
    }
}

/// Run one scenario on the hub and judge it: not run when interrupted, the
/// hub unreachable or the plan denies it; else run as a task on the
/// runtime, stopped where it is by a signal or at the end of its budget
/// (then `true`: what it changed is owed), a panic caught as its failure.
/// Then judged: see [`judge`].
fn run_scenario(
    rt: &Handle,
    hub: &Hub,
    s: Scenario,
    step: &Step,
    facts: &mut HubFacts,
    first: bool,
) -> (Record, bool) {
    let safety = &hub.options.safety;
    let interrupt = &safety.interrupt;
    let options = step.options(&hub.options);
    let client = hub.client.with_limits(step.timeout, step.retries);
    let scenario_started = Instant::now();
    let not_run = |v| (Record::not_run(s, v), false);
    let (record, over) = match hub.client.contact() {
        _ if interrupt.is_interrupted() => not_run(Verdict::Skip(format!(
            "not run: interrupted by {}",
            interrupt.signal().expect("interrupted")
        ))),
        // Unreachable before any answer: later scenarios would only
        // pile up connection timeouts.
        Contact::Unreachable(why) => not_run(Verdict::Skip(format!("hub unreachable ({why})"))),
        _ if step.denied_by_plan().is_some() => {
            not_run(Verdict::Skip(step.denied_by_plan().unwrap_or_default()))
        }
        // A signal stops the scenario where it is; what it changed is
        // in the obligations and is undone below.
        _ => std::panic::catch_unwind(AssertUnwindSafe(|| {
            hub.ledger.set_scenario(&hub.label, Some(s.name()));
            let _ = client.take_lagged();
            if hub.debug_leak && first {
                // At the start of the first scenario: the pool is empty,
                // so the leak gets a connection of its own, opened
                // during this scenario.
                let _enter = rt.enter();
                client.debug_leak();
            }
            // The scenario runs as a task on the runtime, beside the
            // connection tasks it talks through, and this thread waits
            // for its end: one wake-up per scenario, not per request
            // (with hundreds of hubs, cross-thread wake-ups were most
            // of the harness's CPU).
            let (c, o, i) = (client.clone(), options.clone(), interrupt.clone());
            let mut f = std::mem::take(facts);
            let budget = step.budget();
            let task = rt.spawn(async move {
                let (r, over) = tokio::select! {
                    r = within_budget(s, budget, s.run(&c, &mut f, &o)) => {
                        let over = r.is_err();
                        (r, over)
                    }
                    sig = i.wait() => (Err(format!("interrupted by {sig}")), false),
                };
                // Stopped where it was: its true time, and what it
                // exchanged and ran into so far.
                let r =
                    r.unwrap_or_else(|why| stopped(s, Verdict::Fail(why), scenario_started, &c));
                (r, f, over)
            });
            let (record, f, over) = match rt.block_on(task) {
                Ok(done) => done,
                // A panic in the scenario is this closure's panic.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => std::panic::panic_any(format!("the scenario's task ended: {e}")),
            };
            *facts = f;
            hub.ledger.set_scenario(&hub.label, None);
            (record, over)
        }))
        .unwrap_or_else(|p| {
            let why = format!("{s} panicked: {}", scenario::setup::panic_message(&*p));
            (
                stopped(s, Verdict::Fail(why), scenario_started, &client),
                false,
            )
        }),
    };
    (judge(record, &client, step, facts, &safety.redactor), over)
}

/// Run a scenario within its wall-clock budget; past it, the scenario is
/// dropped where it is (the one-line reason names it and the budget). Its
/// changes are in the obligations, undone by cleanup on cleanup's clock.
async fn within_budget<T>(
    s: Scenario,
    budget: std::time::Duration,
    run: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout(budget, run).await.map_err(|_| {
        format!(
            "{s}: did not finish within its {} budget (--scenario-timeout)",
            crate::device::duration::FlagDuration(budget)
        )
    })
}

/// The record of a scenario stopped before its end: its true time, and
/// what it exchanged and ran into so far.
fn stopped(s: Scenario, verdict: Verdict, started: Instant, client: &HubClient) -> Record {
    let mut r = Record::not_run(s, verdict);
    r.duration = started.elapsed();
    r.exchanges = client.take_exchanges();
    r.incidents = client.take_incidents();
    r
}

/// Judge a scenario's record: a failure on a timeout the harness caused
/// is inconclusive, secrets are scrubbed, and the plan's measurements are
/// taken.
fn judge(
    mut record: Record,
    client: &HubClient,
    step: &Step,
    facts: &HubFacts,
    redactor: &crate::safety::redact::Redactor,
) -> Record {
    // A scenario that failed on a timeout the harness caused (it fell
    // behind even after giving the hub its time again) is
    // inconclusive: the hub is not blamed for the harness's load.
    let lagged = client.take_lagged();
    if let (Verdict::Fail(msg), Some(first)) = (&record.verdict, lagged.first()) {
        record.verdict = Verdict::Skip(format!(
            "inconclusive, not counted against the hub: {first} (the scenario said: {msg})"
        ));
    }
    record = redact_record(record, redactor);
    // The plan's measurements for this scenario: each judged on its own;
    // any that fails fails the scenario. A skipped scenario measured
    // nothing.
    if !matches!(record.verdict, Verdict::Skip(_)) {
        record.measurements = step.measure(facts);
        if let Some(msg) = crate::scenario::measurement::failure_message(&record.measurements) {
            record.verdict = match record.verdict {
                Verdict::Fail(m) => Verdict::Fail(format!("{m}; {msg}")),
                _ => Verdict::Fail(msg),
            };
        }
    }
    record
}

/// Close the hub: undo whatever the scenarios left owed (see
/// [`HubCleanup::undo_owed`]), and report the hub.
fn close_hub(
    rt: &Handle,
    hub: Hub,
    mut facts: HubFacts,
    records: Vec<Record>,
    started: Instant,
    ctx: &PlanCx,
) -> HubReport {
    if ctx.cleanup.debug.close {
        panic!("VEGEHUB_HARNESS_DEBUG_PANIC: the hub's thread fails on purpose as it closes");
    }
    ctx.cleanup.undo_owed(rt);
    let undo = ctx.cleanup.undone();
    let elapsed = started.elapsed();
    ctx.sink.0.hub_done(ctx.sink.1, elapsed, undo.as_ref());
    // What identified the hub before the run, if no scenario read it.
    if facts.mac.is_none() {
        facts.mac = hub.mac.clone();
    }
    HubReport {
        shown: hub.shown,
        elapsed,
        undo,
        base_url: hub.client.base_url().to_owned(),
        contact: hub.client.contact(),
        label: hub.label,
        source: hub.source,
        facts,
        records,
        sim_note: None,
    }
}

/// Keep secrets out of every report: learn them from the configs the
/// scenario exchanged, then scrub the texts a report prints.
fn redact_record(mut r: Record, redactor: &crate::safety::redact::Redactor) -> Record {
    for x in &r.exchanges {
        if let Some(b) = &x.request_body {
            redactor.learn(b);
        }
        // The text, so a number keeps the hub's spelling.
        if let Some(b) = &x.response_body {
            redactor.learn_text(b);
        }
    }
    r.verdict = match r.verdict {
        Verdict::Fail(m) => Verdict::Fail(redactor.scrub(&m)),
        Verdict::Skip(m) => Verdict::Skip(redactor.scrub(&m)),
        v => v,
    };
    r.notes = r.notes.iter().map(|n| redactor.scrub(n)).collect();
    for c in &mut r.cleanup {
        c.detail = redactor.scrub(&c.detail);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A scenario that takes `secs` of (paused) time, within a 60 s budget.
    async fn after(secs: u64) -> Result<u64, String> {
        let run = async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            secs
        };
        within_budget(Scenario::Info, Duration::from_secs(60), run).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_scenario_is_stopped_at_its_budget_and_not_before() {
        assert_eq!(after(59).await, Ok(59));
        let start = tokio::time::Instant::now();
        assert_eq!(
            after(3600).await,
            Err("info: did not finish within its 60s budget (--scenario-timeout)".into())
        );
        // Stopped at the budget, not at the scenario's own end.
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }
}
