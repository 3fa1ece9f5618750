//! Setup proven end to end (`deliver_check` in a plan's setup step): a small
//! HTTP receiver of the scenario's own, on the local address that routes to
//! the hub (loopback for a simulated hub), the hub pointed at it with a
//! fresh test key, `update/send`, a deadline for the hub's POST, and the
//! body checked field by field against the documented data update. The
//! receiver's inbound connections are counted apart from the client's.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::device::Mac;

/// Whether `setup` proves the hub delivers data to the server it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliverCheck {
    /// No post: a hub that does not deliver fails the scenario.
    Required,
    /// No post (or no local address that routes to the hub) is a skip with
    /// the reason: the hub may be on a network that cannot reach this
    /// machine. A wrong body still fails.
    IfReachable,
    /// Only the stored config is checked (as before this check existed).
    #[default]
    Off,
}

/// How long the hub has to post after `update/send`, unless the plan says.
pub const DEFAULT_DELIVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest data update the receiver reads.
const MAX_POST_BYTES: usize = 256 * 1024;
/// POSTs kept while the scenario waits for the first.
const MAX_KEPT_POSTS: usize = 4;

/// Bounds on what reaches the receiver: anything on the network may
/// connect to it while it listens, not only the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inbound connections served at once; more are closed as they are
    /// accepted (counted as turned away), so a flood holds no more file
    /// descriptors, tasks or buffers than this.
    pub connections: usize,
    /// Longest the request line and headers may take to arrive.
    pub head_time: Duration,
    /// Longest one connection is served, its whole request and answer
    /// included: a client trickling its body is cut off.
    pub connection_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A hub posts one data update on one connection.
            connections: 8,
            head_time: Duration::from_secs(5),
            connection_time: Duration::from_secs(10),
        }
    }
}

/// Largest request line and headers read (hyper's smallest buffer).
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Wait after a failed accept: it fails when the process is out of file
/// descriptors, and trying again at once would spin a core until one frees.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Inbound connections the receiver saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inbound {
    /// Served (within [`Limits::connections`] at once).
    pub served: usize,
    /// Closed at once: the receiver was serving its limit already.
    pub turned_away: usize,
}

/// Start the receiver on the local address that routes to `client`'s hub.
pub async fn start_for(client: &crate::session::client::HubClient) -> Result<Receiver, String> {
    let hub = client
        .base_url()
        .strip_prefix("http://")
        .unwrap_or(client.base_url())
        .to_owned();
    let ip = local_address_towards(&hub).await?;
    Receiver::start(ip, &nonce())
        .await
        .map_err(|e| format!("cannot listen on {ip}: {e}"))
}

/// `update/send`, then the hub's POST within `timeout`, checked against
/// what the hub says it has (`info/get`). No POST is `Stop::Skip` with the
/// reason (the caller decides whether that fails); a wrong body fails
/// naming the JSON path.
pub async fn prove(
    client: &crate::session::client::HubClient,
    receiver: &mut Receiver,
    api_key: &str,
    timeout: Duration,
) -> super::Step {
    use super::Stop;
    let info = client.info(&["hub", "wifi"]).await?;
    let (Some(hub), Some(wifi)) = (info.hub, info.wifi) else {
        return Err(Stop::Fail(
            "info/get did not answer the hub and wifi sections".into(),
        ));
    };
    let mac = Mac::parse(&wifi.mac_addr).ok_or_else(|| {
        Stop::Fail(format!(
            "info.wifi.mac_addr {} is not a MAC",
            super::diff::quoted(&wifi.mac_addr)
        ))
    })?;
    let want = Expected {
        api_key: api_key.to_owned(),
        mac,
        channels: u64::from(hub.num_channels),
        battery: hub.is_ac == 0,
        actuators: u64::from(hub.num_actuators),
    };
    client.update_send().await?;
    let url = receiver.url();
    let Some(post) = receiver.wait_post(timeout).await else {
        return Err(Stop::Skip(format!(
            "hub did not deliver data to {url} within {} s",
            timeout.as_secs_f64()
        )));
    };
    let body = post
        .body
        .map_err(|e| Stop::Fail(format!("hub's data update to {url}: {e}")))?;
    check_body(&body, &want).map_err(|e| {
        Stop::Fail(format!(
            "hub delivered a data update to {url} with a wrong body: {e}"
        ))
    })
}

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Posted {
    pub path: String,
    /// The body, or why it could not be read.
    pub body: Result<Vec<u8>, String>,
}

