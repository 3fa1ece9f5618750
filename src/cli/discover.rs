//! `vegehub-harness discover`: arguments, the browse with a spinner on a
//! terminal, and the listing (text or one JSON document). Also how a run
//! shows its search for hubs and asks the technician to choose
//! ([`RunChooserUi`]); the choosing itself is `discovery::select`'s.

use crate::report::escape::escape;
use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::device::duration::FlagDuration;
use crate::device::mdns::SERVICE_TYPE;
use crate::discovery::select::{self, no_hub_hint, ChooseUi, Pick, Prompt};
use crate::discovery::{
    self, DiscoverOptions, DiscoveredHub, Discovery, DiscoveryError, Progress, StopReason,
};
use crate::exit_code;

/// List the hubs that answer on the local network (mDNS `_vege._tcp.local.`).
///
/// Stops as soon as `--expect N` hubs are resolved; without `--expect`,
/// 1.2 s after the last new hub (every hub answers the first query within
/// about 100 ms, and the re-query at about 1 s catches one that missed it);
/// never later than `--timeout`. Exit 0 when hubs were found (and as many as
/// `--expect` asked for), 4 when none (or too few) were.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// Give up after DURATION (`800ms`, `2s`, `1m`; a bare number is seconds).
    #[arg(long, value_name = "DURATION",
          default_value_t = FlagDuration(discovery::DEFAULT_TIMEOUT), value_parser = parse_timeout_flag)]
    pub timeout: FlagDuration,
    /// Stop as soon as N hubs are resolved (no quiet period).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub expect: Option<u32>,
    /// Browse on this network interface only (e.g. eth0).
    #[arg(long, value_name = "NAME")]
    pub interface: Option<String>,
    /// Print one JSON document instead of the listing.
    #[arg(long)]
    pub json: bool,
}

/// `--timeout` (and the run's `--discover-timeout`): the one duration
/// syntax of every flag (`device::duration`), above 0 and at most an hour.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    crate::device::duration::parse_within(s, Duration::from_secs(3600), "1h")
}

/// [`parse_timeout`], as a clap value parser.
pub fn parse_timeout_flag(s: &str) -> Result<FlagDuration, String> {
    parse_timeout(s).map(FlagDuration)
}

impl DiscoverArgs {
    /// The browse options these arguments ask for.
    pub fn options(&self) -> DiscoverOptions {
        DiscoverOptions {
            timeout: self.timeout.0,
            expect: self.expect.map(|n| n as usize),
            interface: self.interface.clone(),
            ..DiscoverOptions::default()
        }
    }
}

/// A spinner with the hub count on a terminal; nothing when stderr is not one.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn new(what: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            return Spinner(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("{what}: 0 hubs"));
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(Some(bar))
    }

    pub fn update(&self, what: &str, p: &Progress) {
        if let Some(bar) = &self.0 {
            let count = match p {
                Progress::Found { count, .. }
                | Progress::Updated { count, .. }
                | Progress::Removed { count, .. } => *count,
            };
            bar.set_message(format!("{what}: {count} {}", plural(count, "hub", "hubs")));
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.0 {
            bar.finish_and_clear();
        }
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// Browse with a spinner on a terminal. Builds the one runtime of this command.
pub fn browse(opts: &DiscoverOptions) -> Result<Discovery, DiscoveryError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| DiscoveryError::Mdns(format!("cannot build the runtime: {e}")))?;
    let what = format!("browsing {SERVICE_TYPE}");
    let spinner = Spinner::new(&what);
    let result = runtime.block_on(discovery::discover(opts, |p| spinner.update(&what, p)));
    spinner.finish();
    result
}

/// Run the `discover` command; returns the process exit code.
pub fn run(args: DiscoverArgs) -> i32 {
    let opts = args.options();
    let found = match browse(&opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vegehub-harness: error: {}", escape(&format!("{e:#}")));
            return match e {
                DiscoveryError::UnknownInterface { .. } => exit_code::USAGE,
                DiscoveryError::Mdns(_) => exit_code::NO_HUB,
            };
        }
    };
    if args.json {
        println!("{}", render_json(&found));
    } else {
        print!("{}", render_text(&found));
    }
    match shortfall(&found, opts.expect) {
        Some(msg) => {
            eprintln!("vegehub-harness: {}", escape(&msg.to_string()));
            exit_code::NO_HUB
        }
        None => exit_code::SUCCESS,
    }
}

/// Why the result is not enough: none found, or fewer than `--expect`.
pub fn shortfall(d: &Discovery, expect: Option<usize>) -> Option<String> {
    let secs = d.elapsed.as_secs_f64();
    if d.hubs.is_empty() {
        return Some(format!(
            "no hub found in {secs:.1} s. {}",
            no_hub_hint("--timeout")
        ));
    }
    match expect {
        Some(n) if d.hubs.len() < n => Some(format!(
            "--expect {n}: found {} {} in {secs:.1} s",
            d.hubs.len(),
            plural(d.hubs.len(), "hub", "hubs"),
        )),
        _ => None,
    }
}

