//! The soak's console section: a table of cycles (every cycle when there
//! are few, else the first, the last, every failed one and evenly spaced
//! ones between), the figures of the first and last cycle, and the trend
//! verdict. Also the one-line form of a cycle the JUnit file uses.

use std::fmt::Write as _;

use crate::soak::{Cycle, SoakReport, MIN_CYCLES};

/// Rows shown before the table is thinned out.
const MAX_ROWS: usize = 20;

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "n/a".into(),
        |b| format!("{:.1} MiB", b as f64 / 1048576.0),
    )
}

fn count(n: Option<usize>) -> String {
    n.map_or_else(|| "n/a".into(), |n| n.to_string())
}

/// `cycle 3: pass, 41 ms, connections opened 0 (total 1), open 1, harness sockets 4, memory 12.3 MiB`.
pub fn cycle_line(c: &Cycle) -> String {
    format!(
        "cycle {}: {}, {} ms, connections opened {} (total {}), open {}, harness sockets {}, memory {}",
        c.cycle,
        if c.failed == 0 {
            "pass".to_owned()
        } else {
            format!("FAIL ({} failed)", c.failed)
        },
        c.duration.as_millis(),
        c.connections_opened,
        c.connections_total,
        count(c.connections_open),
        count(c.sockets_open),
        mib(c.rss_bytes),
    )
}

/// Why the trend was not judged.
pub fn not_judged(s: &SoakReport) -> String {
    format!(
        "{} cycle(s): a trend needs at least {MIN_CYCLES} (the first is warm-up)",
        s.cycles.len()
    )
}

/// The console section printed after the summary.
pub fn summary(s: &SoakReport) -> String {
    let mut out = String::new();
    let n = s.cycles.len();
    let _ = writeln!(out, "\nsoak: {n} cycle(s), {} failed", s.failed_cycles());
    let shown: Vec<&Cycle> = if n <= MAX_ROWS {
        s.cycles.iter().collect()
    } else {
        let step = n.div_ceil(MAX_ROWS - 2);
        s.cycles
            .iter()
            .enumerate()
            .filter(|(i, c)| *i == 0 || *i == n - 1 || i % step == 0 || c.failed > 0)
            .map(|(_, c)| c)
            .collect()
    };
    for c in &shown {
        let _ = writeln!(out, "  {}", cycle_line(c));
        for f in c.failures.iter().take(3) {
            // Hub text: escaped like every line the terminal gets.
            let _ = writeln!(out, "      {}", super::escape::escape(f));
        }
    }
    if shown.len() < n {
        let _ = writeln!(
            out,
            "  ({} of {n} cycles shown; every cycle is in the JSON record and JUnit file)",
            shown.len()
        );
    }
    if let (Some(first), Some(last)) = (s.cycles.first(), s.cycles.last()) {
        let total_ms: u128 = s.cycles.iter().map(|c| c.duration.as_millis()).sum();
        let _ = writeln!(
            out,
            "  time per cycle {:.1} ms on average; connections opened over the soak {}; memory cycle {} {} -> cycle {} {}",
            total_ms as f64 / n as f64,
            last.connections_total,
            first.cycle,
            mib(first.rss_bytes),
            last.cycle,
            mib(last.rss_bytes),
        );
    }
    if !s.judged {
        let _ = writeln!(out, "  trend: not judged, {}", not_judged(s));
    } else if s.trends.is_empty() {
        let _ = writeln!(
            out,
            "  trend: no growth (connections open, harness sockets, memory, duration)"
        );
    } else {
        for t in &s.trends {
            let _ = writeln!(out, "  SLOW LEAK: {}", t.message);
        }
    }
    out
}
