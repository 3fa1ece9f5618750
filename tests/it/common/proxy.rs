//! A raw-TCP fault proxy in front of a real simulated hub, for the HTTP
//! framing faults axum cannot produce (a garbage status line, a body that
//! never ends, two lengths, an answer before the request ...). Requests on
//! other paths, and on the faulted path outside its window, are forwarded
//! to the hub unchanged, so the hub's true state stays observable through
//! its `SimHandle`. Blocking std threads; a connection held open by a fault
//! waits for the harness to close it (or the proxy to be dropped), never
//! on a fixed sleep.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the faulted answer is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `XYZZY garbage` instead of a status line, then close.
    GarbageStatus,
    /// `HTTP/1.0 200` without a length; the body ends when the connection
    /// closes (legal: the answer must still be read correctly).
    Http10CloseDelimited,
    /// A chunked body whose first chunk comes and then nothing more, the
    /// connection kept open.
    ChunkedNeverEnds,
    /// A chunk size that is not hexadecimal.
    BadChunkSize,
    /// `Content-Length` 100 more than the body sent, then close.
    LengthLongerThanSent,
    /// Two `Content-Length` headers that disagree.
    TwoLengths,
    /// Three 1xx answers (100, 102, 103) before the real one.
    Informational,
    /// `204 No Content` carrying the real body anyway.
    BodyOn204,
    /// `304 Not Modified` carrying the real body.
    BodyOn304,
    /// 5000 header lines.
    HeaderFlood,
    /// One header of 1 MiB.
    HugeHeader,
    /// The real answer, one byte every 300 ms (minutes in all): only a
    /// deadline on the whole request ends it.
    Slowloris,
    /// Half the body, then a TCP reset.
    ResetMidBody,
    /// Read the request, never answer, keep the connection open.
    Silent,
    /// Close the connection as soon as the request arrives.
    CloseAtOnce,
    /// `Content-Encoding: gzip` the harness never asked for, with a gzip
    /// body that says `{"error":1}`.
    GzipUnasked,
    /// The real answer with `Connection: keep-alive`, then a silent close.
    KeepAliveThenClose,
    /// On every new connection, an `info/get` answer is sent before any
    /// request is read: every answer on it is one behind its request.
    AnswerFirst,
    /// The real answer with every `from` replaced by `to` (JSON faults:
    /// `NaN`, a state as a string, a slot of -1 ...).
    Replace(&'static str, &'static str),
    /// A JSON body nested this many arrays deep.
    Deep(usize),
    /// A config with this many endpoints.
    ManyEndpoints(usize),
    /// This 3xx status with this `Location`, no body.
    Redirect(u16, &'static str),
    /// This head (status line and headers, `{len}` standing for the real
    /// body's length), then the real body as it is.
    Head(&'static str),
    /// This head, then the real body as one chunk and the last chunk.
    ChunkedHead(&'static str),
}

/// `{"error":1}`, gzip-compressed.
const GZIP_ERROR_1: [u8; 31] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0x4a, 0x2d, 0x2a, 0xca,
    0x2f, 0x52, 0xb2, 0x32, 0xac, 0x05, 0x00, 0x52, 0x27, 0xc4, 0xcf, 0x0b, 0x00, 0x00, 0x00,
];

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    faulted: Arc<AtomicU64>,
    off: Arc<AtomicBool>,
}

struct Plan {
    upstream: SocketAddr,
    path: String,
    fault: Framing,
    after: u64,
    seen: AtomicU64,
    faulted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// Set by [`FaultProxy::heal`]: forward everything unchanged.
    off: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Proxy to `upstream`; requests whose path ends with `path` (`""`:
    /// every path), after the first `after` of them, get `fault`.
    pub fn start(upstream: SocketAddr, path: &str, fault: Framing, after: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let stop = Arc::new(AtomicBool::new(false));
        let faulted = Arc::new(AtomicU64::new(0));
        let off = Arc::new(AtomicBool::new(false));
        let plan = Arc::new(Plan {
            upstream,
            path: path.to_owned(),
            fault,
            after,
            seen: AtomicU64::new(0),
            faulted: faulted.clone(),
            stop: stop.clone(),
            off: off.clone(),
        });
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if plan.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let plan = plan.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &plan);
                });
            }
        });
        FaultProxy {
            addr,
            stop,
            faulted,
            off,
        }
    }

    /// From now on forward everything unchanged (a healthy hub again, for
    /// running a printed `restore` through the same address).
    pub fn heal(&self) {
        self.off.store(true, Ordering::SeqCst);
    }

    /// `127.0.0.1:PORT`, for `--device`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests got the fault.
    pub fn faulted(&self) -> u64 {
        self.faulted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One request as read: method, path, the whole head and body as bytes.
struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    Ok(Some(Request { method, path, body }))
}

/// Ask the real hub, on a connection of its own: status and body.
fn forward(upstream: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(upstream).expect("the simulated hub answers");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("request to the hub");
    s.write_all(body).expect("request body to the hub");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer from the hub");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    let mut body = answer[split + 4..].to_vec();
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    if let Some(n) = length {
        body.truncate(n);
    }
    (status, body)
}

