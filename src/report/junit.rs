//! The JUnit XML report (`--junit`), built from the run record so the two
//! files never disagree: one testsuite per hub with its MAC and firmware as
//! properties, one testcase per scenario, skips with their reasons and
//! failures with their messages (failed measurements and HTTP exchanges in
//! the failure's text).

use std::path::Path;
use std::time::Duration;

use chrono::DateTime;
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::json::{HubRecord, Outcome, RunRecord, RunStatus, ScenarioRecord};
use crate::measurement::Verdict;

/// The JUnit report of a run (or of the part of it run so far).
pub fn report(record: &RunRecord) -> Report {
    let mut report = Report::new(record.harness.name);
    if let Ok(t) = DateTime::parse_from_rfc3339(&record.started_at) {
        report.set_timestamp(t);
    }
    for hub in &record.hubs {
        report.add_test_suite(suite(record, hub));
    }
    report
}

fn suite(record: &RunRecord, hub: &HubRecord) -> TestSuite {
    let id = &hub.identity;
    let name = id.name.clone().unwrap_or_else(|| hub.target.clone());
    let mut suite = TestSuite::new(name.clone());
    if let Ok(t) = DateTime::parse_from_rfc3339(&record.started_at) {
        suite.set_timestamp(t);
    }
    let unknown = || "unknown".to_string();
    suite.add_property(Property::new("target", hub.target.clone()));
    suite.add_property(Property::new("mac", id.mac.clone().unwrap_or_else(unknown)));
    suite.add_property(Property::new(
        "firmware",
        id.firmware.clone().unwrap_or_else(unknown),
    ));
    if !id.addresses.is_empty() {
        suite.add_property(Property::new("addresses", id.addresses.join(" ")));
    }
    suite.add_property(Property::new("plan", record.plan.source.clone()));
    if record.status != RunStatus::Finished {
        // CI readers should see that the suite is not the whole plan.
        let status = match record.status {
            RunStatus::Running => "running",
            _ => "interrupted",
        };
        suite.add_property(Property::new("run_status", status));
    }
    let total: u64 = hub.scenarios.iter().map(|s| s.duration_ms).sum();
    suite.set_time(Duration::from_millis(total));
    for s in &hub.scenarios {
        suite.add_test_case(case(&name, s));
    }
    suite
}

fn case(suite_name: &str, s: &ScenarioRecord) -> TestCase {
    let status = match s.outcome {
        Outcome::Passed => TestCaseStatus::success(),
        Outcome::Skipped => {
            let mut st = TestCaseStatus::skipped();
            if let Some(reason) = &s.message {
                st.set_message(reason.clone());
            }
            st
        }
        Outcome::Failed => {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(
                s.message
                    .clone()
                    .unwrap_or_else(|| "failed without a message".into()),
            );
            st.set_type(
                if s.measurements.iter().any(|m| m.verdict == Verdict::Fail) {
                    "measurement"
                } else {
                    "scenario"
                },
            );
            st.set_description(failure_text(s));
            st
        }
    };
    let mut case = TestCase::new(s.name.clone(), status);
    case.set_classname(format!("vegehub.{suite_name}"));
    case.set_time(Duration::from_millis(s.duration_ms));
    if !s.measurements.is_empty() {
        case.set_system_out(measurement_lines(s));
    }
    case
}

fn measurement_lines(s: &ScenarioRecord) -> String {
    s.measurements
        .iter()
        .map(|m| {
            let measured = m
                .measured
                .as_ref()
                .map_or("not measured".to_string(), |v| v.to_string());
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

/// Write the JUnit report atomically.
pub fn write(record: &RunRecord, path: &Path) -> Result<(), super::ReportError> {
    let xml = report(record)
        .to_string()
        .expect("a JUnit report of plain strings always serializes");
    super::write_atomic(path, xml.as_bytes())
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
        let xml = report(&record).to_string().unwrap();
        let root = parse(&xml);
        assert_eq!(root.name, "testsuites");
        assert_eq!(root.attr("tests"), Some("3"));
        assert_eq!(root.attr("failures"), Some("1"));
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
        assert_eq!(prop("run_status"), None, "a finished run says nothing");
        let cases = s.all("testcase");
        let names: Vec<_> = cases.iter().map(|c| c.attr("name").unwrap()).collect();
        assert_eq!(names, ["mac", "info", "actuators"]);
        assert!(cases[0].children.iter().all(|c| c.name != "failure"));
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
        // The second hub is known only by its address.
        assert_eq!(suites[1].attr("name"), Some("127.0.0.1:8081"));
        assert_eq!(suites[1].attr("tests"), Some("0"));
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
