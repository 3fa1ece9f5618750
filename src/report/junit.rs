//! The JUnit XML report (`--junit`), built from the run record so the two
//! files never disagree, and valid against the JUnit 10 schema Jenkins'
//! xunit plugin uses (vendored in `ci/junit-10.xsd`; a test validates
//! against it): one testsuite per hub with its identity, the station,
//! operator and the run's final status and exit code as properties; one
//! testcase per scenario, classed by the hub's name or MAC (never with dots,
//! which Jenkins reads as packages); skips with their reasons, failures with
//! their messages (failed measurements and HTTP exchanges in the text),
//! flaky passes with a `flakyFailure` per retry, reconnect or reboot (as
//! nextest and Surefire write them), and a `cleanup` testcase per hub that
//! owed an undo: in error, with the restore command, when the hub may be
//! left modified.

use std::fmt::Write as _;
use std::path::Path;

use super::json::{CleanupStatus, HubRecord, Outcome, RunRecord, RunStatus, ScenarioRecord};
use crate::scenario::measurement::Verdict;

/// The JUnit document of a run (or of the part of it run so far).
pub fn render(record: &RunRecord) -> String {
    let suites: Vec<Suite> = record
        .hubs
        .iter()
        .map(|h| suite(record, h, &classname(record, h)))
        .chain(record.soak.as_ref().map(soak_suite))
        .collect();
    let total = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let time: u64 = record.duration_ms.unwrap_or_else(|| {
        record
            .hubs
            .iter()
            .map(|h| h.duration_ms.unwrap_or_else(|| scenario_ms(h)))
            .max()
            .unwrap_or(0)
    });
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        attr(record.harness.name),
        total(|s| s.tests),
        total(|s| s.failures),
        total(|s| s.errors),
        secs(time)
    );
    for s in &suites {
        out.push_str(&s.xml);
    }
    out.push_str("</testsuites>\n");
    out
}

/// One rendered testsuite and its counts.
struct Suite {
    tests: usize,
    failures: usize,
    errors: usize,
    xml: String,
}

fn scenario_ms(h: &HubRecord) -> u64 {
    h.scenarios.iter().map(|s| s.duration_ms).sum()
}

