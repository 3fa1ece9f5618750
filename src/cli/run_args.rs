//! Arguments of the main command (the harness run), and their validation
//! into a `run::RunConfig` before any I/O. The opt-in prompt for real hubs
//! lives here too: it is part of reading the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use libtest_mimic::{ColorSetting, FormatSetting};

use crate::device::duration::{parse_duration, parse_within, FlagDuration};
use crate::discovery::select::{DiscoverPlan, Selector};
use crate::discovery::DiscoverOptions;
use crate::error::FatalError;
use crate::plan::{ParamOverrides, Plan};
use crate::report::sink::ReportPaths;
use crate::run::{ConnConfig, RunConfig, Target, TargetSpec};
use crate::session::client::SessionConfig;

/// `--format`: our own words for libtest's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per scenario and hub, then the summary.
    Pretty,
    /// One character per scenario and hub, then the summary.
    Terse,
    /// libtest's JSON events on stdout, one per line; the summary goes to
    /// stderr.
    Json,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// Colour when stdout is a terminal (not TERM=dumb) and NO_COLOR is unset or empty.
    Auto,
    /// Always colour, also into a pipe or file.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run against the built-in simulated hub, started in-process; a profile
    /// (name or JSON file) is given as --sim=PROFILE [default:
    /// hub-new-firmware]. Runs every scenario, actuators and setup included.
    #[arg(long, value_name = "PROFILE", num_args = 0..=1, require_equals = true,
          default_missing_value = "hub-new-firmware")]
    pub sim: Option<String>,

    /// Run against this hub (repeatable). Port defaults to 80.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub device: Vec<String>,

    /// With neither --device nor --sim, hubs are found over mDNS. Test the
    /// one with this instance name, MAC (any notation) or address; a value
    /// matching several hubs is refused.
    #[arg(long, value_name = "NAME|MAC|IP", conflicts_with_all = ["sim", "device", "all"])]
    pub select: Option<String>,

    /// With neither --device nor --sim, test every hub found.
    #[arg(long, conflicts_with_all = ["sim", "device"])]
    pub all: bool,

    /// How long to look for hubs over mDNS at most (stops 1.2 s after the
    /// last new hub); also how long a `--device NAME.local` the system
    /// cannot resolve may take over mDNS.
    #[arg(long, value_name = "DURATION",
          default_value_t = FlagDuration(crate::discovery::DEFAULT_TIMEOUT),
          value_parser = crate::cli::discover::parse_timeout_flag)]
    pub discover_timeout: FlagDuration,

    /// Look for hubs on this network interface only.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["sim", "device"])]
    pub interface: Option<String>,

    /// Allow `config-round-trip` to write a real hub's config back unchanged
    /// (after a backup). Without it (nor a yes at the terminal) the scenario
    /// only reads the config: a run writes nothing to a real hub.
    #[arg(long)]
    pub write_config: bool,

    /// Allow the `actuators` scenario on real hubs (switches relays, valves
    /// and pumps on and off). Without it, asked per hub on a terminal.
    #[arg(long)]
    pub actuators: bool,

    /// Allow the `setup` scenario on real hubs (writes a test API key and
    /// server to the config, then restores the original). Without it,
    /// asked per hub on a terminal.
    #[arg(long)]
    pub setup: bool,

    /// Print every HTTP exchange and retry as it happens (on stderr).
    #[arg(short, long)]
    pub verbose: bool,

    /// The plan: which scenarios run, in which order, with which parameters
    /// and measurements [default: scenarios/default.json, built in].
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Write the run record (JSON, schema ci/run-record.schema.json) here,
    /// while the run goes on (at most once a second) and at the end.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,

    /// Write a JUnit XML report here, while the run goes on (at most once a
    /// second) and at the end.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write a self-contained HTML report here, while the run goes on (at
    /// most once a second) and at the end.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,

    /// The test station's name, recorded in every report.
    #[arg(long, value_name = "NAME", env = "VEGEHUB_HARNESS_STATION")]
    pub station: Option<String>,

    /// The operator's name, recorded in every report.
    #[arg(long, value_name = "NAME", env = "VEGEHUB_HARNESS_OPERATOR")]
    pub operator: Option<String>,

    /// Timeout of each HTTP request (e.g. 5s, 800ms; at most 600s) [default:
    /// the plan's, 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_hub_timeout)]
    pub timeout: Option<Duration>,

    /// Timeout of each TCP connect (at most 600s).
    #[arg(long, value_name = "DURATION",
          default_value_t = FlagDuration(crate::session::client::DEFAULT_CONNECT_TIMEOUT),
          value_parser = |s: &str| parse_hub_timeout(s).map(FlagDuration))]
    pub connect_timeout: FlagDuration,

    /// Extra attempts of a request after a connection error, 0 to 10
    /// [default: the plan's, 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=crate::plan::MAX_RETRIES as i64))]
    pub retries: Option<u32>,

    /// How long a relay or the config has to follow a command (at most
    /// 600s) [default: the plan's, 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_hub_timeout)]
    pub verify_timeout: Option<Duration>,

    /// Wall-clock budget of each scenario: past it the scenario is stopped
    /// where it is and fails, and what it changed is undone (cleanup has its
    /// own timeouts) [default: the plan's, else 24 requests at --timeout
    /// plus the scenario's own waits: 2m for a read-only scenario; at most
    /// 600s].
    #[arg(long, value_name = "DURATION", value_parser = parse_hub_timeout)]
    pub scenario_timeout: Option<Duration>,

    /// Device-side duration of each slot's on/off check, in seconds
    /// [default: the plan's, 5].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=crate::plan::MAX_SECONDS as i64))]
    pub on_seconds: Option<u32>,

    /// Device-side duration of the auto-off check, in seconds [default: the
    /// plan's, 1].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u32).range(1..=crate::plan::MAX_SECONDS as i64))]
    pub auto_off_seconds: Option<u32>,

    /// Run only scenarios whose name contains FILTER (libtest convention).
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,

    /// Match FILTER and --skip exactly.
    #[arg(long)]
    pub exact: bool,

    /// Skip scenarios whose name contains this (repeatable).
    #[arg(long, value_name = "FILTER")]
    pub skip: Vec<String>,

    /// List the scenarios and exit without contacting any hub.
    #[arg(long)]
    pub list: bool,

    /// Output format of the scenario lines [default: pretty].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// When to colour the output [default: auto].
    #[arg(long, value_enum, value_name = "WHEN")]
    pub color: Option<Color>,

    /// Terse scenario lines (one character each).
    #[arg(short, long)]
    pub quiet: bool,

    /// Accepted for libtest compatibility; the scenarios of one hub always
    /// run in order on one thread.
    #[arg(long, value_name = "N")]
    pub test_threads: Option<usize>,

    /// Hubs in flight at once (default: all). With fewer, the hubs go in
    /// batches of N, in the order given: a hub's scenarios run only while
    /// at most N-1 other hubs have a scenario running.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,

    #[command(flatten)]
    pub safety: crate::safety::SafetyArgs,
    /// Connections a hub may have open at once; more fails the run (exit 3).
    #[arg(long, value_name = "N", default_value_t = crate::session::ledger::DEFAULT_CONN_BUDGET as u32,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub conn_budget: u32,

    /// How long to wait, after the session closed, for every connection to
    /// close; one still open then is a leak (exit 3).
    #[arg(long, value_name = "DURATION",
          default_value_t = FlagDuration(crate::session::ledger::DEFAULT_CLOSE_DEADLINE),
          value_parser = FlagDuration::parse)]
    pub close_timeout: FlagDuration,

    /// Soak: run the whole plan N times against the same hubs over the
    /// one session; per cycle its verdict, duration, connections, the
    /// harness's sockets and memory; a steady rise of any of them is a
    /// slow leak (exit 3).
    #[arg(long, value_name = "N", conflicts_with = "repeat_for",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub repeat: Option<u32>,

    /// Soak: start cycles of the whole plan until DURATION has passed (the
    /// last one started finishes), e.g. 8h, 30m.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub repeat_for: Option<Duration>,

    /// Test-only: leak memory or a socket after every soak cycle.
    #[arg(long, hide = true, value_enum, value_name = "WHAT")]
    pub debug_soak_leak: Option<crate::report::soak_record::DebugLeak>,

    /// Test-only: keep one answer unread past the end of the run (a leak).
    #[arg(long, hide = true)]
    pub debug_leak: bool,

    /// Test-only: a new client for every request (the original bug).
    #[arg(long, hide = true)]
    pub debug_session_per_request: bool,
}

