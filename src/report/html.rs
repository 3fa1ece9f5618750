//! The HTML report (`--report-html FILE`): one self-contained page (inline
//! style, no scripts, no network resources) a technician can attach to a
//! ticket. Rendered from the run record, so it shows the same counts: the
//! run's status, station and operator; a table of hubs; per hub each
//! scenario with outcome, duration and failure, measurements against their
//! limits drawn as small bars, the (already redacted) exchanges of failed
//! scenarios, retries and reboots, the cleanup outcome with restore
//! commands; and the connection ledger. Every string is escaped: hub
//! strings are untrusted.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::json::{CleanupStatus, HubRecord, Outcome, RunRecord, ScenarioRecord};
use crate::scenario::measurement::{MeasurementRecord, Verdict};

const STYLE: &str = "
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d8dde6;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;min-width:60%}
th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f8;font-weight:600}
.meta{color:#4a5566;margin:0 0 12px}
.counts span{display:inline-block;margin:0 14px 6px 0;padding:4px 10px;border-radius:4px;background:#f2f4f8}
.b{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.passed,.verified,.finished,.nothing_owed{background:#2e7d32}.failed,.left_modified,.error,.aborted{background:#c62828}
.skipped,.pending,.running{background:#8d6e00}.flaky,.interrupted{background:#ef6c00}
.bar{position:relative;display:inline-block;width:160px;height:10px;background:#e6e9ef;border-radius:5px;vertical-align:middle;margin-right:6px}
.band{position:absolute;top:0;height:10px;background:#a5d6a7;border-radius:5px}
.mark{position:absolute;top:-3px;width:3px;height:16px;background:#1d2430}
.mark.fail{background:#c62828}
pre{background:#f7f8fa;border:1px solid #e1e5ec;padding:6px;overflow-x:auto;max-height:300px;margin:4px 0}
code{background:#f2f4f8;padding:1px 4px;border-radius:3px}
details{margin:4px 0}
";

/// The whole page.
pub fn render(r: &RunRecord) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>vegehub-harness run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        h(&r.started_at)
    );
    // Green only for a run that ended well: a finished run with exit code 5
    // is not good news.
    let class = match (r.status.as_str(), r.exit_code) {
        ("finished", Some(c)) if c != 0 => "failed",
        (s, _) => s,
    };
    let _ = writeln!(
        o,
        "<h1>vegehub-harness run <span class=\"b {class}\" id=\"run-status\">{}</span></h1>",
        r.status.as_str()
    );
    let opt = |v: &Option<String>| v.as_deref().map(h).unwrap_or_else(|| "&#8212;".into());
    let _ = writeln!(
        o,
        "<p class=\"meta\">harness {} &#183; started {} &#183; finished {} &#183; {} &#183; exit code <b id=\"exit-code\">{}</b><br/>\
         station <b id=\"station\">{}</b> &#183; operator <b id=\"operator\">{}</b> &#183; plan {}</p>",
        h(r.harness.version),
        h(&r.started_at),
        opt(&r.finished_at),
        r.duration_ms.map(dur).unwrap_or_else(|| "still running".into()),
        r.exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "&#8212;".into()),
        opt(&r.station),
        opt(&r.operator),
        h(&r.plan.source)
    );
    if let Some(e) = &r.error {
        let _ = writeln!(o, "<p id=\"run-error\"><b>{}</b></p>", h(e));
    }
    let s = &r.summary;
    let _ = writeln!(o, "<p class=\"counts\">");
    for (k, v) in [
        ("hubs", s.hubs),
        ("scenarios", s.scenarios),
        ("passed", s.passed),
        ("failed", s.failed),
        ("skipped", s.skipped),
        ("flaky", s.flaky),
        ("hubs_left_modified", s.hubs_left_modified),
    ] {
        let _ = writeln!(
            o,
            "<span>{} <b data-count=\"{k}\">{v}</b></span>",
            k.replace('_', " ")
        );
    }
    let _ = writeln!(o, "</p>");

    o.push_str("<h2>Hubs</h2>\n<table id=\"hubs\">\n<tr><th>hub</th><th>name</th><th>MAC</th><th>firmware</th><th>passed</th><th>failed</th><th>skipped</th><th>flaky</th><th>time</th><th>cleanup</th></tr>\n");
    for hub in &r.hubs {
        let count = |oc: Outcome| hub.scenarios.iter().filter(|s| s.outcome == oc).count();
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"b {}\">{}</span></td></tr>",
            anchor(hub),
            h(&hub.target),
            opt(&hub.identity.name),
            opt(&hub.identity.mac),
            opt(&hub.identity.firmware),
            count(Outcome::Passed),
            count(Outcome::Failed),
            count(Outcome::Skipped),
            hub.scenarios.iter().filter(|s| s.flaky).count(),
            hub.duration_ms.map(dur).unwrap_or_else(|| "running".into()),
            hub.cleanup.status.as_str(),
            hub.cleanup.status.as_str().replace('_', " ")
        );
    }
    o.push_str("</table>\n");

    for hub in &r.hubs {
        hub_section(&mut o, hub);
    }
    ledger_section(&mut o, r.ledger.as_ref());
    o.push_str("</body>\n</html>\n");
    o
}

fn anchor(hub: &HubRecord) -> String {
    let id: String = hub
        .target
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("hub-{id}")
}

fn hub_section(o: &mut String, hub: &HubRecord) {
    let _ = writeln!(
        o,
        "<h2 id=\"{}\">Hub {}{}</h2>",
        anchor(hub),
        h(&hub.target),
        hub.identity
            .name
            .as_deref()
            .map(|n| format!(" &#8212; {}", h(n)))
            .unwrap_or_default()
    );
    if !hub.identity.addresses.is_empty() {
        let _ = writeln!(
            o,
            "<p class=\"meta\">addresses {}</p>",
            h(&hub.identity.addresses.join(", "))
        );
    }
    o.push_str("<table class=\"scenarios\">\n<tr><th>scenario</th><th>outcome</th><th>time</th><th>message</th></tr>\n");
    for s in &hub.scenarios {
        let outcome = match s.outcome {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        };
        let flaky = if s.flaky {
            " <span class=\"b flaky\">flaky</span>"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td><span class=\"b {outcome}\" data-outcome=\"{outcome}\">{outcome}</span>{flaky}</td><td>{}</td><td>{}</td></tr>",
            h(&s.name),
            dur(s.duration_ms),
            s.message.as_deref().map(h).unwrap_or_default()
        );
    }
    o.push_str("</table>\n");
    for s in &hub.scenarios {
        scenario_details(o, s);
    }
    cleanup_section(o, hub);
}

fn scenario_details(o: &mut String, s: &ScenarioRecord) {
    if s.measurements.is_empty() && s.incidents.is_empty() && s.exchanges.is_empty() {
        return;
    }
    let _ = writeln!(o, "<h3>{}</h3>", h(&s.name));
    if !s.measurements.is_empty() {
        o.push_str("<table class=\"measurements\">\n<tr><th>measurement</th><th>value</th><th>limits</th><th></th><th>verdict</th></tr>\n");
        for m in &s.measurements {
            measurement_row(o, m);
        }
        o.push_str("</table>\n");
    }
    if !s.incidents.is_empty() {
        o.push_str("<ul class=\"incidents\">\n");
        for i in &s.incidents {
            let kind = i.kind_name();
            let _ = writeln!(
                o,
                "<li><b>{}</b> at {} (+{}): {}</li>",
                h(&kind),
                h(&i.at),
                dur(i.at_ms),
                h(&i.reason)
            );
        }
        o.push_str("</ul>\n");
    }
    if !s.exchanges.is_empty() {
        let _ = writeln!(
            o,
            "<details><summary>{} HTTP exchange(s), secrets redacted</summary>",
            s.exchanges.len()
        );
        for e in &s.exchanges {
            let answer = match (e.status, &e.error) {
                (Some(c), _) => c.to_string(),
                (None, Some(err)) => err.clone(),
                (None, None) => "no answer".into(),
            };
            let _ = writeln!(
                o,
                "<p><code>{} {}</code> &#8594; {} (+{} ms, {} ms)</p>",
                h(&e.method),
                h(&e.path),
                h(&answer),
                e.at_ms,
                e.duration_ms
            );
            for (label, body) in [("request", &e.request_body), ("answer", &e.response_body)] {
                if let Some(b) = body {
                    let text = match b {
                        Value::String(s) => s.clone(),
                        v => serde_json::to_string_pretty(v).unwrap_or_default(),
                    };
                    let _ = writeln!(o, "<pre>{label}: {}</pre>", h(&text));
                }
            }
        }
        o.push_str("</details>\n");
    }
}

fn measurement_row(o: &mut String, m: &MeasurementRecord) {
    let unit = m.unit.map(|u| format!(" {}", h(u))).unwrap_or_default();
    let value = match &m.measured {
        None => "not measured".to_string(),
        Some(Value::String(s)) => format!("{}{unit}", h(s)),
        Some(v) => format!("{}{unit}", h(&v.to_string())),
    };
    let limits: Vec<String> = m
        .limits
        .iter()
        .map(|(k, v)| format!("{} {}", h(k), h(&v.to_string())))
        .collect();
    let verdict = match m.verdict {
        Verdict::Pass => "passed",
        Verdict::Fail => "failed",
    };
    let _ = writeln!(
        o,
        "<tr><td>{} <small>({})</small></td><td>{value}</td><td>{}</td><td>{}</td><td><span class=\"b {verdict}\">{}</span>{}</td></tr>",
        h(&m.name),
        h(&m.fact.to_string()),
        limits.join(", "),
        bar(m),
        if verdict == "passed" { "pass" } else { "FAIL" },
        m.message
            .as_deref()
            .map(|msg| format!("<br/><small>{}</small>", h(msg)))
            .unwrap_or_default()
    );
}

/// A small bar: the allowed range as a green band, the measured value as a
/// mark. Only for numbers with numeric limits.
fn bar(m: &MeasurementRecord) -> String {
    let Some(v) = m.measured.as_ref().and_then(Value::as_f64) else {
        return String::new();
    };
    let num = |k: &str| m.limits.get(k).and_then(Value::as_f64);
    let (lo, hi) = match (num("at_least"), num("at_most"), num("equals")) {
        (_, _, Some(e)) => (Some(e), Some(e)),
        (lo, hi, None) => (lo, hi),
    };
    if lo.is_none() && hi.is_none() {
        return String::new();
    }
    // The scale covers the limits and the value, with a margin.
    let points: Vec<f64> = [lo, hi, Some(v)].into_iter().flatten().collect();
    let (mut min, mut max) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let pad = ((max - min).abs() * 0.15).max(v.abs() * 0.05).max(1.0);
    min -= pad;
    max += pad;
    let pos = |x: f64| ((x - min) / (max - min) * 100.0).clamp(0.0, 100.0);
    // An `equals` limit is a point: drawn 3% wide around it, to be seen.
    let (band_lo, band_hi) = match (lo, hi) {
        (Some(l), Some(h)) if l == h => ((pos(l) - 1.5).max(0.0), (pos(l) + 1.5).min(100.0)),
        _ => (pos(lo.unwrap_or(min)), pos(hi.unwrap_or(max))),
    };
    let fail = if m.verdict == Verdict::Fail {
        " fail"
    } else {
        ""
    };
    format!(
        "<span class=\"bar\" title=\"limits and value\"><span class=\"band\" style=\"left:{band_lo:.1}%;width:{:.1}%\"></span><span class=\"mark{fail}\" style=\"left:{:.1}%\"></span></span>",
        (band_hi - band_lo).max(1.0),
        pos(v)
    )
}

fn cleanup_section(o: &mut String, hub: &HubRecord) {
    let c = &hub.cleanup;
    let _ = writeln!(
        o,
        "<h3>Cleanup <span class=\"b {0}\" data-cleanup=\"{0}\">{1}</span></h3>",
        c.status.as_str(),
        c.status.as_str().replace('_', " ")
    );
    if c.obligations.is_empty() {
        o.push_str("<p class=\"meta\">nothing was changed on this hub</p>\n");
        return;
    }
    o.push_str("<table class=\"cleanup\">\n<tr><th>what</th><th>by</th><th>verified</th><th>detail</th></tr>\n");
    for ob in &c.obligations {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            h(&ob.what),
            ob.scenario
                .as_deref()
                .map(h)
                .unwrap_or_else(|| "run cleanup".into()),
            if ob.verified {
                "<span class=\"b verified\">yes</span>"
            } else {
                "<span class=\"b left_modified\">NO</span>"
            },
            ob.detail.as_deref().map(h).unwrap_or_default(),
            ob.restore_command
                .as_deref()
                .map(|r| format!("<br/>restore with: <code>{}</code>", h(r)))
                .unwrap_or_default()
        );
    }
    o.push_str("</table>\n");
    if c.status == CleanupStatus::LeftModified {
        o.push_str("<p><b>This hub may be left modified.</b> Run the restore command above, and check every actuator is off.</p>\n");
    }
}

fn ledger_section(o: &mut String, ledger: Option<&Value>) {
    o.push_str("<h2>Connection ledger</h2>\n");
    let Some(Value::Object(l)) = ledger else {
        o.push_str("<p class=\"meta\">not kept (the run ended before the session closed)</p>\n");
        return;
    };
    o.push_str("<table id=\"ledger\">\n");
    for (k, v) in l {
        if k == "hubs" || k == "problems" {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let _ = writeln!(
            o,
            "<tr><th>{}</th><td>{}</td></tr>",
            h(&k.replace('_', " ")),
            h(&text)
        );
    }
    o.push_str("</table>\n");
    if let Some(Value::Array(hubs)) = l.get("hubs") {
        o.push_str("<table>\n<tr><th>hub</th><th>connections</th><th>requests</th><th>peak open</th></tr>\n");
        for hu in hubs {
            let f = |k: &str| match hu.get(k) {
                Some(Value::String(s)) => h(s),
                Some(v) => h(&v.to_string()),
                None => String::new(),
            };
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                f("hub"),
                f("connections"),
                f("requests"),
                f("peak_open")
            );
        }
        o.push_str("</table>\n");
    }
    if let Some(Value::Array(problems)) = l.get("problems") {
        for p in problems.iter().filter_map(Value::as_str) {
            let _ = writeln!(o, "<p><span class=\"b failed\">FAIL</span> {}</p>", h(p));
        }
    }
}

/// Seconds with two decimals; a no-break space keeps the unit on the line.
fn dur(ms: u64) -> String {
    format!("{}.{:02}&#160;s", ms / 1000, (ms % 1000) / 10)
}

/// Escape text and attribute values (hub strings are untrusted): markup
/// escaped, and every character a terminal or the text's direction would
/// act on shown as the console shows it (`\x1b`, `\u{202e}`), so a page
/// (or `cat` of it) cannot reorder or hide what it says.
fn h(s: &str) -> String {
    quick_xml::escape::escape(super::escape::escape_keep_newlines(s).as_ref()).into_owned()
}

/// Write the HTML report atomically.
pub fn write(record: &RunRecord, path: &Path) -> Result<(), super::ReportError> {
    super::write_atomic(path, render(record).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::sample_record;

    #[test]
    fn shows_the_record_counts_escapes_hub_strings_and_fetches_nothing() {
        let mut r = sample_record();
        r.hubs[0].identity.name = Some("<script>alert(1)</script>\u{202e}\u{1b}[2J".into());
        r.hubs[0].scenarios[1].message = Some("\"><img src=x onerror=alert(1)>".into());
        r.tally();
        let html = render(&r);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{202e}\\x1b[2J"));
        assert!(!html.contains('\u{202e}') && !html.contains('\u{1b}'));
        for (k, v) in [("passed", 1), ("failed", 1), ("skipped", 1), ("flaky", 1)] {
            assert!(
                html.contains(&format!("data-count=\"{k}\">{v}</b>")),
                "{k}: {html}"
            );
        }
        assert!(html.contains("data-count=\"hubs_left_modified\">1</b>"));
        // The left-modified hub's restore command, the flaky mark, the bar.
        assert!(html.contains("vegehub-harness restore /b/x.json --device 127.0.0.1:8081"));
        assert!(html.contains("b flaky"));
        // A finished run that failed is not shown green.
        assert!(html.contains("class=\"b failed\" id=\"run-status\">finished<"));
    }

    #[test]
    fn bars_place_the_value_against_the_limits() {
        let spec: crate::scenario::measurement::MeasurementSpec = serde_json::from_value(
            serde_json::json!({"fact": "battery_volts", "at_least": 3.3, "at_most": 4.2}),
        )
        .unwrap();
        let m = spec.validate().unwrap();
        let inside = bar(&m.evaluate(Some(&crate::scenario::measurement::Measured::Number(3.7))));
        assert!(inside.contains("class=\"mark\""), "{inside}");
        let below = bar(&m.evaluate(Some(&crate::scenario::measurement::Measured::Number(2.0))));
        assert!(below.contains("class=\"mark fail\""), "{below}");
        // Words get no bar.
        let spec: crate::scenario::measurement::MeasurementSpec =
            serde_json::from_value(serde_json::json!({"fact": "power_source", "equals": "ac"}))
                .unwrap();
        let m = spec.validate().unwrap();
        let word = crate::scenario::measurement::Measured::Text("ac".into());
        assert_eq!(bar(&m.evaluate(Some(&word))), "");
    }
}