/// The hub's class: its name, else its MAC, else its address, without
/// dots; the address is added when two hubs would share one.
fn classname(record: &RunRecord, hub: &HubRecord) -> String {
    let base = |h: &HubRecord| {
        h.identity
            .name
            .clone()
            .or_else(|| h.identity.mac.clone())
            .unwrap_or_else(|| h.target.clone())
    };
    let mine = base(hub);
    let shared = record.hubs.iter().filter(|h| base(h) == mine).count() > 1;
    let name = if shared && mine != hub.target {
        format!("{mine}_{}", hub.target)
    } else {
        mine
    };
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn suite(record: &RunRecord, hub: &HubRecord, class: &str) -> Suite {
    let id = &hub.identity;
    let name = id.name.clone().unwrap_or_else(|| hub.target.clone());
    let unknown = || "unknown".to_string();
    let mut props: Vec<(&str, String)> = vec![
        ("target", hub.target.clone()),
        ("mac", id.mac.clone().unwrap_or_else(unknown)),
        ("firmware", id.firmware.clone().unwrap_or_else(unknown)),
    ];
    if !id.addresses.is_empty() {
        props.push(("addresses", id.addresses.join(" ")));
    }
    props.push(("plan", record.plan.source.clone()));
    props.push(("harness_version", record.harness.version.to_string()));
    if let Some(s) = &record.station {
        props.push(("station", s.clone()));
    }
    if let Some(o) = &record.operator {
        props.push(("operator", o.clone()));
    }
    // CI readers should see whether the suite is the whole plan and how the
    // run ended.
    props.push(("run_status", record.status.as_str().to_string()));
    if let Some(code) = record.exit_code {
        props.push(("exit_code", code.to_string()));
    }
    if let Some(e) = &record.error {
        props.push(("run_error", e.clone()));
    }
    props.push(("cleanup", hub.cleanup.status.as_str().to_string()));

    let mut cases = String::new();
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for s in &hub.scenarios {
        tests += 1;
        match s.outcome {
            Outcome::Failed => failures += 1,
            Outcome::Skipped => skipped += 1,
            Outcome::Passed => {}
        }
        cases.push_str(&case(class, s));
    }
    if let Some(c) = cleanup_case(class, hub) {
        tests += 1;
        if hub.cleanup.status == CleanupStatus::LeftModified {
            errors += 1;
        }
        cases.push_str(&c);
    }
    let time = hub.duration_ms.unwrap_or_else(|| scenario_ms(hub));
    let mut xml = format!(
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">\n    <properties>\n",
        attr(&name),
        secs(time),
        attr(&record.started_at)
    );
    for (k, v) in props {
        let _ = writeln!(
            xml,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(k),
            attr(&v)
        );
    }
    xml.push_str("    </properties>\n");
    xml.push_str(&cases);
    if matches!(record.status, RunStatus::Aborted | RunStatus::Error) {
        let _ = writeln!(
            xml,
            "    <system-err>run {}: {}</system-err>",
            record.status.as_str(),
            esc(record.error.as_deref().unwrap_or("no reason given"))
        );
    }
    xml.push_str("  </testsuite>\n");
    Suite {
        tests,
        failures,
        errors,
        xml,
    }
}

/// A soak (`--repeat`): one testsuite `soak` with one testcase per cycle
/// (failed when a scenario of it failed; its measurements in system-out)
/// and a `trend` testcase, failed with type `slow-leak` naming each
/// quantity that grew.
fn soak_suite(soak: &crate::report::soak_record::SoakReport) -> Suite {
    let mut cases = String::new();
    let mut failures = 0;
    for c in &soak.cycles {
        let ms = c.duration.as_millis() as u64;
        let _ = writeln!(
            cases,
            "    <testcase name=\"cycle {}\" classname=\"soak\" time=\"{}\">",
            c.cycle,
            secs(ms)
        );
        if c.failed > 0 {
            failures += 1;
            let _ = writeln!(
                cases,
                "      <failure message=\"{}\" type=\"cycle\">{}</failure>",
                attr(&format!(
                    "{} scenario(s) failed in cycle {}",
                    c.failed, c.cycle
                )),
                esc(&c.failures.join("\n"))
            );
        }
        let _ = writeln!(
            cases,
            "      <system-out>{}</system-out>\n    </testcase>",
            esc(&super::soak::cycle_line(c))
        );
    }
    let trend = if !soak.judged {
        format!(
            "    <testcase name=\"trend\" classname=\"soak\" time=\"0\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
            attr(&super::soak::not_judged(soak))
        )
    } else if soak.trends.is_empty() {
        "    <testcase name=\"trend\" classname=\"soak\" time=\"0\"/>\n".to_owned()
    } else {
        failures += 1;
        let text: Vec<&str> = soak.trends.iter().map(|t| t.message.as_str()).collect();
        format!(
            "    <testcase name=\"trend\" classname=\"soak\" time=\"0\">\n      <failure message=\"{}\" type=\"slow-leak\">{}</failure>\n    </testcase>\n",
            attr(&format!("slow leak: {}", text.join("; "))),
            esc(&text.join("\n"))
        )
    };
    let tests = soak.cycles.len() + 1;
    let skipped = usize::from(!soak.judged);
    let ms: u64 = soak
        .cycles
        .iter()
        .map(|c| c.duration.as_millis() as u64)
        .sum();
    let xml = format!(
        "  <testsuite name=\"soak\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\">\n    <properties>\n      <property name=\"cycles\" value=\"{}\"/>\n    </properties>\n{cases}{trend}  </testsuite>\n",
        secs(ms),
        soak.cycles.len()
    );
    Suite {
        tests,
        failures,
        errors: 0,
        xml,
    }
}

fn case(class: &str, s: &ScenarioRecord) -> String {
    let open = format!(
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        attr(&s.name),
        attr(class),
        secs(s.duration_ms)
    );
    let mut body = String::new();
    match s.outcome {
        Outcome::Passed => {}
        Outcome::Skipped => {
            let _ = writeln!(
                body,
                "      <skipped message=\"{}\"/>",
                attr(s.message.as_deref().unwrap_or("skipped"))
            );
        }
        Outcome::Failed => {
            let ty = if s.measurements.iter().any(|m| m.verdict == Verdict::Fail) {
                "measurement"
            } else {
                "scenario"
            };
            let _ = writeln!(
                body,
                "      <failure message=\"{}\" type=\"{ty}\">{}</failure>",
                attr(s.message.as_deref().unwrap_or("failed without a message")),
                esc(&failure_text(s))
            );
        }
    }
    // Every retry, reconnect and reboot of a scenario that still passed is
    // a flaky run; one that failed or skipped lists them in its text.
    if s.flaky {
        for i in &s.incidents {
            let kind = i.kind_name();
            let _ = writeln!(
                body,
                "      <flakyFailure message=\"{}\" type=\"{kind}\"/>",
                attr(&format!("{kind} at {}: {}", i.at, i.reason))
            );
        }
    }
    if !s.measurements.is_empty() {
        let _ = writeln!(
            body,
            "      <system-out>{}</system-out>",
            esc(&measurement_lines(s))
        );
    }
    if body.is_empty() {
        format!("{open}/>\n")
    } else {
        format!("{open}>\n{body}    </testcase>\n")
    }
}

/// The hub's cleanup as a testcase: passed when everything owed was
/// verified undone, in error (with the restore commands) when the hub may
/// be left modified. None when nothing was owed, or while it is pending.
fn cleanup_case(class: &str, hub: &HubRecord) -> Option<String> {
    let c = &hub.cleanup;
    let open = format!(
        "    <testcase name=\"cleanup\" classname=\"{}\" time=\"0\"",
        attr(class)
    );
    let lines: String = c
        .obligations
        .iter()
        .map(|o| {
            format!(
                "{} {}{}{}\n",
                if o.verified {
                    "verified"
                } else {
                    "NOT verified"
                },
                o.what,
                o.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default(),
                o.restore_command
                    .as_ref()
                    .map(|r| format!("; restore with: {r}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    match c.status {
        CleanupStatus::NothingOwed | CleanupStatus::Pending => None,
        CleanupStatus::Verified => Some(format!(
            "{open}>\n      <system-out>{}</system-out>\n    </testcase>\n",
            esc(&lines)
        )),
        CleanupStatus::LeftModified => {
            let left: Vec<String> = c
                .obligations
                .iter()
                .filter(|o| !o.verified)
                .map(|o| match &o.restore_command {
                    Some(r) => format!("{} (restore with: {r})", o.what),
                    None => o.what.clone(),
                })
                .collect();
            let message = format!(
                "hub {} may be left modified: {}",
                hub.target,
                left.join("; ")
            );
            Some(format!(
                "{open}>\n      <error message=\"{}\" type=\"hub-left-modified\">{}</error>\n    </testcase>\n",
                attr(&message),
                esc(&lines)
            ))
        }
    }
}

fn measurement_lines(s: &ScenarioRecord) -> String {
    s.measurements
        .iter()
        .map(|m| {
            let unit = m.unit.map(|u| format!(" {u}")).unwrap_or_default();
            let measured = m
                .measured
                .as_ref()
                .map_or("not measured".to_string(), |v| format!("{v}{unit}"));
            let limits = serde_json::Value::Object(m.limits.clone());
            let verdict = match m.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
            };
            format!(
                "{verdict} {} ({}): {measured}, limits {limits}\n",
                m.name, m.fact
            )
        })
        .collect()
}

fn failure_text(s: &ScenarioRecord) -> String {
    let mut text = measurement_lines(s);
    for i in &s.incidents {
        let _ = writeln!(text, "{:?} at {}: {}", i.kind, i.at, i.reason);
    }
    for e in &s.exchanges {
        let answer = match (e.status, &e.error) {
            (Some(code), _) => code.to_string(),
            (None, Some(err)) => err.clone(),
            (None, None) => "no answer".into(),
        };
        text.push_str(&format!(
            "{} {} -> {answer} ({} ms)\n",
            e.method, e.path, e.duration_ms
        ));
    }
    text
}

/// Seconds with millisecond precision, as the schema's SUREFIRE_TIME wants.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Escape for an attribute: as text, with line breaks kept as references
/// (a parser would turn a raw one into a space).
fn attr(s: &str) -> String {
    esc(s)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

/// Escape for text, and replace the characters XML 1.0 cannot carry at all
/// (hub strings are untrusted); the ones it can carry but a terminal acts
/// on (C1 controls, bidirectional overrides) become character references,
/// so `cat` of the file shows them as text and a parser reads them exactly.
fn esc(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect();
    let text = quick_xml::escape::escape(clean.as_str());
    if !text.chars().any(super::escape::raw_in_markup) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if super::escape::raw_in_markup(c) {
            let _ = write!(out, "&#x{:x};", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Write the JUnit report atomically.
pub fn write(record: &RunRecord, path: &Path) -> Result<(), super::ReportError> {
    super::write_atomic(path, render(record).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::sample_record;
    use quick_xml::events::Event;

    /// A parsed XML element: name, attributes, children, text.
    #[derive(Debug, Default)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        children: Vec<El>,
        text: String,
    }

    impl El {
        fn attr(&self, k: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        }
        fn all(&self, name: &str) -> Vec<&El> {
            self.children.iter().filter(|c| c.name == name).collect()
        }
    }

    /// Parse with an XML parser that knows nothing of JUnit, the way a CI
    /// system's reader would.
    fn parse(xml: &str) -> El {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut stack = vec![El::default()];
        let open = |e: &quick_xml::events::BytesStart| El {
            name: String::from_utf8(e.name().as_ref().to_vec()).unwrap(),
            attrs: e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect(),
            ..El::default()
        };
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Start(e) => stack.push(open(&e)),
                Event::Empty(e) => {
                    let el = open(&e);
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::End(_) => {
                    let el = stack.pop().unwrap();
                    stack.last_mut().unwrap().children.push(el);
                }
                Event::Text(t) => stack
                    .last_mut()
                    .unwrap()
                    .text
                    .push_str(&t.decode().unwrap()),
                Event::GeneralRef(r) => {
                    let s = match &*r.decode().unwrap() {
                        "lt" => "<",
                        "gt" => ">",
                        "amp" => "&",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unexpected entity {other}"),
                    };
                    stack.last_mut().unwrap().text.push_str(s);
                }
                Event::Eof => break,
                _ => {}
            }
        }
        assert_eq!(stack.len(), 1, "every element closed");
        let mut root = stack.pop().unwrap();
        assert_eq!(root.children.len(), 1, "one root element");
        root.children.pop().unwrap()
    }

    #[test]
    fn junit_parses_with_suites_properties_skips_and_failures() {
        let record = sample_record();
        let xml = render(&record);
        let root = parse(&xml);
        assert_eq!(root.name, "testsuites");
        // Three scenarios, and a cleanup case per hub that owed an undo.
        assert_eq!(root.attr("tests"), Some("5"));
        assert_eq!(root.attr("failures"), Some("1"));
        assert_eq!(root.attr("errors"), Some("1"));
        assert_eq!(root.attr("time"), Some("3.000"));
        // The JUnit 10 schema allows neither on the root.
        assert_eq!(root.attr("skipped"), None);
        assert_eq!(root.attr("timestamp"), None);
        let suites = root.all("testsuite");
        assert_eq!(suites.len(), 2, "one testsuite per hub");
        let s = suites[0];
        assert_eq!(s.attr("name"), Some("Vege_A6_20"));
        assert_eq!(s.attr("skipped"), Some("1"));
        assert_eq!(s.attr("failures"), Some("1"));
        let props = &s.all("properties")[0];
        let prop = |k: &str| {
            props
                .all("property")
                .into_iter()
                .find(|p| p.attr("name") == Some(k))
                .and_then(|p| p.attr("value"))
        };
        assert_eq!(prop("mac"), Some("A1B2C3D4A620"));
        assert_eq!(prop("firmware"), Some("3.4.5"));
        assert_eq!(prop("run_status"), Some("finished"));
        assert_eq!(prop("exit_code"), Some("1"));
        assert_eq!(prop("cleanup"), Some("verified"));
        let cases = s.all("testcase");
        let names: Vec<_> = cases.iter().map(|c| c.attr("name").unwrap()).collect();
        assert_eq!(names, ["mac", "info", "actuators", "cleanup"]);
        assert!(cases
            .iter()
            .all(|c| c.attr("classname") == Some("Vege_A6_20")));
        assert!(cases[0].children.iter().all(|c| c.name != "failure"));
        // The flaky pass, as nextest and Surefire write it.
        let flaky = &cases[0].all("flakyFailure")[0];
        assert_eq!(flaky.attr("type"), Some("reboot"));
        assert!(flaky.attr("message").unwrap().contains("refused new ones"));
        assert!(cases[3].all("error").is_empty(), "verified cleanup passes");
        let failure = &cases[1].all("failure")[0];
        assert!(failure
            .attr("message")
            .unwrap()
            .contains("firmware_version 3.4.5 is below the limit at_least 5.1.1"));
        assert_eq!(failure.attr("type"), Some("measurement"));
        assert!(
            failure
                .text
                .contains("FAIL firmware (firmware_version): \"3.4.5\""),
            "{}",
            failure.text
        );
        assert!(
            failure.text.contains("POST /api/config/set -> 500"),
            "{}",
            failure.text
        );
        assert!(
            failure.text.contains("timed out after 5s"),
            "{}",
            failure.text
        );
        let skipped = &cases[2].all("skipped")[0];
        assert_eq!(skipped.attr("message"), Some("not enabled (--actuators)"));
        // The second hub is known only by its address; its class has no dots.
        assert_eq!(suites[1].attr("name"), Some("127.0.0.1:8081"));
        assert_eq!(suites[1].attr("tests"), Some("1"));
        assert_eq!(suites[1].attr("errors"), Some("1"));
        let cleanup = suites[1].all("testcase")[0];
        assert_eq!(cleanup.attr("name"), Some("cleanup"));
        assert_eq!(cleanup.attr("classname"), Some("127_0_0_1_8081"));
        let error = &cleanup.all("error")[0];
        assert_eq!(error.attr("type"), Some("hub-left-modified"));
        assert!(
            error.attr("message").unwrap().contains(
                "restore with: vegehub-harness restore /b/x.json --device 127.0.0.1:8081"
            ),
            "{:?}",
            error.attr("message")
        );
    }

    #[test]
    fn untrusted_strings_cannot_break_the_xml() {
        let mut record = sample_record();
        record.hubs[0].identity.name = Some("Evil\u{1}<hub> & \"co\"\n.x".into());
        record.hubs[0].scenarios[1].message =
            Some("bad ]]> <!-- \u{0} line\nbreak \u{9b}31m\u{202e}".into());
        let root = parse(&render(&record));
        let s = root.all("testsuite")[0];
        assert_eq!(s.attr("name"), Some("Evil\u{FFFD}<hub> & \"co\"\n.x"));
        let class = s.all("testcase")[0].attr("classname").unwrap();
        assert!(!class.contains('.'), "{class}");
        let failure = &s.all("testcase")[1].all("failure")[0];
        assert_eq!(
            failure.attr("message"),
            Some("bad ]]> <!-- \u{FFFD} line\nbreak \u{9b}31m\u{202e}")
        );
        let text = render(&record);
        assert!(text.contains("&#x9b;31m&#x202e;"), "{text}");
        assert!(!text.chars().any(crate::report::escape::raw_in_markup));
    }

    #[test]
    fn interrupted_run_is_marked_and_written() {
        let mut record = sample_record();
        record.status = RunStatus::Interrupted;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        write(&record, &path).unwrap();
        let root = parse(&std::fs::read_to_string(&path).unwrap());
        let props = &root.all("testsuite")[0].all("properties")[0];
        assert!(props.all("property").iter().any(
            |p| p.attr("name") == Some("run_status") && p.attr("value") == Some("interrupted")
        ));
    }
}