/// The scenario's receiver: serving from [`Receiver::start`] until
/// [`Receiver::close`] or drop, recording every POST, within [`Limits`].
pub struct Receiver {
    addr: SocketAddr,
    nonce: String,
    path: String,
    posts: mpsc::Receiver<Posted>,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

/// The receiver's connection counts, kept by its accept loop.
#[derive(Default)]
struct Counts {
    served: AtomicUsize,
    turned_away: AtomicUsize,
    /// Being served now.
    open: AtomicUsize,
}

impl Receiver {
    /// Listen on `ip`, any free port, within the default [`Limits`].
    /// `nonce` makes the path unique.
    pub async fn start(ip: IpAddr, nonce: &str) -> std::io::Result<Receiver> {
        Receiver::start_with(ip, nonce, Limits::default()).await
    }

    /// [`Receiver::start`] within `limits`.
    pub async fn start_with(ip: IpAddr, nonce: &str, limits: Limits) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        // Only the first POST is judged: a hub that keeps posting fills at most
        // MAX_KEPT_POSTS bodies of MAX_POST_BYTES; the rest are answered and dropped.
        let (tx, posts) = mpsc::channel(MAX_KEPT_POSTS);
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(serve(listener, tx, counts.clone(), limits));
        Ok(Receiver {
            addr,
            nonce: nonce.to_owned(),
            path: format!("/VEGEHUB_HARNESS_TEST/{nonce}"),
            posts,
            counts,
            task,
        })
    }

    /// Connections being served now (at most [`Limits::connections`]).
    pub fn open_now(&self) -> usize {
        self.counts.open.load(Ordering::SeqCst)
    }

    /// The fresh suffix of this receiver's path (and the test key).
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The URL the hub is given.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// The first POST within `deadline`.
    pub async fn wait_post(&mut self, deadline: Duration) -> Option<Posted> {
        tokio::time::timeout(deadline, self.posts.recv())
            .await
            .ok()
            .flatten()
    }

    /// Stop serving; the connections made to it.
    pub async fn close(mut self) -> Inbound {
        self.task.abort();
        let _ = (&mut self.task).await;
        Inbound {
            served: self.counts.served.load(Ordering::SeqCst),
            turned_away: self.counts.turned_away.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Receiver {
    /// A receiver dropped without [`Receiver::close`] (its scenario stopped
    /// by a signal or a panic) stops listening too: a dropped task handle
    /// would leave the accept loop serving until the run's end.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The accept loop: each connection served on its own task, at most
/// `limits.connections` at once, one request each, within its time limits.
/// Connections end with the loop: aborting it drops the set, which aborts
/// every connection task.
async fn serve(
    listener: tokio::net::TcpListener,
    tx: mpsc::Sender<Posted>,
    counts: Arc<Counts>,
    limits: Limits,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counts.turned_away.fetch_add(1, Ordering::SeqCst);
            drop(stream);
            continue;
        };
        counts.served.fetch_add(1, Ordering::SeqCst);
        counts.open.fetch_add(1, Ordering::SeqCst);
        let (tx, counts) = (tx.clone(), counts.clone());
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let tx = tx.clone();
                async move { Ok::<_, std::convert::Infallible>(receive(req, &tx).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.head_time)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(false)
                .serve_connection(io, svc);
            let _ = tokio::time::timeout(limits.connection_time, conn).await;
            counts.open.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
        });
    }
}

async fn receive(
    req: hyper::Request<hyper::body::Incoming>,
    tx: &mpsc::Sender<Posted>,
) -> hyper::Response<axum::body::Body> {
    let path = req.uri().path().to_owned();
    let status = if req.method() == hyper::Method::POST {
        let body = axum::body::to_bytes(axum::body::Body::new(req.into_body()), MAX_POST_BYTES)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| {
                format!("reading the body failed (more than {MAX_POST_BYTES} bytes?): {e}")
            });
        let _ = tx.try_send(Posted { path, body });
        hyper::StatusCode::OK
    } else {
        hyper::StatusCode::METHOD_NOT_ALLOWED
    };
    let mut resp = hyper::Response::new(axum::body::Body::empty());
    *resp.status_mut() = status;
    resp
}

