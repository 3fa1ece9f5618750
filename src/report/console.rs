//! The console summary printed after the libtest lines: per hub, its
//! identity, the count of passed/failed/skipped scenarios, the reason of
//! every failure and skip, cleanup results, each measurement with its
//! value, limits and verdict, and the time taken; then the connection gate:
//! sessions, connections opened and closed, each leak.

use std::fmt::Write as _;

use colored::Colorize;

use super::escape::escape;
use crate::report::model::{HubReport, RunReport};
use crate::scenario::Verdict;

/// Render the summary (colour as set by `report::set_color`).
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    // One row per hub, then the details of the hubs that need a look (all
    // of them when there is only one).
    hub_table(&mut out, report);
    let one = report.hubs.len() == 1;
    for hub in &report.hubs {
        if one || hub.outcome().exit_code() != 0 {
            hub_summary(&mut out, hub);
        }
    }
    if let Some(gate) = &report.connections {
        connections_summary(&mut out, gate, one);
    }
    let code = report.exit_code();
    let verdict = match code {
        0 => "PASS".green().bold(),
        _ => "FAIL".red().bold(),
    };
    if let Some(r) = report.reports.as_ref().map(|s| s.record()) {
        let who: Vec<String> = [("station", &r.station), ("operator", &r.operator)]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
            .collect();
        if !who.is_empty() {
            let _ = writeln!(out, "{}", who.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "harness: {verdict} ({} hub(s), {:.2}s, exit code {})",
        report.hubs.len(),
        report.elapsed.as_secs_f64(),
        code
    );
    out
}

fn connections_summary(out: &mut String, gate: &crate::session::ledger::Verdict, per_hub: bool) {
    let _ = writeln!(out, "\n{}", "connections".bold());
    // With several hubs each one's count is in the table; the problems
    // below still name every hub over its budget.
    for line in gate
        .summary_lines()
        .into_iter()
        .filter(|l| per_hub || !l.starts_with("hub "))
    {
        // Lines name hubs (addresses, names): escaped like any hub text.
        let line = escape(&line).into_owned();
        let line = if line.contains("NOT confirmed") {
            line.yellow().bold().to_string()
        } else {
            line
        };
        let _ = writeln!(out, "  {line}");
    }
    for problem in gate.problems() {
        let _ = writeln!(
            out,
            "  {} {}",
            "FAIL".red().bold(),
            escape(&problem.to_string())
        );
    }
}

fn hub_summary(out: &mut String, hub: &HubReport) {
    let f = &hub.facts;
    let dash = || "?".to_string();
    let at = if hub.shown == hub.label {
        String::new()
    } else {
        format!(" at {}", escape(&hub.label))
    };
    let _ = writeln!(
        out,
        "\n{} {}{at} ({})",
        "hub".bold(),
        escape(&hub.shown).bold(),
        escape(&hub.source)
    );
    let mut id = vec![
        // Every string a hub supplied is escaped before it is printed.
        format!(
            "name {}",
            super::escape::escape_short(&f.name.clone().unwrap_or_else(dash), 64)
        ),
        format!(
            "mac {}",
            f.mac
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(dash)
        ),
    ];
    match f.info.known() {
        Some(i) => {
            id.push(format!(
                "firmware {}",
                super::escape::escape_short(&i.hub.version, 32)
            ));
            id.push(format!("power {}", i.power_source()));
            id.push(format!(
                "{} channels, {} actuators",
                i.hub.num_channels, i.hub.num_actuators
            ));
        }
        None => id.push("firmware ?".into()),
    }
    if let Some(g) = f.generation {
        id.push(format!("config {g}"));
    }
    id.push(format!("address {}", escape(&hub.base_url)));
    let _ = writeln!(out, "  {}", id.join(", "));
    if let crate::session::client::Contact::Unreachable(why) = &hub.contact {
        let _ = writeln!(out, "  {} {}", "unreachable:".red().bold(), escape(why));
    }

    let count = |p: fn(&Verdict) -> bool| hub.records.iter().filter(|r| p(&r.verdict)).count();
    let passed = count(|v| matches!(v, Verdict::Pass));
    let failed = count(|v| matches!(v, Verdict::Fail(_)));
    let skipped = count(|v| matches!(v, Verdict::Skip(_)));
    let flaky = hub.records.iter().filter(|r| r.flaky()).count();
    let _ = writeln!(
        out,
        "  {} passed{}, {} failed, {} skipped in {:.2}s",
        passed.to_string().green(),
        if flaky > 0 {
            format!(" ({} {})", flaky, "flaky".yellow().bold())
        } else {
            String::new()
        },
        if failed > 0 {
            failed.to_string().red().bold()
        } else {
            failed.to_string().normal()
        },
        skipped.to_string().yellow(),
        hub.elapsed().as_secs_f64()
    );
    for r in &hub.records {
        let tag = match &r.verdict {
            // nextest's way: a pass that needed a retry says so.
            Verdict::Pass if r.flaky() => "FLAKY".yellow().bold(),
            Verdict::Pass => "pass".green(),
            Verdict::Fail(_) => "FAIL".red().bold(),
            Verdict::Skip(_) => "skip".yellow(),
        };
        let mut line = format!(
            "  {tag} {:<18} {:>6.2}s",
            r.scenario.name(),
            r.duration.as_secs_f64()
        );
        if let Some(reason) = r.verdict.reason() {
            let _ = write!(line, "  {}", escape(reason));
        } else if !r.notes.is_empty() {
            let _ = write!(line, "  {}", escape(&r.notes.join("; ")).dimmed());
        }
        let _ = writeln!(out, "{line}");
        for i in &r.incidents {
            let kind = match i.kind {
                crate::session::client::IncidentKind::Retry => "retry",
                crate::session::client::IncidentKind::Reconnect => "reconnect",
                crate::session::client::IncidentKind::Reboot => "REBOOT",
            };
            let _ = writeln!(out, "       {}: {}", kind.yellow(), i.reason);
        }
        for c in &r.cleanup {
            let state = if c.verified {
                "verified".green()
            } else {
                "NOT VERIFIED (hub may be left modified)".red().bold()
            };
            let _ = writeln!(
                out,
                "       cleanup: {}: {state}: {}",
                escape(&c.what),
                escape(&c.detail)
            );
        }
        for m in &r.measurements {
            let verdict = match m.verdict {
                crate::scenario::measurement::Verdict::Pass => "pass".green(),
                crate::scenario::measurement::Verdict::Fail => "FAIL".red().bold(),
            };
            let unit = m.unit.map(|u| format!(" {u}")).unwrap_or_default();
            let measured = m
                .measured
                .as_ref()
                .map_or_else(|| "not measured".to_string(), |v| format!("{v}{unit}"));
            let limits = serde_json::Value::Object(m.limits.clone());
            let _ = writeln!(
                out,
                "       measure: {} ({}) = {}, limits {}: {verdict}",
                escape(&m.name),
                m.fact,
                escape(&measured),
                escape(&limits.to_string())
            );
        }
    }
    // What the run undid after the scenarios (interruption, error, panic).
    if let Some(u) = &hub.undo {
        let mut done: Vec<String> = Vec::new();
        if !u.slots_off.is_empty() {
            done.push(format!("slot(s) {:?} off", u.slots_off));
        }
        if let Some(p) = &u.config_restored {
            done.push(format!("config restored from {}", p.display()));
        }
        let state = if u.verified() {
            "verified".green()
        } else {
            "NOT VERIFIED (hub may be left modified)".red().bold()
        };
        let mut line = format!("  run cleanup: {state}");
        if !done.is_empty() {
            let _ = write!(line, ": {}", escape(&done.join(", ")));
        }
        if !u.errors.is_empty() {
            let _ = write!(line, "; {}", escape(&u.errors.join("; ")));
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(n) = &hub.sim_note {
        let _ = writeln!(out, "  {}", escape(n).dimmed());
    }
}

/// The per-hub table: one row per hub, so a shelf of hubs reads at a
/// glance. Names come from `HubFacts::display_name` (the same as the result
/// lines and `--list`), cut to keep the columns.
fn hub_table(out: &mut String, report: &RunReport) {
    let conns: std::collections::HashMap<&str, usize> = report
        .connections
        .iter()
        .flat_map(|v| &v.hubs)
        .map(|h| (h.hub.as_str(), h.connections))
        .collect();
    let rows: Vec<[String; 9]> = report
        .hubs
        .iter()
        .map(|hub| {
            let count =
                |p: fn(&Verdict) -> bool| hub.records.iter().filter(|r| p(&r.verdict)).count();
            let f = &hub.facts;
            [
                // Strings from the hub, escaped like every other.
                clip(&escape(&hub.shown), 32),
                f.mac.as_ref().map_or("?".into(), |m| m.as_str().to_owned()),
                f.info
                    .known()
                    .map_or("?".into(), |i| clip(&escape(&i.hub.version), 12)),
                count(|v| matches!(v, Verdict::Pass)).to_string(),
                count(|v| matches!(v, Verdict::Fail(_))).to_string(),
                count(|v| matches!(v, Verdict::Skip(_))).to_string(),
                conns
                    .get(hub.label.as_str())
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                format!("{:.2}s", hub.elapsed().as_secs_f64()),
                cleanup_state(hub).to_owned(),
            ]
        })
        .collect();
    let head = [
        "hub", "mac", "firmware", "passed", "failed", "skipped", "conns", "time", "cleanup",
    ];
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // Text columns left, numbers right.
    let cell = |i: usize, s: &str| {
        if (3..=7).contains(&i) {
            format!("{s:>w$}", w = width[i])
        } else {
            format!("{s:<w$}", w = width[i])
        }
    };
    let line = |cells: Vec<String>| format!("  {}", cells.join("  ").trim_end());
    let _ = writeln!(
        out,
        "\n{}",
        line(head.iter().enumerate().map(|(i, h)| cell(i, h)).collect()).bold()
    );
    for (row, hub) in rows.iter().zip(&report.hubs) {
        let text = line(row.iter().enumerate().map(|(i, c)| cell(i, c)).collect());
        let failed = hub.outcome().exit_code() != 0;
        let _ = writeln!(
            out,
            "{}",
            if failed { text.red().to_string() } else { text }
        );
    }
}

/// The cleanup column: nothing was owed, all undone and verified, or not.
fn cleanup_state(hub: &HubReport) -> &'static str {
    let owed = hub.undo.is_some() || hub.records.iter().any(|r| !r.cleanup.is_empty());
    match (owed, hub.outcome().hub_modified) {
        (false, _) => "none",
        (true, false) => "verified",
        (true, true) => "NOT VERIFIED",
    }
}

/// At most `max` characters, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
