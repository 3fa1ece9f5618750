//! Fault specs: what misbehaviour the simulated hub injects, on which
//! endpoint, and how often. Grammar:
//! `KIND[:ARG][@ENDPOINT][,after=N][,times=N]`; `reboot-after` also takes
//! `,down=DURATION` (the hub refuses connections while it boots).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::device::duration::parse_duration;
use crate::device::paths;

/// One of the hub's API endpoints, named as in a fault spec (the path
/// without `/api/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    InfoGet,
    ConfigGet,
    ConfigSet,
    UpdateSend,
    ActuatorsSet,
    ActuatorsStatus,
}

impl Route {
    pub const ALL: [Route; 6] = [
        Route::InfoGet,
        Route::ConfigGet,
        Route::ConfigSet,
        Route::UpdateSend,
        Route::ActuatorsSet,
        Route::ActuatorsStatus,
    ];

    /// The full request path, e.g. `/api/info/get`.
    pub fn path(self) -> &'static str {
        match self {
            Route::InfoGet => paths::INFO_GET,
            Route::ConfigGet => paths::CONFIG_GET,
            Route::ConfigSet => paths::CONFIG_SET,
            Route::UpdateSend => paths::UPDATE_SEND,
            Route::ActuatorsSet => paths::ACTUATORS_SET,
            Route::ActuatorsStatus => paths::ACTUATORS_STATUS,
        }
    }

    /// The name used in fault specs, e.g. `info/get`.
    pub fn name(self) -> &'static str {
        &self.path()["/api/".len()..]
    }

    pub fn from_path(path: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|e| e.path() == path)
    }

    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status (empty body) instead of the real answer.
    Status(u16),
    /// Wait this long before answering.
    Delay(Duration),
    /// Never answer (until the simulator shuts down).
    Hang,
    /// Close the connection without an answer.
    Drop,
    /// Answer 200 with a body that is not valid JSON.
    Malformed,
    /// `Connection: close` on every answer, and close after it.
    ConnClose,
    /// `config/set` answers 200 but stores nothing.
    IgnoreSet,
    /// The actuator slot (every slot if `None`) never turns on.
    StuckOff(Option<u32>),
    /// The actuator slot (every slot if `None`) never turns off once on:
    /// neither its timer nor `state 0` switches it off.
    StuckOn(Option<u32>),
    /// At most this many connections at once; the next is closed at once.
    MaxConns(u32),
    /// After this many requests the hub reboots: every connection dropped,
    /// actuators reset, stored config kept; with `down=DURATION` it then
    /// refuses connections for that long, as a real hub does while it boots
    /// and rejoins Wi-Fi.
    RebootAfter(u64),
    /// `update/send` answers 200 but the hub posts nothing.
    NoPost,
    /// `update/send` posts a data update that is wrong in one way.
    BadPost(BadPost),
    /// Answer with this 3xx status and a `Location` on another port of
    /// 127.0.0.1 (default 9, the discard port), the same path.
    Redirect { status: u16, port: u16 },
    /// The answer's `error` field reports failure (`1`, or `"failure"` on
    /// actuator status) and a write is not done, with HTTP 200.
    ErrorField,
    /// `config/get`: the answer carries a byte that is not UTF-8 inside its
    /// first string value (as a hub storing Latin-1 names would).
    NonUtf8,
    /// The answer is this JSON text instead of the real document
    /// (`shape:null`, `shape:array`, `shape:string`, `shape:number`).
    Shape(String),
    /// The real answer followed by whitespace up to this many bytes, sent
    /// chunked without a length and never held whole by the simulator
    /// (`huge:50M`, `huge:1M`, `huge:300K`).
    Huge(u64),
    /// `actuators/status` leaves this slot out (its relay still works).
    MissingSlot(u32),
    /// `info/get` claims this many actuators (`hub.num_actuators`).
    ClaimActuators(u32),
    /// `info/get` answers with another MAC: another device at the address
    /// (use `after=N` to let the first N answers through).
    MacChange,
    /// Hub strings carry terminal control characters: firmware version,
    /// Wi-Fi strength, the hub's name and a config key (ESC, BEL, CR; the
    /// name also a C1 CSI and a right-to-left override).
    CtrlChars,
    /// The config holds secrets under key names no deny-list knows
    /// (`wifi_pass`, `passphrase`, `pwd`, a webhook URL) and a number under
    /// `hub.api_key`, and a `config/set` answer echoes the first and the
    /// number in a harmless field (`message`).
    SecretFields,
    /// The config holds an integer above 2^64 (`vh_total`), kept exactly.
    BigNumber,
    /// `config/set` stores numbers as the nearest f64, as a hub parsing
    /// into double would (an integer above 2^53 comes back changed).
    LossyNumbers,
    /// The key that decides an answer appears twice, the truth first and a
    /// harmless-looking value last (what a parser keeping the last one
    /// reads): actuator status `"state":1,"state":0`; `info/get`
    /// `mac_addr` of another device first; `config/get` `"error":1` first;
    /// a write answers `{"error":1,"error":0}` and is not done.
    DupKey,
    /// `actuators/status` lists every slot twice: first a copy reading
    /// off, then the real entry.
    DupSlot,
    /// After an off command switches the slot (every slot without one) off,
    /// it reads off once, then switches itself back on for the duration of
    /// its last on, as a schedule window opening again would.
    Relapse(Option<u32>),
    /// `config/set` answers 200 but stores only the first section of the
    /// body (old firmware: `hub`, not `api_key`).
    PartialSet,
    /// The answer's `error` field is this JSON value (`"0"`, `false`,
    /// `null`, `0.0`, `""`): neither documented success value; a write
    /// answered so is not done.
    ErrorValue(String),
}

