//! Progress on a terminal: every wait that has lasted over a second (see
//! `wait`) gets a spinner line on stderr saying what is awaited, how long
//! it has taken of its deadline, and each retry as it happens. Nothing is
//! drawn when stderr is not a terminal (CI logs stay plain).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::session::wait::Wait;

/// A wait shows after this long.
pub const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the lines are redrawn (a display refresh, not a settle delay).
const REFRESH: Duration = Duration::from_millis(100);

/// The text of a wait's line.
pub fn line(w: &Wait) -> String {
    let elapsed = w.started.elapsed().as_secs_f64();
    let mut s = match w.deadline {
        Some(d) => format!(
            "waiting for {}: {elapsed:.1}s of {:.1}s",
            w.what,
            d.as_secs_f64()
        ),
        None => format!("waiting for {}: {elapsed:.1}s", w.what),
    };
    if let Some(n) = &w.note {
        s.push_str(&format!(" ({n})"));
    }
    s
}

/// Draws progress while it lives; dropping it clears the lines.
pub struct Progress {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Start drawing, when stderr is a terminal (`None` otherwise).
pub fn start() -> Option<Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    super::term::set_bars(Some(bars.clone()));
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let s2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || draw(bars, s2))
        .ok()?;
    Some(Progress {
        stop,
        thread: Some(thread),
    })
}

fn draw(bars: MultiProgress, stop: Arc<(Mutex<bool>, Condvar)>) {
    let style = ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    let mut shown: HashMap<u64, ProgressBar> = HashMap::new();
    let (lock, cv) = &*stop;
    let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
    while !*stopped {
        let active = crate::session::wait::active();
        shown.retain(|id, bar| {
            let alive = active.iter().any(|(a, _)| a == id);
            if !alive {
                bar.finish_and_clear();
                bars.remove(bar);
            }
            alive
        });
        for (id, w) in &active {
            if w.started.elapsed() < SHOW_AFTER && !shown.contains_key(id) {
                continue;
            }
            let bar = shown.entry(*id).or_insert_with(|| {
                let b = bars.add(ProgressBar::new_spinner());
                b.set_style(style.clone());
                b
            });
            bar.set_message(line(w));
            bar.tick();
        }
        stopped = cv
            .wait_timeout(stopped, REFRESH)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
    for bar in shown.values() {
        bar.finish_and_clear();
    }
    let _ = bars.clear();
}

impl Drop for Progress {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        super::term::set_bars(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_line_says_what_how_long_of_what_deadline_and_retries() {
        let w = Wait {
            what: "Vege_A6_20: answer to POST /api/info/get".into(),
            started: Instant::now(),
            deadline: Some(Duration::from_secs(5)),
            note: Some("attempt 2 of 3 after connection refused".into()),
        };
        let l = line(&w);
        assert!(
            l.starts_with("waiting for Vege_A6_20: answer to POST /api/info/get: 0.")
                && l.ends_with("s of 5.0s (attempt 2 of 3 after connection refused)"),
            "{l}"
        );
        let w = Wait {
            deadline: None,
            note: None,
            ..w
        };
        assert!(line(&w).ends_with("s"), "{}", line(&w));
    }
}