/// `--timeout`, `--connect-timeout`, `--verify-timeout`,
/// `--scenario-timeout`: above 0 and at most the plan's own limit on
/// timeouts (`timeout_seconds`, `verify_timeout_seconds`,
/// `scenario_timeout_seconds`: 600 s), the same range as in a plan file.
fn parse_hub_timeout(s: &str) -> Result<Duration, String> {
    let max = crate::plan::MAX_SECONDS;
    parse_within(s, Duration::from_secs(max.into()), &format!("{max}s"))
}

impl RunArgs {
    /// Validate into a run config. Nothing is sent anywhere; on a terminal,
    /// a real hub's hub-changing scenarios may be confirmed interactively.
    pub fn into_config(self) -> Result<RunConfig, FatalError> {
        // The plan and the report paths are checked before anything else:
        // a bad plan sends nothing anywhere.
        let mut plan = match &self.plan {
            Some(path) => Plan::load(path),
            None => Ok(Plan::builtin_default()),
        }
        .map_err(|e| FatalError::Usage(e.to_string()))?;
        ParamOverrides {
            timeout: self.timeout,
            retries: self.retries,
            verify_timeout: self.verify_timeout,
            on_seconds: self.on_seconds,
            auto_off_seconds: self.auto_off_seconds,
            scenario_timeout: self.scenario_timeout,
        }
        .apply(&mut plan);
        let reports = ReportPaths {
            json: self.report_json.clone(),
            junit: self.junit.clone(),
            html: self.report_html.clone(),
            station: self.station.clone(),
            operator: self.operator.clone(),
        };
        reports.check().map_err(FatalError::Usage)?;
        let mut targets = Vec::new();
        if let Some(p) = &self.sim {
            if p.trim().is_empty() {
                return Err(FatalError::Usage("--sim: empty profile name".into()));
            }
            // Checked here so --list refuses a bad profile as a run does.
            crate::sim::Profile::load(p)
                .map_err(|e| FatalError::Usage(format!("--sim={p}: {e:#}")))?;
            targets.push(Target::Sim { profile: p.clone() });
        }
        let mut given: Vec<(String, u16, &str)> = Vec::new();
        for d in &self.device {
            let (host, port) =
                parse_device(d).map_err(|e| FatalError::Usage(format!("--device {d:?}: {e}")))?;
            // The same hub twice would be tested twice, side by side, each
            // run undoing the other's changes: refuse it.
            let key = host.trim_end_matches('.').to_ascii_lowercase();
            if let Some((_, _, first)) = given.iter().find(|(h, p, _)| *h == key && *p == port) {
                return Err(FatalError::Usage(format!(
                    "--device {d:?}: the same hub as --device {first:?}; give each hub once"
                )));
            }
            given.push((key, port, d));
            targets.push(Target::Device { host, port });
        }
        if self.repeat_for.is_some_and(|d| d.is_zero()) {
            return Err(FatalError::Usage(
                "--repeat-for must be more than zero".into(),
            ));
        }
        if self.test_threads == Some(0) {
            return Err(FatalError::Usage(
                "--test-threads must be at least 1".into(),
            ));
        }

        // Hubs found over mDNS are real hubs too.
        let has_device =
            targets.is_empty() || targets.iter().any(|t| matches!(t, Target::Device { .. }));
        // Ask only a person at a terminal, once the hubs are known (see
        // `consent`); CI never blocks on a question.
        let interactive =
            !self.list && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();

        let libtest = libtest_mimic::Arguments {
            filter: self.filter,
            exact: self.exact,
            skip: self.skip,
            list: self.list,
            format: self.format.map(|f| match f {
                Format::Pretty => FormatSetting::Pretty,
                Format::Terse => FormatSetting::Terse,
                Format::Json => FormatSetting::Json,
            }),
            color: self.color.map(|c| match c {
                Color::Auto => ColorSetting::Auto,
                Color::Always => ColorSetting::Always,
                Color::Never => ColorSetting::Never,
            }),
            quiet: self.quiet,
            test_threads: self.test_threads,
            ..Default::default()
        };

        // A run that may write a hub's config must be able to back it up
        // first: find out now, before any hub is contacted.
        let writes_config = ["config-round-trip", "setup"]
            .iter()
            .any(|s| !libtest.is_filtered_out(&libtest_mimic::Trial::test(*s, || Ok(()))));
        let safety = crate::safety::Safety::new(&self.safety);
        if !libtest.list && writes_config && has_device {
            safety
                .backup_dir()
                .and_then(|d| crate::safety::backup::check_writable(&d))
                .map_err(|e| FatalError::Usage(format!("{e}; nothing sent to any hub")))?;
        }

        // No `on` may outlast --max-on-seconds: a longer one asked for by
        // the plan or a flag is a usage error, not a silent cap. A plan
        // without `actuators` switches nothing, but a flag asking for a
        // longer on is refused all the same.
        let max_on = self.safety.max_on_seconds.seconds();
        let ons = match plan.actuator_params() {
            Some(a) => [Some(a.on_seconds), Some(a.auto_off_seconds)],
            None => [self.on_seconds, self.auto_off_seconds],
        };
        for (what, secs) in ["on-seconds", "auto-off-seconds"].into_iter().zip(ons) {
            if let Some(secs) = secs.filter(|&s| s > max_on) {
                return Err(FatalError::Usage(format!(
                    "{what} {secs} (--{what} or the plan) is more than --max-on-seconds {max_on}"
                )));
            }
        }

        Ok(RunConfig {
            jobs: self.jobs.map(|j| j as usize),
            targets: if targets.is_empty() {
                TargetSpec::Discover(DiscoverPlan {
                    options: DiscoverOptions {
                        timeout: self.discover_timeout.0,
                        interface: self.interface,
                        ..DiscoverOptions::default()
                    },
                    select: self
                        .select
                        .as_deref()
                        .map(Selector::parse)
                        .transpose()
                        .map_err(|e| FatalError::Usage(e.to_string()))?,
                    all: self.all,
                    ui: Box::new(crate::cli::discover::RunChooserUi::new()),
                })
            } else {
                TargetSpec::Given(targets)
            },
            session: SessionConfig {
                request_timeout: plan.timeout,
                connect_timeout: self.connect_timeout.0,
                retries: plan.retries,
                max_on: self.safety.max_on_seconds,
                ..SessionConfig::default()
            },
            plan,
            reports,
            redactor: safety.redactor.clone(),
            allow_write_config: self.write_config,
            allow_actuators: self.actuators,
            allow_setup: self.setup,
            interactive,
            mdns_timeout: self.discover_timeout.0,
            verbose: self.verbose,
            libtest,
            safety,
            soak: crate::run::SoakConfig {
                repeat: match (self.repeat, self.repeat_for) {
                    (Some(n), _) if n > 1 => crate::report::soak_record::Repeat::Times(n),
                    (_, Some(d)) => crate::report::soak_record::Repeat::For(d),
                    _ => crate::report::soak_record::Repeat::Once,
                },
                debug_leak: self.debug_soak_leak,
            },
            conn: ConnConfig {
                budget: self.conn_budget as usize,
                close_timeout: self.close_timeout.0,
                debug_leak: self.debug_leak,
                debug_session_per_request: self.debug_session_per_request,
            },
        })
    }
}

