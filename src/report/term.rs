//! The one writer for the terminal. Result lines and the summary go to
//! stdout; notes (backups, `-v` exchanges, signal and cleanup messages) and
//! questions go to stderr; progress bars to stderr when it is a terminal.
//! Everything passes through here, whole lines under one lock with the
//! progress bars lifted while a line is written, so nothing lands inside
//! another line. A line left open on stdout (the terse dots) is ended
//! before a note is written.
//!
//! A stream that cannot be written (a closed pipe: `--sim | head -3`) is
//! marked closed: further output to it is dropped quietly and the run is
//! told once (it stops, cleans up and exits 141). Rust leaves SIGPIPE
//! ignored, so a closed pipe is an `EPIPE` error on the write and never
//! kills the process before its cleanup; no write here can panic.

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use indicatif::MultiProgress;

/// Which stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl std::fmt::Display for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "standard output",
            Stream::Stderr => "standard error",
        })
    }
}

type Hook = Arc<dyn Fn(Stream) + Send + Sync>;

struct State {
    /// Stdout holds a line without its newline yet (terse dots).
    out_open: bool,
    out_closed: bool,
    err_closed: bool,
    bars: Option<MultiProgress>,
    on_closed: Option<Hook>,
}

static STATE: Mutex<State> = Mutex::new(State {
    out_open: false,
    out_closed: false,
    err_closed: false,
    bars: None,
    on_closed: None,
});

fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Called once, the first time a stream is found closed (the run stops and
/// cleans up). Replaces any earlier hook.
pub fn on_closed(f: impl Fn(Stream) + Send + Sync + 'static) {
    lock().on_closed = Some(Arc::new(f));
}

/// Whether `s` was found closed.
pub fn is_closed(s: Stream) -> bool {
    let st = lock();
    match s {
        Stream::Stdout => st.out_closed,
        Stream::Stderr => st.err_closed,
    }
}

/// The progress bars' home, set by `report::progress` on a terminal.
pub(crate) fn set_bars(bars: Option<MultiProgress>) {
    lock().bars = bars;
}

/// Write `text` to stdout as it is (it may end mid-line).
pub fn out(text: &str) {
    let hook = {
        let mut st = lock();
        if st.out_closed || text.is_empty() {
            return;
        }
        let ok = with_bars(&st, || write_to(&mut std::io::stdout().lock(), text));
        if ok {
            st.out_open = !text.ends_with('\n');
            None
        } else {
            st.out_closed = true;
            st.on_closed.clone().map(|h| (h, Stream::Stdout))
        }
    };
    if let Some((h, s)) = hook {
        h(s);
    }
}

/// Write one note (one or more whole lines; the newline is added) to stderr.
pub fn err(line: &str) {
    let hook = {
        let mut st = lock();
        let mut closed = None;
        if st.out_open && !st.out_closed {
            // End the open stdout line first: the note must not land in it.
            if write_to(&mut std::io::stdout().lock(), "\n") {
                st.out_open = false;
            } else {
                st.out_closed = true;
                closed = Some(Stream::Stdout);
            }
        }
        if !st.err_closed {
            let text = format!("{line}\n");
            if !with_bars(&st, || write_to(&mut std::io::stderr().lock(), &text)) {
                st.err_closed = true;
                closed = closed.or(Some(Stream::Stderr));
            }
        }
        st.on_closed.clone().zip(closed)
    };
    if let Some((h, s)) = hook {
        h(s);
    }
}

/// Ask a question on stderr and read one line of stdin. `None` at end of
/// input, when stderr is closed (nobody can see the question), or once
/// `cancelled` says so (a Ctrl-C at the question): the writer is not held
/// while waiting, so the signal's own message still gets out.
pub fn ask(question: &str, cancelled: &dyn Fn() -> bool) -> Option<String> {
    {
        let st = lock();
        if st.err_closed {
            return None;
        }
        if !with_bars(&st, || write_to(&mut std::io::stderr().lock(), question)) {
            return None;
        }
    }
    // stdin has no timeout: a thread reads the line while this one watches
    // `cancelled` (a display refresh, not a settle delay).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut line = String::new();
            let r = match std::io::stdin().lock().read_line(&mut line) {
                Ok(0) | Err(_) => None,
                Ok(_) => Some(line.trim().to_owned()),
            };
            let _ = tx.send(r);
        })
        .ok()?;
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(answer) => return answer,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if cancelled() => return None,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

fn with_bars(st: &State, f: impl FnOnce() -> bool) -> bool {
    match &st.bars {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

fn write_to(w: &mut impl Write, text: &str) -> bool {
    w.write_all(text.as_bytes())
        .and_then(|()| w.flush())
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_writer_is_reported_not_panicked() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(!write_to(&mut Closed, "test mac ... ok\n"));
        let mut v = Vec::new();
        assert!(write_to(&mut v, "line\n"));
        assert_eq!(v, b"line\n");
    }
}
