//! One logical request to a hub: attempts on a fresh connection after a
//! connection error, with a bounded, doubling backoff, each attempt on the
//! request's own clock, which tells the harness's lag from the hub's silence.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::answer::{read_bounded, Read, MAX_ANSWER_BYTES};
use super::error::error_chain;
use super::{CallError, ClientEvent, HubClient, IncidentKind};

/// How many times a request's timeout is given again because the harness
/// itself fell behind while it ran.
const LAG_EXTENSIONS: u32 = 2;

/// Why an attempt ended without an answer.
pub(super) enum Failure {
    Http(reqwest::Error),
    /// The request's clock ran out; with the harness's lag seen last.
    Expired {
        lag: Duration,
    },
}

/// How one logical request ended, for [`HubClient::conclude`].
pub(super) struct Ended {
    /// The answer (status, `Location`, body read) or why none came.
    pub(super) result: Result<(u16, Option<String>, Read), Failure>,
    /// Attempts made (1 when no retry was needed).
    pub(super) attempts: u32,
    /// The hub dropped a connection, then refused a new one (the reboot rule).
    pub(super) refused: bool,
    pub(super) started: Instant,
}

/// Test-only (`VEGEHUB_HARNESS_DEBUG_STALL=PATH:MS`): the first request to
/// PATH stalls its thread for MS once it is sent, as an overloaded host
/// would: the harness falls behind, the hub does not.
fn debug_stall(path: &str) -> Option<Duration> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    static SPEC: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let spec = SPEC
        .get_or_init(|| std::env::var("VEGEHUB_HARNESS_DEBUG_STALL").ok())
        .as_deref()?;
    let (p, ms) = spec.rsplit_once(':')?;
    if !path.ends_with(p) || DONE.swap(true, Ordering::SeqCst) {
        return None;
    }
    ms.parse().ok().map(Duration::from_millis)
}

/// A request body: the bytes sent, and the document as recorded.
pub(super) struct Req {
    pub(super) bytes: Vec<u8>,
    pub(super) shown: Value,
}

impl Req {
    pub(super) fn json(v: Value) -> Req {
        Req {
            bytes: serde_json::to_vec(&v).expect("a JSON value serialises"),
            shown: v,
        }
    }
}

impl HubClient {
    /// Run one attempt on the request's clock: `request_timeout` of time
    /// the harness was awake for. When the clock runs out but the harness
    /// fell behind meanwhile (the timer itself woke late, or the runtime
    /// did), the same request in flight is given the timeout again, up to
    /// [`LAG_EXTENSIONS`] times: an answer waiting in the socket is taken,
    /// and the hub is never blamed for the harness's lag.
    async fn on_the_clock<F: std::future::Future>(
        &self,
        path: &str,
        attempt: F,
    ) -> Result<F::Output, Duration> {
        use tokio::time::Instant as TInstant;
        let timeout = self.cfg.request_timeout;
        tokio::pin!(attempt);
        if let Some(stall) = debug_stall(path) {
            // Sent, then the thread stops as if starved.
            let once = std::future::poll_fn(|cx| std::task::Poll::Ready(attempt.as_mut().poll(cx)));
            if let std::task::Poll::Ready(out) = once.await {
                return Ok(out);
            }
            std::thread::sleep(stall);
        }
        let mut since = TInstant::now();
        let mut deadline = since + timeout;
        let mut extensions = 0;
        loop {
            match tokio::time::timeout_at(deadline, attempt.as_mut()).await {
                Ok(out) => return Ok(out),
                Err(_) => {
                    let now = TInstant::now();
                    let late = now.saturating_duration_since(deadline);
                    let runtime = self
                        .lag
                        .as_ref()
                        .map_or(Duration::ZERO, |m| m.worst_since(since));
                    let lag = late.max(runtime);
                    if lag < crate::session::lag::significant(timeout) {
                        return Err(Duration::ZERO);
                    }
                    if extensions == LAG_EXTENSIONS {
                        return Err(lag);
                    }
                    extensions += 1;
                    self.incident(
                        IncidentKind::Retry,
                        format!(
                            "{path}: no answer within {timeout:?} while the harness fell \
                             {lag:?} behind; waiting {timeout:?} more for the same request"
                        ),
                    );
                    since = now;
                    deadline = now + timeout;
                }
            }
        }
    }

