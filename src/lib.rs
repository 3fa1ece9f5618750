//! vegehub-harness: a hardware integration test harness for Vegetronix
//! VegeHub hubs, and the simulated hub it is tested against.
//!
//! # Layout
//!
//! ```text
//! error.rs       thiserror enums shared by the library; depends on nothing
//! exit_code.rs   every exit code, named, and the one match from outcome to code
//! wait.rs        the waits in progress (answer, relay, close check), registered
//!                by client, scenarios and ledger for the progress lines; prints nothing
//! device/        the wire model: serde types for info, config (both firmware
//!                generations), actuators, data updates; API paths; the mDNS
//!                service type and TXT keys. Depends on nothing internal.
//! backup.rs      config backups: atomic 0600 files in a private dir, written
//!                before a hub's first config write, holding the answer byte for
//!                byte; loaded and validated for `restore`
//! redact.rs      redaction by allow-list in output and reports (--show-secrets);
//!                unparseable bodies as length + hash
//! json_diff.rs   deep-equal that names the differing JSON paths, never values;
//!                numbers compared exactly (`diff_texts`, `exact`)
//! actuator_limit.rs  the only constructor of actuator commands: every `on`
//!                capped by --max-on-seconds
//! teardown/      undo obligations per hub, cleanup with timeouts and backoff,
//!                SIGINT/SIGTERM handling
//! safety.rs      the run's safety flags validated into one shared `Safety`
//! restore/       the `restore` command: MAC check, write, verify deep-equal
//! record/        the `record` command: read-only reads of a hub -> a redacted
//!                simulator profile, proven on an in-process simulator; uses
//!                client, json_diff, redact, sim (as the device)
//! client.rs      the shared session: the one place a reqwest client is built;
//!                typed calls for one hub, timeouts, bounded visible retry,
//!                exchange log; every answer checked (no redirects, bounded
//!                body, error field, shape) and the hub's MAC held before each
//!                write; uses device, ledger
//! ledger.rs      connection accounting and the leak verdict: opens seen by a
//!                reqwest connector layer, closes read from the OS socket table
//! discovery.rs   mdns-sd browse -> discovered hubs, the stop rule; uses device
//! local_names.rs `--device NAME.local` resolved over mDNS when the system cannot
//! discover_cli.rs  the `discover` command: args, spinner, text/JSON listing
//! select.rs      choosing a run's hubs from a discovery (--select, --all, prompt)
//! scenario/      one file per scenario (mac, info, actuator_status,
//!                config_round_trip, actuators, setup) plus facts, failure
//!                wording over json_diff, deadline polling, and deliver.rs
//!                (setup's data receiver and body check); each takes the client
//!                and the hub's facts and returns a structured Record; uses
//!                client, device, json_diff
//! plan.rs        plan files (scenarios/*.json) -> a validated, ordered plan; uses measurement
//! measurement.rs device facts with limits (OpenHTF style) and their verdicts; uses device
//! run.rs         one runtime + one client per run, the plan as libtest-mimic
//!                trials, one thread per hub, session closed and awaited;
//!                `RunReport` (uses client, scenario, sim as "the device")
//! soak.rs        --repeat/--repeat-for: per-cycle measurements (connections,
//!                own sockets, memory, duration) and the slow-leak trend check
//! run_args.rs    the run's flags, validated into `run::RunConfig` before I/O
//!                (report paths, --retries, duplicate --device, --sim=PROFILE)
//! consent.rs     nothing written to a real hub unasked: which changes the flags
//!                allow, and the one question per hub and kind of change
//! cli.rs         the clap structs; `completions SHELL` and `man` from them
//! report/        console summary, verbose trace and safety messages (the only
//!                library code that prints, all through `term`: the one writer,
//!                whole lines, a closed stream stops the run; `text`: our
//!                libtest-shaped result lines; `progress`: spinners for waits;
//!                hub text through `escape`), the JSON run record (schema:
//!                ci/run-record.schema.json), JUnit (ci/junit-10.xsd) and the
//!                HTML report, written atomically on every exit path by the
//!                sink, and the `--format json` event stream; all rendered
//!                from the run's records
//! sim/           the simulated hub: profiles (fixtures/*.json), state + timers, routes
//!                (`app(state) -> Router`), update posts, accept loop + `SimHandle`,
//!                faults, mDNS advertiser. Uses only `device`, never the harness.
//! main.rs        parse args, dispatch, map the outcome to an exit code
//! ```
//!
//! The wall that matters most: `sim` never imports harness code, so the
//! simulator cannot agree with the harness by construction.

pub mod cli;
pub mod device;
pub mod discovery;
pub mod error;
pub mod exit_code;
pub mod json_diff;
pub mod measurement;
pub mod plan;
pub mod record;
pub mod report;
pub mod run;
pub mod run_args;
pub mod safety;
pub mod scenario;
pub mod session;
pub mod sim;
pub mod soak;
pub mod wait;