/// The `host:port` authority of a URL for a host from [`parse_device`]: an
/// IPv6 address goes in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address. Port
/// defaults to the hub's HTTP port.
pub fn parse_device(s: &str) -> Result<(String, u16), String> {
    let s = s.trim();
    let default = crate::device::DEFAULT_HTTP_PORT;
    let port_of = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("port {p:?} is not a number from 1 to 65535")),
            Ok(n) => Ok(n),
        }
    };
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("missing `]` after an IPv6 address")?;
        let port = match after {
            "" => default,
            p => port_of(p.strip_prefix(':').ok_or("expected `:PORT` after `]`")?)?,
        };
        (h.to_owned(), port)
    } else if s.matches(':').count() > 1 {
        (s.to_owned(), default)
    } else if let Some((h, p)) = s.split_once(':') {
        (h.to_owned(), port_of(p)?)
    } else {
        (s.to_owned(), default)
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    if host.chars().any(|c| matches!(c, '/' | '?' | '#' | '@')) {
        return Err("expected HOST[:PORT], not a URL".into());
    }
    if host.contains(':') || s.starts_with('[') {
        host.parse::<std::net::Ipv6Addr>().map_err(|_| {
            format!("{host:?} is not an IPv6 address (HOST[:PORT], or [IPV6]:PORT)")
        })?;
    } else if !host
        .strip_suffix('.')
        .unwrap_or(&host)
        .split('.')
        .all(|label| {
            // DNS: labels of 1 to 63 characters, a name of at most 253.
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        || host.trim_end_matches('.').len() > 253
    {
        return Err(format!("{host:?} is not a host name or address"));
    }
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices() {
        assert_eq!(
            parse_device("127.0.0.1:8080"),
            Ok(("127.0.0.1".into(), 8080))
        );
        assert_eq!(
            parse_device("vege_a6_20.local"),
            Ok(("vege_a6_20.local".into(), 80))
        );
        assert_eq!(parse_device("[::1]:81"), Ok(("::1".into(), 81)));
        assert_eq!(parse_device("::1"), Ok(("::1".into(), 80)));
        assert!(parse_device("127.0.0.1:0").is_err());
        assert!(parse_device("127.0.0.1:http").is_err());
        assert!(parse_device("http://127.0.0.1/").is_err());
        assert!(parse_device(":80").is_err());
        assert!(parse_device("bad:host:name").is_err());
        assert!(parse_device("[nope]:80").is_err());
        assert!(parse_device("hub..local").is_err());
        assert!(parse_device("hub$.local").is_err());
        assert_eq!(
            parse_device("Vege_A6_20.local."),
            Ok(("Vege_A6_20.local.".into(), 80))
        );
        assert!(parse_device("[::1").is_err());
    }
}