    /// One logical request: attempts with backoff on connection errors, then
    /// one recorded exchange. Returns the body of a 2xx answer, read up to
    /// [`MAX_ANSWER_BYTES`]; a 3xx is never followed.
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Req>,
    ) -> Result<Vec<u8>, CallError> {
        let started = Instant::now();
        let url = format!("{}{}", self.base, path);
        let attempts_max = self.cfg.retries + 1;
        let mut backoff = self.cfg.backoff;
        let mut attempt = 1;
        // Shown as progress when it lasts (report::progress).
        let wait = crate::session::wait::begin(
            format!("{}: answer to {method} {path}", self.hub),
            Some(self.cfg.request_timeout),
        );
        // For the reboot rule: the hub dropped a connection, then refused one.
        let (mut dropped, mut refused) = (false, false);
        let result = loop {
            let http = match self.http_for_request() {
                Ok(http) => http,
                Err(e) => {
                    return Err(CallError::Transport {
                        hub: self.hub.clone(),
                        method: method.to_string(),
                        path: path.to_owned(),
                        detail: e.to_string(),
                    })
                }
            };
            // The request's own clock is `on_the_clock`; reqwest's timeout
            // only backs it up.
            let backstop = self.cfg.request_timeout * (LAG_EXTENSIONS + 2);
            let mut req = http.request(method.clone(), &url).timeout(backstop);
            if let Some(b) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.bytes.clone());
            }
            let exchange = async {
                match crate::session::ledger::for_hub(&self.hub, req.send()).await {
                    Ok(resp) => {
                        if let Some(ledger) = &self.ledger {
                            ledger.record_response(&self.hub, &resp);
                        }
                        let status = resp.status().as_u16();
                        let location = resp
                            .headers()
                            .get(reqwest::header::LOCATION)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                        let encoding = resp
                            .headers()
                            .get(reqwest::header::CONTENT_ENCODING)
                            .map(|v| v.as_bytes());
                        if let Some(enc) = super::rules::unasked_encoding(encoding) {
                            return Ok((status, location, Read::Encoded(enc)));
                        }
                        read_bounded(resp, MAX_ANSWER_BYTES)
                            .await
                            .map(|read| (status, location, read))
                    }
                    Err(e) => Err(e),
                }
            };
            let outcome = match self.on_the_clock(path, exchange).await {
                Ok(outcome) => outcome,
                Err(lag) => break Err(Failure::Expired { lag }),
            };
            match outcome {
                Ok(ok) => break Ok(ok),
                Err(e) if is_connection_error(&e) && attempt < attempts_max => {
                    if e.is_connect() {
                        refused |= dropped;
                    } else {
                        dropped = true;
                    }
                    self.incident(
                        IncidentKind::Retry,
                        format!(
                            "{method} {path}: attempt {attempt} of {attempts_max}: {}",
                            error_chain(&e)
                        ),
                    );
                    self.emit(ClientEvent::Retry {
                        hub: self.hub.clone(),
                        method: method.to_string(),
                        path: path.to_owned(),
                        attempt,
                        of: attempts_max,
                        backoff,
                        error: error_chain(&e),
                    });
                    // Backoff between attempts, not a settle delay.
                    tokio::time::sleep(backoff).await;
                    // Doubling, up to a ceiling: ten retries stay bounded.
                    backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
                    attempt += 1;
                    wait.retry(format!(
                        "attempt {attempt} of {attempts_max} after {}",
                        error_chain(&e)
                    ));
                }
                Err(e) => break Err(Failure::Http(e)),
            }
        };
        self.conclude(
            &method,
            path,
            body.map(|b| b.shown),
            Ended {
                result,
                attempts: attempt,
                refused,
                started,
            },
        )
    }
}

/// The longest pause between two attempts of one request.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Errors worth another attempt on a fresh connection: the connection could
/// not be made, or it broke before an answer came. Timeouts are not retried:
/// a hub that does not answer in time would only multiply the wait. Every
/// call of the hub's API is idempotent (whole-document set, absolute
/// actuator state), so a repeat is safe.
fn is_connection_error(e: &reqwest::Error) -> bool {
    if e.is_timeout() {
        return false;
    }
    if e.is_connect() {
        return true;
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return true;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            ) {
                return true;
            }
        }
        src = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::client::{build_http, SessionConfig};

    fn client_with(lag: crate::session::lag::LagMonitor) -> HubClient {
        let cfg = SessionConfig {
            request_timeout: Duration::from_secs(1),
            ..SessionConfig::default()
        };
        let http = build_http(&cfg, crate::session::ledger::Ledger::new(2).new_session()).unwrap();
        HubClient::new(http, "http://127.0.0.1:9", "127.0.0.1:9", cfg, None).with_lag_monitor(lag)
    }

    #[tokio::test(start_paused = true)]
    async fn a_timeout_is_the_hubs_unless_the_harness_fell_behind() {
        use tokio::time::Instant as T;
        // No lag: the hub had its second and did not answer.
        let c = client_with(crate::session::lag::LagMonitor::default());
        let start = T::now();
        let r = c
            .on_the_clock("/api/info/get", std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(Duration::ZERO));
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(c.take_incidents().is_empty());

        // The harness keeps falling behind: the same request is given its
        // timeout again twice, then the lag is the verdict, not the hub.
        let lag = crate::session::lag::LagMonitor::default();
        let noter = lag.clone();
        let behind = tokio::spawn(async move {
            loop {
                noter.note(T::now(), Duration::from_millis(400));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let c = client_with(lag.clone());
        let start = T::now();
        let r = c
            .on_the_clock("/api/info/get", std::future::pending::<()>())
            .await;
        assert_eq!(r, Err(Duration::from_millis(400)));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(c.take_incidents().len(), 2);

        // An answer that comes during the extra time is taken.
        let c = client_with(lag);
        let answer = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            7
        };
        assert_eq!(c.on_the_clock("/api/info/get", answer).await, Ok(7));
        behind.abort();
    }
}
