//! The real binary on a pseudo-terminal (expectrl), for prompts, spinners
//! and progress: every `expect`, the end of output included, has a 30 s
//! deadline. Everything read is kept, raw and on a terminal emulator
//! (`vt100`) of the pty's own size, so a test reads what a technician's
//! terminal shows: progress lines padded to the full width wrap, cursor
//! moves and erases land where a real terminal puts them.

use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession as Session;
use expectrl::{Captures, Eof, Expect, Needle};

/// Scrollback kept by the emulator: more than any run here prints.
const SCROLLBACK: usize = 10_000;

/// The harness on a pseudo-terminal, with what it has shown so far.
pub struct Pty {
    session: Session,
    raw: Vec<u8>,
    screen: vt100::Parser,
}

/// The harness with `args` on a pseudo-terminal (stdin, stdout and stderr),
/// no colour, backups in the tests' directory.
pub fn spawn(args: &[&str]) -> Pty {
    let mut cmd = super::harness_cmd();
    cmd.args(args);
    spawn_cmd(cmd)
}

/// `cmd` (the harness, its environment set by the test) on a
/// pseudo-terminal.
pub fn spawn_cmd(cmd: std::process::Command) -> Pty {
    let mut session = Session::spawn(cmd).expect("the harness on a pseudo-terminal");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let (cols, rows) = session
        .get_process()
        .get_window_size()
        .expect("the pseudo-terminal's size");
    Pty {
        session,
        raw: Vec::new(),
        screen: terminal(rows, cols),
    }
}

fn terminal(rows: u16, cols: u16) -> vt100::Parser {
    let size = |n: u16| std::num::NonZeroU16::new(n).expect("a pseudo-terminal of some size");
    vt100::Parser::new(size(rows), size(cols), SCROLLBACK)
}

impl Pty {
    /// Read up to `needle` (30 s at most); what was read is on the screen.
    pub fn expect(&mut self, needle: impl Needle) -> Result<Captures, expectrl::Error> {
        let found = self.session.expect(needle)?;
        self.raw.extend_from_slice(found.as_bytes());
        self.screen.process(found.as_bytes());
        Ok(found)
    }

    /// Type `line` and Enter.
    pub fn send_line(&mut self, line: &str) -> Result<(), expectrl::Error> {
        self.session.send_line(line)
    }

    /// Type `keys` (a control code: `expectrl::ControlCode`).
    pub fn send(&mut self, keys: impl AsRef<[u8]>) -> Result<(), expectrl::Error> {
        self.session.send(keys)
    }

    /// Every byte the harness wrote so far, escapes included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The text the terminal shows so far, scrollback included: one line a
    /// row, a row the text wrapped out of joined to the next.
    pub fn screen(&mut self) -> String {
        screen_text(&mut self.screen)
    }
}

fn screen_text(t: &mut vt100::Parser) -> String {
    let (rows, cols) = t.screen().size();
    let (rows, cols) = (usize::from(rows.get()), cols.get());
    let s = t.screen_mut();
    // Page from the top of the scrollback down to the live screen.
    s.set_scrollback(usize::MAX);
    let mut back = s.scrollback();
    let mut text = String::new();
    loop {
        s.set_scrollback(back);
        let take = if back == 0 { rows } else { back.min(rows) };
        for (i, row) in s.rows(0, cols).take(take).enumerate() {
            let i = u16::try_from(i).expect("a screen row");
            if s.row_wrapped(i) {
                text.push_str(&row);
            } else {
                text.push_str(row.trim_end());
                text.push('\n');
            }
        }
        if back == 0 {
            break;
        }
        back -= take;
    }
    s.set_scrollback(0);
    let end = text.trim_end_matches('\n').len();
    text.truncate(end);
    text
}

/// Read to the end; the screen as the terminal shows it then, and the
/// exit code.
pub fn finish(s: &mut Pty) -> (String, i32) {
    s.expect(Eof).expect("the run ends");
    let code = match s.session.get_process().wait().expect("exit status") {
        WaitStatus::Exited(_, c) => c,
        other => panic!("{other:?}"),
    };
    (s.screen(), code)
}
