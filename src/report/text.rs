//! The human text output of a run, in libtest's shape (`running N tests`,
//! `test NAME ... ok`, the failures, `test result: ...`), printed by the
//! harness itself through the one terminal writer (`term`): each result
//! line is written whole when its scenario ends, so a note can never land
//! inside it, and a closed stdout cannot panic the run. `--format json`
//! stays libtest-mimic's (or its successor's) machine stream.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use colored::Colorize;

use super::term;

/// How one trial ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrialResult {
    Passed,
    Failed(String),
    Ignored(String),
}

/// One scenario on one hub, to be run on its lane (its hub's order).
pub struct Item {
    /// The hub's name in brackets when several hubs run; empty otherwise.
    pub kind: String,
    pub name: String,
    /// Items of one lane run one after the other, in order.
    pub lane: usize,
    pub job: Box<dyn FnOnce() -> TrialResult + Send>,
}

/// What the run's lines added up to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: usize,
    pub failed: usize,
    pub ignored: usize,
    pub filtered_out: usize,
}

fn label(kind: &str, name: &str) -> String {
    if kind.is_empty() {
        name.to_owned()
    } else {
        format!("[{kind}] {name}")
    }
}

/// `--list`: one line per scenario and hub, as a filter would name it.
pub fn list(items: &[(String, String)]) {
    let mut s = String::new();
    for (kind, name) in items {
        s.push_str(&format!("{}: test\n", label(kind, name)));
    }
    term::out(&s);
}

/// Run the items, lanes side by side (at most `parallel` lanes at once,
/// taken in order: `--jobs`, `--test-threads`), printing each result line
/// whole as it ends; then the failures and the result line.
pub fn run(terse: bool, items: Vec<Item>, filtered_out: usize, parallel: usize) -> Counts {
    let started = Instant::now();
    let n = items.len();
    term::out(&format!(
        "\nrunning {n} test{}\n",
        if n == 1 { "" } else { "s" }
    ));
    let name_width = items
        .iter()
        .map(|i| i.name.chars().count())
        .max()
        .unwrap_or(0);
    let kind_width = items
        .iter()
        .map(|i| match i.kind.chars().count() {
            0 => 0,
            k => k + 3,
        })
        .max()
        .unwrap_or(0);
    let mut lanes: Vec<Vec<(usize, Item)>> = Vec::new();
    let mut names = Vec::with_capacity(n);
    for (idx, item) in items.into_iter().enumerate() {
        names.push((item.kind.clone(), item.name.clone()));
        if lanes.len() <= item.lane {
            lanes.resize_with(item.lane + 1, Vec::new);
        }
        lanes[item.lane].push((idx, item));
    }
    let (tx, rx) = mpsc::channel::<(usize, TrialResult)>();
    let lanes: Vec<_> = lanes.into_iter().filter(|l| !l.is_empty()).collect();
    let workers = parallel.clamp(1, lanes.len().max(1));
    let queue = std::sync::Arc::new(std::sync::Mutex::new(lanes.into_iter()));
    let mut threads = Vec::new();
    for _ in 0..workers {
        let tx = tx.clone();
        let queue = queue.clone();
        let t = std::thread::Builder::new()
            .name("trials".into())
            .spawn(move || loop {
                let lane = match queue.lock() {
                    Ok(mut q) => q.next(),
                    Err(_) => None,
                };
                let Some(lane) = lane else { break };
                for (idx, item) in lane {
                    let r = (item.job)();
                    if tx.send((idx, r)).is_err() {
                        return;
                    }
                }
            });
        match t {
            Ok(t) => threads.push(t),
            Err(e) => term::err(&format!("vegehub-harness: error: starting a thread: {e}")),
        }
    }
    drop(tx);
    let mut counts = Counts {
        filtered_out,
        ..Counts::default()
    };
    let mut failures = Vec::new();
    for (idx, r) in rx {
        let (kind, name) = &names[idx];
        match &r {
            TrialResult::Passed => counts.passed += 1,
            TrialResult::Failed(m) => {
                counts.failed += 1;
                failures.push((label(kind, name), m.clone()));
            }
            TrialResult::Ignored(_) => counts.ignored += 1,
        }
        if terse {
            term::out(&match &r {
                TrialResult::Passed => ".".green().to_string(),
                TrialResult::Failed(_) => "F".red().to_string(),
                TrialResult::Ignored(_) => "i".yellow().to_string(),
            });
        } else {
            let kind = if kind.is_empty() {
                String::new()
            } else {
                format!("[{kind}] ")
            };
            term::out(&format!(
                "test {kind:<kind_width$}{name:<name_width$} ... {}\n",
                outcome(&r)
            ));
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let mut tail = String::new();
    if terse {
        tail.push('\n');
    }
    if !failures.is_empty() {
        tail.push_str("\nfailures:\n\n");
        for (name, msg) in &failures {
            tail.push_str(&format!("---- {name} ----\n{msg}\n\n"));
        }
        tail.push_str("\nfailures:\n");
        for (name, _) in &failures {
            tail.push_str(&format!("    {name}\n"));
        }
    }
    tail.push_str(&result_line(&counts, started.elapsed()));
    term::out(&tail);
    counts
}

fn outcome(r: &TrialResult) -> String {
    match r {
        TrialResult::Passed => "ok".green().to_string(),
        TrialResult::Failed(_) => "FAILED".red().to_string(),
        TrialResult::Ignored(why) => format!("ignored ({why})").yellow().to_string(),
    }
}

fn result_line(c: &Counts, elapsed: Duration) -> String {
    let verdict = if c.failed > 0 {
        "FAILED".red()
    } else {
        "ok".green()
    };
    format!(
        "\ntest result: {verdict}. {} passed; {} failed; {} ignored; 0 measured; {} filtered out; finished in {:.2}s\n\n",
        c.passed,
        c.failed,
        c.ignored,
        c.filtered_out,
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_counts_like_libtest() {
        colored::control::set_override(false);
        let c = Counts {
            passed: 3,
            failed: 1,
            ignored: 2,
            filtered_out: 4,
        };
        assert_eq!(
            result_line(&c, Duration::from_millis(1234)),
            "\ntest result: FAILED. 3 passed; 1 failed; 2 ignored; 0 measured; 4 filtered out; finished in 1.23s\n\n"
        );
        assert_eq!(
            outcome(&TrialResult::Ignored("not enabled".into())),
            "ignored (not enabled)"
        );
    }
}