/// How a `bad-post` data update is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPost {
    /// Another hub's MAC.
    Mac,
    /// An empty API key.
    Key,
    /// The last slot missing.
    Slots,
    /// Sample times as numbers.
    Time,
}

/// The JSON text a `shape:NAME` fault answers with.
pub(crate) fn shape_body(name: &str) -> Option<&'static str> {
    Some(match name {
        "null" => "null",
        "array" => "[]",
        "string" => "\"config\"",
        "number" => "7",
        _ => return None,
    })
}

/// `300K`, `1M`, `50M`, or plain bytes (K and M are 1024-based).
fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.strip_suffix(['K', 'k']) {
        Some(n) => (n, 1024),
        None => match s.strip_suffix(['M', 'm']) {
            Some(n) => (n, 1024 * 1024),
            None => (s, 1),
        },
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// A parsed `--fault` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// `None`: every endpoint.
    pub endpoint: Option<Route>,
    /// Skip the first `after` matching events.
    pub after: u64,
    /// Apply at most this many times (`None`: always).
    pub times: Option<u64>,
    /// `reboot-after` only: how long the hub is down after each reboot.
    pub down: Option<Duration>,
    spec: String,
}

/// A fault spec that does not parse. The message names the spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault spec {spec:?}: {reason}")]
pub struct FaultSpecError {
    pub spec: String,
    pub reason: String,
}

impl FaultSpec {
    /// The spec as written.
    pub fn as_str(&self) -> &str {
        &self.spec
    }

    /// Whether the `n`th matching event (0-based) is inside the
    /// `after`/`times` window.
    pub fn window_contains(&self, n: u64) -> bool {
        n >= self.after && self.times.is_none_or(|t| n - self.after < t)
    }