fn answer(status: u16, body: &[u8], extra: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Wait, without a timer, until the harness closes the connection (or
/// `limit` passes): what a hub that holds a connection open looks like.
fn hold(s: &mut TcpStream, limit: Duration) {
    s.set_read_timeout(Some(limit)).ok();
    let mut sink = [0u8; 1024];
    while let Ok(n) = s.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

fn serve(conn: TcpStream, plan: &Plan) -> std::io::Result<()> {
    let mut w = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let healed = || plan.off.load(Ordering::SeqCst);
    if plan.fault == Framing::AnswerFirst && !healed() {
        let (_, body) = forward(
            plan.upstream,
            "POST",
            "/api/info/get",
            br#"{"hub":[],"wifi":[]}"#,
        );
        w.write_all(&answer(200, &body, ""))?;
        plan.faulted.fetch_add(1, Ordering::SeqCst);
    }
    while let Some(req) = read_request(&mut r)? {
        let hit = !healed()
            && req.path.ends_with(&plan.path)
            && plan.fault != Framing::AnswerFirst
            && plan.seen.fetch_add(1, Ordering::SeqCst) >= plan.after;
        let (status, body) = forward(plan.upstream, &req.method, &req.path, &req.body);
        if !hit {
            w.write_all(&answer(status, &body, ""))?;
            continue;
        }
        plan.faulted.fetch_add(1, Ordering::SeqCst);
        let long = Duration::from_secs(120);
        match plan.fault {
            Framing::GarbageStatus => {
                w.write_all(b"XYZZY garbage\r\n\r\n")?;
                return Ok(());
            }
            Framing::Http10CloseDelimited => {
                w.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n")?;
                w.write_all(&body)?;
                return Ok(());
            }
            Framing::ChunkedNeverEnds => {
                let first = &body[..body.len().min(5)];
                w.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?;
                w.write_all(format!("{:x}\r\n", first.len()).as_bytes())?;
                w.write_all(first)?;
                w.write_all(b"\r\n")?;
                hold(&mut w, long);
                return Ok(());
            }
            Framing::BadChunkSize => {
                w.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
                )?;
                return Ok(());
            }
            Framing::LengthLongerThanSent => {
                let mut out = answer(200, &body, "").into_iter().collect::<Vec<u8>>();
                let head = format!("Content-Length: {}\r\n", body.len());
                let more = format!("Content-Length: {}\r\n", body.len() + 100);
                let text = String::from_utf8_lossy(&out).replacen(&head, &more, 1);
                out = text.into_bytes();
                w.write_all(&out)?;
                return Ok(());
            }
            Framing::TwoLengths => {
                w.write_all(&answer(status, &body, "Content-Length: 2\r\n"))?;
            }
            Framing::Informational => {
                w.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n")?;
                w.write_all(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n")?;
                w.write_all(&answer(status, &body, ""))?;
            }
            Framing::BodyOn204 => w.write_all(&answer(204, &body, ""))?,
            Framing::BodyOn304 => w.write_all(&answer(304, &body, ""))?,
            Framing::HeaderFlood => {
                let extra: String = (0..5000).map(|i| format!("X-H{i}: v\r\n")).collect();
                w.write_all(&answer(status, &body, &extra))?;
            }
            Framing::HugeHeader => {
                let extra = format!("X-Big: {}\r\n", "a".repeat(1 << 20));
                w.write_all(&answer(status, &body, &extra))?;
            }
            Framing::Slowloris => {
                w.set_read_timeout(Some(Duration::from_millis(300))).ok();
                let mut probe = [0u8; 1];
                for byte in answer(status, &body, "") {
                    w.write_all(&[byte])?;
                    // Paced by a read that waits for the harness to go away.
                    if let Ok(0) = w.read(&mut probe) {
                        return Ok(());
                    }
                }
            }
            Framing::ResetMidBody => {
                let full = answer(status, &body, "");
                w.write_all(&full[..full.len() - body.len() / 2])?;
                reset(&w);
                return Ok(());
            }
            Framing::Silent => {
                hold(&mut w, long);
                return Ok(());
            }
            Framing::CloseAtOnce => {
                let _ = w.shutdown(Shutdown::Both);
                return Ok(());
            }
            Framing::GzipUnasked => {
                w.write_all(&answer(status, &GZIP_ERROR_1, "Content-Encoding: gzip\r\n"))?;
            }
            Framing::KeepAliveThenClose => {
                w.write_all(&answer(status, &body, "Connection: keep-alive\r\n"))?;
                return Ok(());
            }
            Framing::AnswerFirst => unreachable!("handled at connect"),
            Framing::Replace(from, to) => {
                let text = String::from_utf8_lossy(&body).replace(from, to);
                w.write_all(&answer(status, text.as_bytes(), ""))?;
            }
            Framing::Deep(n) => {
                let text = format!("{}{}", "[".repeat(n), "]".repeat(n));
                w.write_all(&answer(status, text.as_bytes(), ""))?;
            }
            Framing::ManyEndpoints(n) => {
                let list: Vec<String> = (0..n).map(|i| format!("{{\"id\":{i}}}")).collect();
                let text = format!("{{\"endpoints\":[{}],\"error\":0}}", list.join(","));
                w.write_all(&answer(status, text.as_bytes(), ""))?;
            }
            Framing::Redirect(code, location) => {
                w.write_all(&answer(code, b"", &format!("Location: {location}\r\n")))?;
            }
            Framing::Head(head) => {
                w.write_all(head.replace("{len}", &body.len().to_string()).as_bytes())?;
                w.write_all(&body)?;
            }
            Framing::ChunkedHead(head) => {
                w.write_all(head.as_bytes())?;
                w.write_all(format!("{:x}\r\n", body.len()).as_bytes())?;
                w.write_all(&body)?;
                w.write_all(b"\r\n0\r\n\r\n")?;
            }
        }
    }
    Ok(())
}

/// Close with a TCP reset (SO_LINGER 0) rather than a FIN, once the
/// caller drops its handles.
fn reset(s: &TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket this thread owns, with a correctly
        // sized linger struct.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &linger as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    // The reset goes out when the last handle of the socket is dropped.
    #[cfg(not(unix))]
    let _ = s.shutdown(Shutdown::Both);
}
