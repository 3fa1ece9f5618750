//! `vegehub-harness sim`: serve a simulated hub from the command line until
//! Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args;

use crate::exit_code;
use crate::sim::{FaultSpec, Profile, SimOptions};

const FAULT_HELP: &str = "\
Inject a fault (repeatable): KIND[:ARG][@ENDPOINT][,after=N][,times=N]

ENDPOINT is the path without /api/ (info/get, config/get, config/set,
update/send, actuators/set, actuators/status); omitted = every endpoint.
after=N skips the first N matching requests; times=N applies only N times.

Kinds:
  status:CODE      answer with HTTP status CODE (empty body) instead
  delay:DUR        wait DUR (300ms, 2s, 1m, 1h; bare number = s) before answering
  hang             never answer (until the simulator stops)
  drop             close the connection without an answer
  malformed        answer 200 with a body that is not valid JSON
  conn-close       send `Connection: close` on every answer, then close
  ignore-set       config/set answers 200 but stores nothing
  stuck-off[:SLOT] the actuator (every slot if no SLOT) never turns on
  stuck-on[:SLOT]  the actuator never turns off once on (neither its timer
                   nor state 0); after/times count the off attempts
  max-conns:N      at most N connections at once; the next is closed at once
  reboot-after:N   after N requests the hub reboots: every connection
                   dropped, actuators reset, stored config kept
                   (once; times=K allows K reboots); down=DUR keeps it
                   down (refusing connections) for DUR while it boots
  no-post          update/send answers 200 but no data update is posted
  bad-post:HOW     update/send posts a wrong data update: mac (another
                   hub's MAC), key (empty api_key), slots (last slot
                   missing) or time (sample times as numbers)
  redirect:CODE[>PORT]  answer a 3xx redirect to the same path on
                   127.0.0.1:PORT (default 9)
  error-field      the answer's `error` field reports failure (HTTP 200);
                   a write (config/set, actuators/set) is not done
  non-utf8         config/get carries a byte that is not UTF-8 in a string
  shape:KIND       answer null, array, string or number instead of the
                   document
  huge:SIZE        the real answer padded with whitespace to SIZE (300K,
                   1M, 50M), chunked, no length
  missing-slot:SLOT  actuators/status leaves SLOT out (the relay works)
  claim-actuators:N  info/get claims N actuators
  mac-change       info/get answers with another MAC (another device)
  ctrl-chars       hub strings carry ESC, BEL and CR: firmware, Wi-Fi
                   strength, hub name (also U+009B, U+202E), a config key
  secret-fields    the config holds secrets under unusual key names and a
                   number as hub.api_key; a config/set answer echoes two
                   of them in its message
  big-number       the config holds an integer above 2^64 (kept exactly)
  lossy-numbers    config/set stores numbers as the nearest f64
  dup-key          the deciding key twice, the truth first: status
                   state 1 then 0; info another MAC first; config error 1
                   first; a write answers error 1 then 0 and is not done
  dup-slot         actuators/status lists every slot twice, first as off
  relapse[:SLOT]   after an off, the slot reads off once, then switches
                   itself back on for the duration of its last on
  partial-set      config/set answers 200 but stores only the body's first
                   section
  error-value:JSON the error field is this JSON value (a string 0, false,
                   null, 0.0); a write answered so is not done
  (malformed on config/get cuts the real document off two thirds in)";

/// Serve a simulated VegeHub until Ctrl-C or SIGTERM.
///
/// Prints the base URL as the first line of stdout, then serves. On shutdown
/// prints `connections: accepted N, open at shutdown N`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Hub profile: a built-in name (hub-new-firmware, hub-old-firmware,
    /// hub-4-relay-ac, hub-battery-sensor) or a path to a profile .json file.
    #[arg(long, value_name = "NAME|PATH", default_value = "hub-new-firmware")]
    pub profile: String,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// Announce the hub over mDNS as `_vege._tcp.local.`.
    #[arg(long)]
    pub advertise: bool,
    #[arg(long = "fault", value_name = "SPEC", long_help = FAULT_HELP, help = "Inject a fault (repeatable); see --help for the grammar and kinds")]
    pub faults: Vec<String>,
    /// Serve N hubs from this one process, each with its own port, MAC and
    /// name (hub 1 is the profile as it is; hub K has K-1 added to the
    /// MAC's low bytes and, unless named after its MAC, `_K` added to its
    /// name). With a fixed --bind port they take PORT..PORT+N-1. Stdout
    /// starts with one line per hub: `URL NAME MAC`. Faults apply to every
    /// hub.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub count: u32,
}

/// Most hubs one `sim --count` serves.
pub const MAX_COUNT: u32 = 65_536;

/// Validate the arguments into options, before any I/O.
pub fn options(args: &SimArgs) -> Result<SimOptions, String> {
    let mut all = shelf(args)?;
    Ok(all.swap_remove(0))
}