    /// Whether this fault applies to requests on `endpoint`.
    pub fn matches(&self, endpoint: Route) -> bool {
        self.endpoint.is_none_or(|e| e == endpoint)
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

/// The fault kind of this name if it is one that takes no argument.
fn bare_kind(name: &str) -> Option<FaultKind> {
    Some(match name {
        "hang" => FaultKind::Hang,
        "drop" => FaultKind::Drop,
        "malformed" => FaultKind::Malformed,
        "conn-close" => FaultKind::ConnClose,
        "ignore-set" => FaultKind::IgnoreSet,
        "error-field" => FaultKind::ErrorField,
        "non-utf8" => FaultKind::NonUtf8,
        "mac-change" => FaultKind::MacChange,
        "ctrl-chars" => FaultKind::CtrlChars,
        "secret-fields" => FaultKind::SecretFields,
        "big-number" => FaultKind::BigNumber,
        "lossy-numbers" => FaultKind::LossyNumbers,
        "dup-key" => FaultKind::DupKey,
        "dup-slot" => FaultKind::DupSlot,
        "partial-set" => FaultKind::PartialSet,
        "no-post" => FaultKind::NoPost,
        _ => return None,
    })
}

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<FaultSpec, FaultSpecError> {
        let err = |reason: String| FaultSpecError {
            spec: spec.to_owned(),
            reason,
        };
        let mut parts = spec.split(',');
        let head = parts.next().unwrap_or_default();
        let (head, endpoint) = match head.split_once('@') {
            Some((h, e)) => {
                let ep = Route::from_name(e).ok_or_else(|| {
                    let names: Vec<_> = Route::ALL.iter().map(|e| e.name()).collect();
                    err(format!(
                        "unknown endpoint {e:?} (one of {})",
                        names.join(", ")
                    ))
                })?;
                (h, Some(ep))
            }
            None => (head, None),
        };
        let (name, arg) = match head.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (head, None),
        };
        let need_arg = |what: &str| arg.ok_or_else(|| err(format!("{name} needs :{what}")));
        let no_arg = || match arg {
            Some(a) => Err(err(format!("{name} takes no argument (got {a:?})"))),
            None => Ok(()),
        };
        let count = |what: &str, a: &str| {
            a.parse::<u64>()
                .map_err(|_| err(format!("{what} must be a whole number, got {a:?}")))
        };
        let slot = |a: Option<&str>| match a {
            None => Ok(None),
            Some(a) => a
                .parse::<u32>()
                .map(Some)
                .map_err(|_| err(format!("{name} slot must be a whole number, got {a:?}"))),
        };
        let kind = match name {
            "status" => {
                let a = need_arg("CODE")?;
                match a.parse::<u16>() {
                    Ok(c) if (100..=599).contains(&c) => FaultKind::Status(c),
                    _ => return Err(err(format!("status code must be 100..=599, got {a:?}"))),
                }
            }
            "delay" => {
                let a = need_arg("DURATION")?;
                FaultKind::Delay(parse_duration(a).map_err(|e| err(format!("bad duration: {e}")))?)
            }
            "stuck-off" => FaultKind::StuckOff(slot(arg)?),
            "stuck-on" => FaultKind::StuckOn(slot(arg)?),
            "max-conns" => {
                let n = count("max-conns", need_arg("N")?)?;
                if n == 0 {
                    return Err(err("max-conns must be at least 1".into()));
                }
                FaultKind::MaxConns(
                    u32::try_from(n).map_err(|_| err("max-conns is too large".into()))?,
                )
            }
            "reboot-after" => FaultKind::RebootAfter(count("reboot-after", need_arg("N")?)?),
            "redirect" => {
                let a = need_arg("CODE[>PORT]")?;
                let (code, port) = match a.split_once('>') {
                    Some((c, p)) => (c, Some(p)),
                    None => (a, None),
                };
                let status = match code.parse::<u16>() {
                    Ok(c) if (300..=399).contains(&c) => c,
                    _ => {
                        return Err(err(format!(
                            "redirect status must be 300..=399, got {code:?}"
                        )))
                    }
                };
                let port = match port {
                    None => 9,
                    Some(p) => p
                        .parse::<u16>()
                        .map_err(|_| err(format!("redirect port must be 1..=65535, got {p:?}")))?,
                };
                FaultKind::Redirect { status, port }
            }
            "shape" => {
                let a = need_arg("null|array|string|number")?;
                shape_body(a).ok_or_else(|| {
                    err(format!(
                        "shape must be null, array, string or number, got {a:?}"
                    ))
                })?;
                FaultKind::Shape(a.to_owned())
            }
            "huge" => {
                let a = need_arg("SIZE")?;
                FaultKind::Huge(parse_size(a).ok_or_else(|| {
                    err(format!(
                        "huge size must be bytes, or a number with K or M, got {a:?}"
                    ))
                })?)
            }
            "missing-slot" => FaultKind::MissingSlot(
                slot(Some(need_arg("SLOT")?))?.expect("an argument was given"),
            ),
            "claim-actuators" => {
                let n = count("claim-actuators", need_arg("N")?)?;
                FaultKind::ClaimActuators(
                    u32::try_from(n).map_err(|_| err("claim-actuators is above 2^32-1".into()))?,
                )
            }
            "relapse" => FaultKind::Relapse(slot(arg)?),
            "error-value" => {
                let a = need_arg("JSON")?;
                match serde_json::from_str::<serde_json::Value>(a) {
                    Ok(v) if v != serde_json::json!(0) && v != serde_json::json!("success") => {
                        FaultKind::ErrorValue(a.to_owned())
                    }
                    _ => {
                        return Err(err(format!(
                            "error-value takes a JSON value other than 0 and \"success\", got {a:?}"
                        )))
                    }
                }
            }
            "bad-post" => FaultKind::BadPost(match need_arg("mac|key|slots|time")? {
                "mac" => BadPost::Mac,
                "key" => BadPost::Key,
                "slots" => BadPost::Slots,
                "time" => BadPost::Time,
                a => {
                    return Err(err(format!(
                        "bad-post takes mac, key, slots or time, got {a:?}"
                    )))
                }
            }),
            "" => return Err(err("empty fault kind".into())),
            other => match bare_kind(other) {
                Some(kind) => no_arg().map(|_| kind)?,
                None => {
                    return Err(err(format!(
                        "unknown fault kind {other:?} (status, delay, hang, drop, malformed, \
                         conn-close, ignore-set, stuck-off, stuck-on, max-conns, reboot-after, \
                         redirect, error-field, non-utf8, shape, huge, missing-slot, claim-actuators, \
                         mac-change, ctrl-chars, secret-fields, big-number, lossy-numbers, no-post, \
                         bad-post, dup-key, dup-slot, relapse, partial-set, error-value)"
                    )))
                }
            },
        };
        match (&kind, endpoint) {
            (FaultKind::IgnoreSet, Some(e)) if e != Route::ConfigSet => {
                return Err(err("ignore-set applies only to config/set".into()))
            }
            (FaultKind::StuckOff(_) | FaultKind::StuckOn(_), Some(e))
                if e != Route::ActuatorsSet =>
            {
                return Err(err(format!("{name} applies only to actuators/set")))
            }
            (FaultKind::NoPost | FaultKind::BadPost(_), Some(e)) if e != Route::UpdateSend => {
                return Err(err(format!("{name} applies only to update/send")))
            }
            (FaultKind::MaxConns(_), Some(_)) => {
                return Err(err("max-conns limits connections, not an endpoint".into()))
            }
            (FaultKind::NonUtf8, Some(e)) if e != Route::ConfigGet => {
                return Err(err("non-utf8 applies only to config/get".into()))
            }
            (FaultKind::MissingSlot(_), Some(e)) if e != Route::ActuatorsStatus => {
                return Err(err("missing-slot applies only to actuators/status".into()))
            }
            (FaultKind::ClaimActuators(_) | FaultKind::MacChange, Some(e))
                if e != Route::InfoGet =>
            {
                return Err(err(format!("{name} applies only to info/get")))
            }
            (FaultKind::LossyNumbers | FaultKind::PartialSet, Some(e)) if e != Route::ConfigSet => {
                return Err(err(format!("{name} applies only to config/set")))
            }
            (FaultKind::DupSlot, Some(e)) if e != Route::ActuatorsStatus => {
                return Err(err("dup-slot applies only to actuators/status".into()))
            }
            (FaultKind::Relapse(_), Some(e)) if e != Route::ActuatorsSet => {
                return Err(err("relapse applies only to actuators/set".into()))
            }
            (FaultKind::CtrlChars | FaultKind::SecretFields | FaultKind::BigNumber, Some(_)) => {
                return Err(err(format!(
                    "{name} changes the hub's data, not an endpoint"
                )))
            }
            _ => {}
        }
        let mut after = 0;
        let mut times = None;
        let mut down = None;
        for opt in parts {
            match opt.split_once('=') {
                Some(("after", n)) => after = count("after", n)?,
                Some(("times", n)) => times = Some(count("times", n)?),
                Some(("down", d)) if matches!(kind, FaultKind::RebootAfter(_)) => {
                    down = Some(parse_duration(d).map_err(|e| err(format!("bad duration: {e}")))?)
                }
                Some(("down", _)) => return Err(err("down= applies only to reboot-after".into())),
                _ => {
                    return Err(err(format!(
                        "unknown option {opt:?} (after=N, times=N, down=DURATION)"
                    )))
                }
            }
        }
        if matches!(kind, FaultKind::RebootAfter(_)) && after > 0 {
            return Err(err(
                "reboot-after takes no after= (its N already counts requests)".into(),
            ));
        }
        Ok(FaultSpec {
            kind,
            endpoint,
            after,
            times,
            down,
            spec: spec.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_takes_a_down_time_and_nothing_else_does() {
        let f: FaultSpec = "reboot-after:3,down=1s".parse().unwrap();
        assert_eq!(f.kind, FaultKind::RebootAfter(3));
        assert_eq!(f.down, Some(Duration::from_secs(1)));
        let e = "drop,down=1s".parse::<FaultSpec>().unwrap_err();
        assert!(
            e.to_string().contains("down= applies only to reboot-after"),
            "{e}"
        );
        let e = "reboot-after:3,down=soon".parse::<FaultSpec>().unwrap_err();
        assert!(e.to_string().contains("bad duration"), "{e}");
    }

    #[test]
    fn delays_take_the_harness_duration_syntax() {
        // The same syntax as --timeout: a bare number is seconds, h is hours.
        for (spec, want) in [
            ("delay:2", Duration::from_secs(2)),
            ("delay:300ms", Duration::from_millis(300)),
            ("delay:1h", Duration::from_secs(3600)),
        ] {
            let f: FaultSpec = spec.parse().unwrap();
            assert_eq!(f.kind, FaultKind::Delay(want), "{spec}");
        }
        let e = "delay:2d".parse::<FaultSpec>().unwrap_err();
        assert!(e.to_string().contains("unknown unit"), "{e}");
    }

    #[test]
    fn parses_the_whole_grammar() {
        let f: FaultSpec = "status:500@config/set,after=1,times=2".parse().unwrap();
        assert_eq!(f.kind, FaultKind::Status(500));
        assert_eq!(f.endpoint, Some(Route::ConfigSet));
        assert_eq!((f.after, f.times), (1, Some(2)));
        assert!(!f.window_contains(0));
        assert!(f.window_contains(1) && f.window_contains(2));
        assert!(!f.window_contains(3));

        let cases = [
            ("delay:300ms", FaultKind::Delay(Duration::from_millis(300))),
            (
                "delay:2s@info/get",
                FaultKind::Delay(Duration::from_secs(2)),
            ),
            ("hang@actuators/status", FaultKind::Hang),
            ("drop", FaultKind::Drop),
            ("malformed@info/get", FaultKind::Malformed),
            ("conn-close", FaultKind::ConnClose),
            ("ignore-set", FaultKind::IgnoreSet),
            ("stuck-off", FaultKind::StuckOff(None)),
            ("stuck-on:1", FaultKind::StuckOn(Some(1))),
            ("max-conns:2", FaultKind::MaxConns(2)),
            ("reboot-after:5", FaultKind::RebootAfter(5)),
            (
                "redirect:302>8080@config/get",
                FaultKind::Redirect {
                    status: 302,
                    port: 8080,
                },
            ),
            (
                "redirect:307",
                FaultKind::Redirect {
                    status: 307,
                    port: 9,
                },
            ),
            ("error-field@config/set", FaultKind::ErrorField),
            ("non-utf8@config/get", FaultKind::NonUtf8),
            ("shape:null@config/get", FaultKind::Shape("null".into())),
            ("huge:50M@info/get", FaultKind::Huge(50 * 1024 * 1024)),
            ("huge:300K", FaultKind::Huge(300 * 1024)),
            ("missing-slot:1@actuators/status", FaultKind::MissingSlot(1)),
            (
                "claim-actuators:4294967295",
                FaultKind::ClaimActuators(u32::MAX),
            ),
            ("mac-change@info/get", FaultKind::MacChange),
            ("ctrl-chars", FaultKind::CtrlChars),
            ("secret-fields", FaultKind::SecretFields),
            ("big-number", FaultKind::BigNumber),
            ("lossy-numbers", FaultKind::LossyNumbers),
            ("dup-key@actuators/status", FaultKind::DupKey),
            ("dup-slot", FaultKind::DupSlot),
            ("relapse:1", FaultKind::Relapse(Some(1))),
            ("relapse@actuators/set", FaultKind::Relapse(None)),
            ("partial-set", FaultKind::PartialSet),
            (
                "error-value:\"0\"@config/set",
                FaultKind::ErrorValue("\"0\"".into()),
            ),
            ("error-value:0.0", FaultKind::ErrorValue("0.0".into())),
        ];
        for (spec, kind) in cases {
            let f: FaultSpec = spec.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(f.kind, kind, "{spec}");
            assert_eq!(f.to_string(), spec);
            assert!(f.window_contains(1_000_000), "{spec}: unlimited by default");
        }
    }

    #[test]
    fn bad_specs_name_the_spec() {
        for spec in [
            "",
            "status",
            "status:99",
            "status:abc",
            "delay:5d",
            "delay:soon",
            "hang:1",
            "explode",
            "drop@info/put",
            "drop,after=x",
            "drop,every=2",
            "ignore-set@info/get",
            "stuck-on:x",
            "stuck-off@config/set",
            "max-conns:0",
            "max-conns:2@info/get",
            "reboot-after",
            "redirect:200",
            "redirect:302>x",
            "shape:tree",
            "huge:lots",
            "missing-slot",
            "non-utf8@info/get",
            "mac-change@config/get",
            "big-number@config/get",
            "claim-actuators:99999999999",
            "reboot-after:2,after=1",
            "dup-slot@info/get",
            "relapse:x",
            "partial-set@config/get",
            "error-value:0",
            "error-value:\"success\"",
            "error-value:nope",
        ] {
            let e = spec.parse::<FaultSpec>().unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("bad fault spec {spec:?}: ")),
                "{msg}"
            );
            assert!(!msg.contains('\n'), "{msg}");
        }
    }
}