/// The local address the hub can reach this machine on: the address of the
/// interface that routes to it (a connected UDP socket: a route lookup,
/// nothing is sent). Loopback for a hub on loopback.
pub async fn local_address_towards(hub: &str) -> Result<IpAddr, String> {
    let target = tokio::net::lookup_host(hub)
        .await
        .map_err(|e| format!("cannot resolve {hub}: {e}"))?
        .next()
        .ok_or_else(|| format!("{hub} resolves to no address"))?;
    let any: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(any)
        .await
        .map_err(|e| format!("no local socket: {e}"))?;
    sock.connect(target)
        .await
        .map_err(|e| format!("no route to {target}: {e}"))?;
    sock.local_addr()
        .map(|a| a.ip())
        .map_err(|e| format!("no local address towards {target}: {e}"))
}

/// What the data update must carry: the documented shape (DEVICE_API.md).
#[derive(Debug, Clone)]
pub struct Expected {
    pub api_key: String,
    pub mac: Mac,
    /// Sensor channels, battery slot (battery hubs), actuator slots.
    pub channels: u64,
    pub battery: bool,
    pub actuators: u64,
}

impl Expected {
    pub fn slots(&self) -> u64 {
        self.channels + u64::from(self.battery) + self.actuators
    }
}

/// Check a posted body; the error names the JSON path and what was wrong.
pub fn check_body(body: &[u8], want: &Expected) -> Result<(), String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("$: not JSON ({e})"))?;
    if !doc.is_object() {
        return Err(format!("$: expected an object, got {}", kind(&doc)));
    }
    let field = |name: &str| -> Result<&Value, String> {
        doc.get(name).ok_or_else(|| format!("$.{name}: missing"))
    };
    match field("api_key")?.as_str() {
        Some(k) if k == want.api_key => {}
        Some(_) => return Err("$.api_key: not the test key the hub was given".into()),
        None => {
            return Err(format!(
                "$.api_key: expected a string, got {}",
                kind(field("api_key")?)
            ))
        }
    }
    let mac = field("mac")?;
    match mac.as_str().map(Mac::parse) {
        Some(Some(m)) if m == want.mac => {}
        Some(Some(m)) => return Err(format!("$.mac: {m} is not the hub's MAC {}", want.mac)),
        _ => {
            return Err(format!(
                "$.mac: expected the hub's MAC as a string, got {}",
                kind(mac)
            ))
        }
    }
    for name in ["error_code", "send_time", "wifi_str"] {
        let v = field(name)?;
        if !(v.is_i64() || v.is_u64()) {
            return Err(format!("$.{name}: expected an integer, got {}", kind(v)));
        }
    }
    let sensors = field("sensors")?;
    let list = sensors
        .as_array()
        .ok_or_else(|| format!("$.sensors: expected a list, got {}", kind(sensors)))?;
    if list.len() as u64 != want.slots() {
        return Err(format!(
            "$.sensors: {} slot(s), expected {} ({} sensor channel(s){}, {} actuator(s))",
            list.len(),
            want.slots(),
            want.channels,
            if want.battery { ", battery" } else { "" },
            want.actuators
        ));
    }
    for (i, s) in list.iter().enumerate() {
        let at = format!("$.sensors[{i}]");
        match s.get("slot").and_then(Value::as_u64) {
            Some(n) if n == i as u64 + 1 => {}
            Some(n) => return Err(format!("{at}.slot: {n}, expected {}", i + 1)),
            None => return Err(format!("{at}.slot: expected an integer")),
        }
        let samples = s
            .get("samples")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{at}.samples: expected a list"))?;
        if samples.is_empty() {
            return Err(format!("{at}.samples: empty, expected at least one sample"));
        }
        for (j, sample) in samples.iter().enumerate() {
            let at = format!("{at}.samples[{j}]");
            let v = sample.get("v").ok_or_else(|| format!("{at}.v: missing"))?;
            if !v.is_number() {
                return Err(format!("{at}.v: expected a number, got {}", kind(v)));
            }
            let t = sample.get("t").ok_or_else(|| format!("{at}.t: missing"))?;
            let ok = t
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
            if !ok {
                return Err(format!(
                    "{at}.t: expected an RFC 3339 time, got {}",
                    kind(t)
                ));
            }
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    crate::session::client::kind_of(v)
}

/// A fresh suffix for the test key and the receiver's path.
pub fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016X}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn want() -> Expected {
        Expected {
            api_key: "VEGEHUB_HARNESS_TEST_API_KEY_1".into(),
            mac: Mac::parse("A1B2C3D4E5F6").unwrap(),
            channels: 2,
            battery: true,
            actuators: 1,
        }
    }

    fn good() -> Value {
        let s = |slot| json!({"slot": slot, "samples": [{"v": 1.5, "t": "2025-01-15T16:51:23Z"}]});
        json!({"api_key": "VEGEHUB_HARNESS_TEST_API_KEY_1", "mac": "A1B2C3D4E5F6",
               "error_code": 0, "sensors": [s(1), s(2), s(3), s(4)],
               "send_time": 1736959883, "wifi_str": -27})
    }

    fn check(v: &Value) -> Result<(), String> {
        check_body(v.to_string().as_bytes(), &want())
    }

    #[test]
    fn the_documented_update_passes() {
        check(&good()).unwrap();
    }

    #[test]
    fn every_wrong_field_is_named_by_its_path() {
        type Break = fn(&mut Value);
        let cases: Vec<(Break, &str)> = vec![
            (
                |v| v["api_key"] = json!("other"),
                "$.api_key: not the test key",
            ),
            (
                |v| v["mac"] = json!("112233445566"),
                "$.mac: 11:22:33:44:55:66 is not",
            ),
            (
                |v| v["send_time"] = json!("now"),
                "$.send_time: expected an integer, got a string",
            ),
            (
                |v| {
                    v["sensors"].as_array_mut().unwrap().pop();
                },
                "$.sensors: 3 slot(s), expected 4",
            ),
            (
                |v| v["sensors"][1]["slot"] = json!(7),
                "$.sensors[1].slot: 7, expected 2",
            ),
            (
                |v| v["sensors"][2]["samples"][0]["v"] = json!("1.5"),
                "$.sensors[2].samples[0].v: expected a number, got a string",
            ),
            (
                |v| v["sensors"][3]["samples"][0]["t"] = json!(17),
                "$.sensors[3].samples[0].t: expected an RFC 3339 time, got a number",
            ),
            (
                |v| v["sensors"][0]["samples"] = json!([]),
                "$.sensors[0].samples: empty",
            ),
            (
                |v| {
                    v.as_object_mut().unwrap().remove("wifi_str");
                },
                "$.wifi_str: missing",
            ),
        ];
        for (break_it, msg) in cases {
            let mut v = good();
            break_it(&mut v);
            let e = check(&v).unwrap_err();
            assert!(e.starts_with(msg), "{e} / {msg}");
        }
        assert!(check_body(b"{not json", &want())
            .unwrap_err()
            .starts_with("$: not JSON"));
    }

    #[test]
    fn the_plan_value_parses() {
        for (text, want) in [
            ("\"required\"", DeliverCheck::Required),
            ("\"if-reachable\"", DeliverCheck::IfReachable),
            ("\"off\"", DeliverCheck::Off),
        ] {
            assert_eq!(serde_json::from_str::<DeliverCheck>(text).unwrap(), want);
        }
        assert!(serde_json::from_str::<DeliverCheck>("\"maybe\"").is_err());
    }

    /// POST `{}` to the receiver: the status it answered.
    async fn post(client: &reqwest::Client, r: &Receiver) -> reqwest::StatusCode {
        client
            .post(r.url())
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    }

    /// A receiver on loopback within these limits (connections, then the
    /// head's and the connection's time).
    async fn receiver(nonce: &str, connections: usize, head: u64, whole: u64) -> Receiver {
        let limits = Limits {
            connections,
            head_time: Duration::from_millis(head),
            connection_time: Duration::from_millis(whole),
        };
        Receiver::start_with([127, 0, 0, 1].into(), nonce, limits)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_receiver_records_a_post_and_counts_its_connection() {
        let mut r = Receiver::start([127, 0, 0, 1].into(), "abc").await.unwrap();
        assert!(r.url().starts_with("http://127.0.0.1:"));
        assert!(r.url().ends_with("/VEGEHUB_HARNESS_TEST/abc"));
        let client = reqwest::Client::new();
        assert_eq!(post(&client, &r).await, 200);
        let p = r.wait_post(Duration::from_secs(5)).await.unwrap();
        assert_eq!(p.body.unwrap(), b"{}");
        assert!(r.wait_post(Duration::from_millis(1)).await.is_none());
        drop(client);
        assert_eq!(r.close().await.served, 1);
    }

    /// Read `s` to its end within `limit`: whether the receiver closed it.
    async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut sink = Vec::new();
        tokio::time::timeout(limit, s.read_to_end(&mut sink))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_flood_of_connections_is_served_only_up_to_the_limit() {
        const LIMIT: usize = 4;
        let r = receiver("flood", LIMIT, 30_000, 30_000).await;
        let addr = r.addr;
        let mut flood = Vec::new();
        for _ in 0..200 {
            flood.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // All but the limit are closed by the receiver as it accepts them.
        let closed = futures_util::future::join_all(
            flood
                .iter_mut()
                .skip(LIMIT)
                .map(|s| closed_within(s, Duration::from_secs(20))),
        )
        .await;
        assert!(
            closed.iter().all(|&c| c),
            "a connection past the limit stayed open"
        );
        assert_eq!(r.open_now(), LIMIT);
        // The flood gone, the receiver still takes a post.
        drop(flood);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while r.open_now() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "slots never freed");
            tokio::task::yield_now().await;
        }
        assert_eq!(post(&reqwest::Client::new(), &r).await, 200);
        let inbound = r.close().await;
        assert_eq!(
            inbound,
            Inbound {
                served: LIMIT + 1,
                turned_away: 200 - LIMIT,
            }
        );
    }

    #[tokio::test]
    async fn a_request_that_trickles_in_is_cut_off() {
        use tokio::io::AsyncWriteExt;
        let r = receiver("slow", 2, 200, 400).await;
        // Headers never finished.
        let mut head = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        head.write_all(b"POST /x HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        // A body that never arrives whole.
        let mut body = tokio::net::TcpStream::connect(r.addr).await.unwrap();
        body.write_all(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{")
            .await
            .unwrap();
        assert!(closed_within(&mut head, Duration::from_secs(20)).await);
        assert!(closed_within(&mut body, Duration::from_secs(20)).await);
        let inbound = r.close().await;
        assert_eq!(inbound.served, 2);
    }

    #[tokio::test]
    async fn a_receiver_dropped_unclosed_stops_listening() {
        let r = receiver("dropped", 2, 1000, 1000).await;
        let addr = r.addr;
        drop(r);
        // The abort lands at the accept loop's next poll: wait for the
        // listening socket to go, with a deadline.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still listening on {addr}"
            );
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn loopback_routes_to_loopback() {
        let ip = local_address_towards("127.0.0.1:9").await.unwrap();
        assert!(ip.is_loopback());
    }
}