/// Validate the arguments into one set of options per hub (`--count`),
/// before any I/O.
pub fn shelf(args: &SimArgs) -> Result<Vec<SimOptions>, String> {
    if args.count == 0 || args.count > MAX_COUNT {
        return Err(format!(
            "--count {}: must be between 1 and {MAX_COUNT}",
            args.count
        ));
    }
    let port = args.bind.port();
    if port != 0 && u32::from(port) + args.count - 1 > u32::from(u16::MAX) {
        return Err(format!(
            "--count {} from --bind port {port} runs past port {}",
            args.count,
            u16::MAX
        ));
    }
    let profile = Profile::load(&args.profile).map_err(|e| e.to_string())?;
    let faults = args
        .faults
        .iter()
        .map(|s| s.parse::<FaultSpec>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((0..args.count)
        .map(|i| {
            let mut bind = args.bind;
            if port != 0 {
                bind.set_port(port + i as u16);
            }
            SimOptions {
                profile: profile.numbered(i),
                bind,
                faults: faults.clone(),
                advertise: args.advertise,
                responder: None,
            }
        })
        .collect())
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("vegehub-harness: error: {msg:#}");
    exit_code::USAGE
}

/// Run the `sim` command; returns the process exit code.
pub fn run(args: SimArgs) -> i32 {
    let opts = match shelf(&args) {
        Ok(o) => o,
        Err(e) => return fail(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format_args!("sim: cannot build the runtime: {e}")),
    };
    rt.block_on(serve(opts))
}

async fn serve(mut shelf: Vec<SimOptions>) -> i32 {
    // Handlers go in before the URL is printed, so a signal sent as soon as
    // the URL is read cannot kill the process before it reports.
    let stop_signal = match stop_signals() {
        Ok(f) => f,
        Err(e) => return fail(format_args!("sim: cannot watch Ctrl-C/SIGTERM: {e}")),
    };
    let count = shelf.len();
    let opts = &shelf[0];
    let describe = format!(
        "simulating {}{} ({}, mac {}, firmware {}, config generation {}, {} actuators){}",
        if count > 1 {
            format!("{count} hubs of ")
        } else {
            String::new()
        },
        opts.profile.source(),
        opts.profile.name(),
        opts.profile.mac(),
        opts.profile.firmware(),
        opts.profile.generation(),
        opts.profile.actuator_count(),
        if opts.faults.is_empty() {
            String::new()
        } else {
            let specs: Vec<_> = opts.faults.iter().map(|f| f.as_str()).collect();
            format!(", faults: {}", specs.join(" "))
        }
    );
    // A shelf of advertised hubs shares one responder (see sim::advertise).
    let responder = if count > 1 && shelf[0].advertise {
        match tokio::task::spawn_blocking(crate::sim::advertise::Responder::new).await {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => return fail(format_args!("sim: --advertise: {e}")),
            Err(e) => return fail(format_args!("sim: --advertise: {e}")),
        }
    } else {
        None
    };
    for opts in &mut shelf {
        opts.responder = responder.clone();
    }
    let mut handles = Vec::with_capacity(count);
    let mut lines = String::new();
    for opts in shelf {
        let (bind, name, mac) = (
            opts.bind,
            opts.profile.name().to_owned(),
            opts.profile.mac().clone(),
        );
        match crate::sim::spawn(opts).await {
            Ok(h) => {
                if count > 1 {
                    lines.push_str(&format!("{} {name} {mac}\n", h.base_url()));
                } else {
                    lines.push_str(&format!("{}\n", h.base_url()));
                }
                handles.push(h);
            }
            // Hubs already started stop when their handles drop.
            Err(e) if is_advertise_error(&e) => {
                return fail(format_args!("sim: --advertise ({name}): {e}"))
            }
            Err(e) => {
                return fail(format_args!(
                    "sim: cannot serve {name} on --bind {bind}: {e}"
                ))
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(lines.as_bytes());
    let _ = stdout.flush();
    drop(stdout);
    eprintln!("{describe}");
    stop_signal.await;
    let open_at_shutdown: u64 = handles.iter().map(|h| h.stats().open).sum();
    let mut accepted = 0;
    let mut code = exit_code::SUCCESS;
    // Together: each advertiser's goodbye has its own deadline.
    let stopped = futures_util::future::join_all(handles.into_iter().map(|h| h.stop())).await;
    for result in stopped {
        match result {
            Ok(stats) => accepted += stats.accepted,
            Err(e) => code = fail(format_args!("sim: {e}")),
        }
    }
    if let Some(r) = responder {
        if let Err(e) = tokio::task::spawn_blocking(move || r.shutdown())
            .await
            .unwrap_or_else(|e| Err(crate::sim::advertise::AdvertiseError(e.to_string())))
        {
            code = fail(format_args!("sim: {e}"));
        }
    }
    if code == exit_code::SUCCESS {
        // A reader that took only the URL lines may be gone: not an error.
        let _ = writeln!(
            std::io::stdout(),
            "connections: accepted {accepted}, open at shutdown {open_at_shutdown}"
        );
    }
    let _ = std::io::stdout().flush();
    code
}

fn is_advertise_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<crate::sim::advertise::AdvertiseError>())
}

/// Ctrl-C or SIGTERM, registered now (not on first poll).
#[cfg(unix)]
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn stop_signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