/// The JSON document of `discover --json`.
pub fn render_json(d: &Discovery) -> String {
    let mut doc = serde_json::json!({
        "service_type": SERVICE_TYPE,
        "stopped": d.stopped,
        "elapsed_ms": d.elapsed.as_millis() as u64,
        "hubs": d.hubs,
    });
    // Each address says whether a run would refuse it, and why (`null`
    // when it may be tried), as the listing does.
    let loopback = discovery::select::loopback_interfaces();
    for (i, hub) in d.hubs.iter().enumerate() {
        for (j, a) in hub.addresses.iter().enumerate() {
            doc["hubs"][i]["addresses"][j]["refused"] = a.unusable(&loopback).into();
        }
    }
    crate::report::escape::json_for_terminal(
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    )
}

/// The listing of `discover`.
pub fn render_text(d: &Discovery) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let n = d.hubs.len();
    let why = match d.stopped {
        StopReason::Expected => "as many as expected".to_string(),
        StopReason::Quiet => format!(
            "then {:.1} s without a new one",
            discovery::QUIET_PERIOD.as_secs_f64()
        ),
        StopReason::Timeout => "timeout reached".to_string(),
        StopReason::TooMany => format!(
            "stopped at {} hubs: more answered than the harness follows",
            discovery::MAX_HUBS
        ),
    };
    let _ = writeln!(
        out,
        "{n} {} found in {:.2} s ({why})",
        plural(n, "hub", "hubs"),
        d.elapsed.as_secs_f64()
    );
    let loopback = discovery::select::loopback_interfaces();
    for (i, hub) in d.hubs.iter().enumerate() {
        let t = &hub.hub_txt;
        let opt = |v: &Option<String>| v.as_deref().map_or("?".into(), txt_value);
        let num = |v: Option<u32>| v.map_or("?".into(), |n| n.to_string());
        // Listed as announced; one a run would refuse says so.
        let addrs: Vec<String> = hub
            .addresses
            .iter()
            .map(|a| match a.unusable(&loopback) {
                Some(why) => format!("{} (never contacted: {why})", a.display()),
                None => a.display(),
            })
            .collect();
        let _ = writeln!(out);
        // Every TXT value and name is the hub's: escaped for the terminal.
        let opt = |v: &Option<String>| escape(&opt(v)).into_owned();
        let _ = writeln!(out, "{:>3}  {}", i + 1, escape(&hub.instance));
        let _ = writeln!(out, "     host       {}:{}", escape(&hub.host), hub.port);
        let _ = writeln!(out, "     addresses  {}", addrs.join(", "));
        let _ = writeln!(
            out,
            "     firmware   {}  type {}  sensors {}  actuators {}  power_mode {}",
            opt(&t.version),
            opt(&t.hub_type),
            num(t.sensors),
            num(t.actuators),
            num(t.power_mode),
        );
        if !t.sensor_names.is_empty() {
            let _ = writeln!(
                out,
                "     sensors    {}",
                escape(
                    &t.sensor_names
                        .iter()
                        .map(|n| txt_value(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            );
        }
        if let Some(warning) = hub.name_conflict() {
            let _ = writeln!(
                out,
                "     warning    {}; two hubs may share the name: see each with --interface",
                escape(&warning.to_string())
            );
        }
    }
    out
}

/// A TXT value as listed: quoted when it would not read back as itself
/// (empty, spaces at an end, or the list separator inside).
fn txt_value(v: &str) -> String {
    if v.is_empty() || v.trim() != v || v.contains(", ") {
        format!("{v:?}")
    } else {
        v.to_string()
    }
}

/// How a run shows its search for hubs: a spinner and prompts when a
/// person is at the terminal, one plain line on stderr otherwise.
pub struct RunChooserUi {
    spinner: Option<Spinner>,
    interactive: bool,
}

const BROWSING: &str = "looking for hubs";

impl RunChooserUi {
    /// Prompts only when both stdin and stderr are terminals: CI never
    /// blocks on a question.
    pub fn new() -> RunChooserUi {
        RunChooserUi {
            spinner: None,
            interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
        }
    }
}

impl Default for RunChooserUi {
    fn default() -> Self {
        RunChooserUi::new()
    }
}

impl ChooseUi for RunChooserUi {
    fn browsing(&mut self) {
        self.spinner = Some(Spinner::new(BROWSING));
    }

    fn progress(&mut self, p: &Progress) {
        if let Some(s) = &self.spinner {
            s.update(BROWSING, p);
        }
    }

    fn browsed(&mut self, d: &Discovery) {
        if let Some(s) = self.spinner.take() {
            s.finish();
        }
        crate::report::term::err(&format!(
            "vegehub-harness: {} {} found on the network in {:.1} s",
            d.hubs.len(),
            plural(d.hubs.len(), "hub", "hubs"),
            d.elapsed.as_secs_f64()
        ));
    }

    fn prompt(&mut self) -> Option<&mut dyn Prompt> {
        if self.interactive {
            Some(self)
        } else {
            None
        }
    }

    fn chosen(&mut self, hubs: &[DiscoveredHub]) {
        let list: Vec<String> = hubs.iter().map(describe).collect();
        crate::report::term::err(&format!("vegehub-harness: testing {}", list.join(", ")));
    }
}

/// One line per hub for the terminal: `Vege_A6_20 (127.0.0.1:80)`, the
/// hub's name and address escaped.
pub fn describe(hub: &DiscoveredHub) -> String {
    escape(&select::label(hub)).into_owned()
}

/// Ask until the answer is one `read` accepts; `None` at end of input.
fn ask_until<T>(question: &str, hint: &str, read: impl Fn(&str) -> Option<T>) -> Option<T> {
    loop {
        let answer = crate::report::term::ask(question, &|| false)?;
        match read(&answer.to_ascii_lowercase()) {
            Some(v) => return Some(v),
            None => crate::report::term::err(&format!("{answer:?} is not an answer: {hint}")),
        }
    }
}

impl Prompt for RunChooserUi {
    fn confirm(&mut self, hub: &DiscoveredHub) -> bool {
        let question = format!("One hub found: {}. Test it? [Y/n]: ", describe(hub));
        ask_until(&question, "type y (or just Enter) or n", |a| match a {
            "" | "y" | "yes" => Some(true),
            "n" | "no" => Some(false),
            _ => None,
        })
        .unwrap_or(false)
    }

    fn pick(&mut self, hubs: &[DiscoveredHub]) -> Pick {
        let mut list = String::from("Hubs found:");
        for (i, h) in hubs.iter().enumerate() {
            list.push_str(&format!("\n  {}. {}", i + 1, describe(h)));
        }
        crate::report::term::err(&list);
        let n = hubs.len();
        let question = format!("Hub to test (1-{n}, a = all, empty = none): ");
        let hint = format!("type a number from 1 to {n}, a for all, or Enter for none");
        ask_until(&question, &hint, |a| match a {
            "a" | "all" => Some(Pick::All),
            "" => Some(Pick::Abort),
            a => match a.parse::<usize>() {
                Ok(k) if (1..=n).contains(&k) => Some(Pick::One(k - 1)),
                _ => None,
            },
        })
        .unwrap_or(Pick::Abort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_is_validated() {
        assert_eq!(parse_timeout("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_timeout("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_timeout("800ms").unwrap(), Duration::from_millis(800));
        assert_eq!(parse_timeout("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["0", "0ms", "-1", "abc", "NaN", "1e9", "61m", "2d"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn txt_values_that_would_not_read_back_are_quoted() {
        assert_eq!(txt_value("Soil sensor 1"), "Soil sensor 1");
        assert_eq!(txt_value("Gewächshaus"), "Gewächshaus");
        assert_eq!(txt_value(""), "\"\"");
        assert_eq!(txt_value(" Temp  in shade "), "\" Temp  in shade \"");
        assert_eq!(txt_value("a, b"), "\"a, b\"");
    }

    #[test]
    fn timeout_takes_the_one_duration_syntax() {
        // The run's --timeout takes `2s`; so do discover's and --discover-timeout.
        for (s, want) in [
            ("2s", 2000),
            ("800ms", 800),
            ("1m", 60_000),
            ("1h", 3_600_000),
        ] {
            assert_eq!(parse_timeout(s), Ok(Duration::from_millis(want)), "{s}");
        }
    }

    #[test]
    fn a_hub_name_with_control_characters_is_described_escaped() {
        use crate::device::mdns::HubTxt;
        use crate::discovery::HubAddr;
        let instance = "Evil\u{1b}]0;x\u{7}\r\nok";
        let h = DiscoveredHub {
            instance: instance.into(),
            fullname: format!("{instance}._vege._tcp.local."),
            host: format!("{instance}.local."),
            port: 80,
            addresses: vec![HubAddr {
                ip: "127.0.0.1".parse().unwrap(),
                interfaces: vec!["lo".into()],
                scope_id: 0,
            }],
            txt: vec![],
            hub_txt: HubTxt::default(),
            resolved_after: Duration::from_millis(40),
        };
        let d = describe(&h);
        assert!(d.starts_with("Evil\\x1b]0;x\\x07\\r\\nok ("), "{d}");
        assert!(!d.chars().any(|c| c.is_control()), "{d}");
    }

    #[test]
    fn shortfall_names_the_problem() {
        let d = Discovery {
            hubs: vec![],
            stopped: StopReason::Timeout,
            elapsed: Duration::from_secs(5),
        };
        let msg = shortfall(&d, None).unwrap();
        assert!(msg.starts_with("no hub found in 5.0 s.") && msg.contains("--device"));
    }
}
