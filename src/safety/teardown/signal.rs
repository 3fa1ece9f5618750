//! Ctrl-C, SIGTERM and SIGHUP (on Windows: Ctrl-C, Ctrl-Break and closing
//! the console window): the first one sets the run's [`Interrupt`] (the run
//! stops its scenario and settles every obligation); the second one calls
//! the binary's "give up now" hook, which prints what may be left and exits.
//! A hang-up the harness was started to ignore (`nohup`) stays ignored.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A signal that interrupts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT / Ctrl-C.
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGHUP: the terminal went away (a closed window, a dropped SSH
    /// session). Its default action would end the harness with nothing
    /// undone.
    Hangup,
    /// Not a signal: standard output or error was closed (`| head`); the
    /// run stops and cleans up as on a first Ctrl-C.
    OutputClosed,
    /// Ctrl-Break (Windows).
    Break,
    /// The console window closed (Windows). Windows ends the process a few
    /// seconds later whatever it is doing, so cleanup starts at once.
    Close,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT (Ctrl-C)",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP (terminal hung up)",
            Signal::OutputClosed => "output closed",
            Signal::Break => "Ctrl-Break",
            Signal::Close => "console close",
        })
    }
}

/// The run's interruption flag: set by the first signal, awaitable by
/// scenarios. Cheap to clone; every clone is the same flag.
#[derive(Debug, Clone)]
pub struct Interrupt {
    first: Arc<watch::Sender<Option<Signal>>>,
    count: Arc<AtomicU32>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            first: Arc::new(watch::channel(None).0),
            count: Arc::default(),
        }
    }
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// The first signal received, if any.
    pub fn signal(&self) -> Option<Signal> {
        *self.first.borrow()
    }

    pub fn is_interrupted(&self) -> bool {
        self.signal().is_some()
    }

    /// Record a signal; returns how many have been received so far.
    pub fn raise(&self, signal: Signal) -> u32 {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        self.first.send_if_modified(|s| {
            let was = s.is_none();
            s.get_or_insert(signal);
            was
        });
        n
    }

    /// Resolves with the first signal (at once if one was already received).
    /// Race a scenario against this to stop it.
    pub async fn wait(&self) -> Signal {
        let mut rx = self.first.subscribe();
        let r = rx.wait_for(Option::is_some).await;
        // The sender lives as long as `self`, so the wait cannot fail.
        r.ok().and_then(|s| *s).expect("interrupt sender alive")
    }
}

/// One operating-system signal to listen for.
trait Source: Send + 'static {
    /// The next delivery; `None` once the source is closed.
    fn recv(&mut self) -> impl std::future::Future<Output = Option<()>> + Send;
}

#[cfg(unix)]
impl Source for tokio::signal::unix::Signal {
    fn recv(&mut self) -> impl std::future::Future<Output = Option<()>> + Send {
        tokio::signal::unix::Signal::recv(self)
    }
}

#[cfg(windows)]
mod windows_sources {
    use super::Source;
    use std::future::Future;
    use tokio::signal::windows::{CtrlBreak, CtrlC, CtrlClose};

    macro_rules! source {
        ($($t:ty),*) => {$(
            impl Source for $t {
                fn recv(&mut self) -> impl Future<Output = Option<()>> + Send {
                    <$t>::recv(self)
                }
            }
        )*};
    }
    source!(CtrlC, CtrlBreak, CtrlClose);
}

/// Send `signal` to `tx` each time `source` delivers, until either closes.
fn relay(signal: Signal, mut source: impl Source, tx: mpsc::Sender<Signal>) {
    tokio::spawn(async move {
        while source.recv().await.is_some() {
            if tx.send(signal).await.is_err() {
                break;
            }
        }
    });
}

/// Start listening for SIGINT, SIGTERM and SIGHUP unless ignored
/// (Windows: Ctrl-C, Ctrl-Break, console close) on the current runtime.
/// The handlers are installed before this returns, so no signal can slip
/// through to the default (kill) action afterwards. `on_first` runs on the first signal
/// just before the interrupt is raised (so it can say what is about to be
/// undone before cleanup starts); `on_second` runs on the second signal
/// and is expected to print what may be left and exit.
pub fn listen(
    interrupt: Interrupt,
    on_first: impl FnOnce(Signal) + Send + 'static,
    on_second: impl FnOnce(Signal) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        relay(
            Signal::Interrupt,
            signal(SignalKind::interrupt())?,
            tx.clone(),
        );
        if !hangup_ignored() {
            relay(Signal::Hangup, signal(SignalKind::hangup())?, tx.clone());
        }
        relay(Signal::Terminate, signal(SignalKind::terminate())?, tx);
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows as w;
        relay(Signal::Interrupt, w::ctrl_c()?, tx.clone());
        relay(Signal::Break, w::ctrl_break()?, tx.clone());
        // Once handled, Windows gives the process its usual grace period
        // (about 5 s for a closing console) before ending it: time to undo.
        relay(Signal::Close, w::ctrl_close()?, tx);
    }
    #[cfg(not(any(unix, windows)))]
    drop(tx);
    Ok(tokio::spawn(forward(interrupt, rx, on_first, on_second)))
}

/// Whether SIGHUP is ignored: the harness was started under `nohup` (or
/// the like) to outlive its terminal, so a hang-up must not stop the run.
#[cfg(unix)]
fn hangup_ignored() -> bool {
    // SAFETY: reads the current disposition only (no new action is given),
    // into a zeroed sigaction of our own.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Feed signals from `rx` into `interrupt`; call `on_first` before the
/// first is raised and `on_second` on the second.
async fn forward(
    interrupt: Interrupt,
    mut rx: mpsc::Receiver<Signal>,
    on_first: impl FnOnce(Signal),
    on_second: impl FnOnce(Signal),
) {
    let mut on_first = Some(on_first);
    let mut on_second = Some(on_second);
    while let Some(s) = rx.recv().await {
        // A hook that panics (a bug in what it prints) must cost the run
        // neither its interruption nor the second signal's exit: the
        // handlers are installed, so a dead listener would leave Ctrl-C
        // doing nothing at all.
        if let Some(f) = on_first.take() {
            let _ = std::panic::catch_unwind(AssertUnwindSafe(|| f(s)));
        }
        if interrupt.raise(s) >= 2 {
            if let Some(f) = on_second.take() {
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| f(s)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn first_signal_interrupts_second_gives_up() {
        let interrupt = Interrupt::new();
        let (tx, rx) = mpsc::channel(4);
        let seconds = Arc::new(Mutex::new(Vec::new()));
        let s2 = seconds.clone();
        let firsts = Arc::new(Mutex::new(Vec::new()));
        let f2 = firsts.clone();
        let i2 = interrupt.clone();
        let task = tokio::spawn(forward(
            interrupt.clone(),
            rx,
            move |s| f2.lock().unwrap().push((s, i2.is_interrupted())),
            move |s| s2.lock().unwrap().push(s),
        ));
        assert!(!interrupt.is_interrupted());
        let waiter = tokio::spawn({
            let i = interrupt.clone();
            async move { i.wait().await }
        });
        tx.send(Signal::Terminate).await.unwrap();
        assert_eq!(waiter.await.unwrap(), Signal::Terminate);
        assert!(seconds.lock().unwrap().is_empty(), "one signal is not two");
        tx.send(Signal::Interrupt).await.unwrap();
        tx.send(Signal::Interrupt).await.unwrap();
        drop(tx);
        task.await.unwrap();
        // Each hook ran once; the first before the interrupt was raised.
        assert_eq!(*firsts.lock().unwrap(), vec![(Signal::Terminate, false)]);
        assert_eq!(*seconds.lock().unwrap(), vec![Signal::Interrupt]);
        assert_eq!(interrupt.signal(), Some(Signal::Terminate));
        // Waiting after the fact resolves at once.
        assert_eq!(interrupt.wait().await, Signal::Terminate);
    }

    #[tokio::test]
    async fn a_hook_that_panics_still_interrupts_and_the_second_signal_still_gives_up() {
        let interrupt = Interrupt::new();
        let (tx, rx) = mpsc::channel(4);
        let (gave_up_tx, gave_up) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(forward(
            interrupt.clone(),
            rx,
            |_| panic!("printing what is owed failed"),
            move |s| {
                let _ = gave_up_tx.send(s);
                panic!("and so did printing what is left");
            },
        ));
        let limit = std::time::Duration::from_secs(5);
        tx.send(Signal::Interrupt).await.unwrap();
        let first = tokio::time::timeout(limit, interrupt.wait()).await;
        assert_eq!(first.ok(), Some(Signal::Interrupt), "not interrupted");
        tx.send(Signal::Terminate).await.unwrap();
        let second = tokio::time::timeout(limit, gave_up).await;
        assert_eq!(second.ok().and_then(Result::ok), Some(Signal::Terminate));
        // The listener is still there for whatever comes next.
        tx.send(Signal::Interrupt).await.unwrap();
        drop(tx);
        let ended = tokio::time::timeout(limit, task).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
    }

    /// A source the test fires by hand, standing in for an OS signal.
    impl Source for mpsc::Receiver<()> {
        fn recv(&mut self) -> impl std::future::Future<Output = Option<()>> + Send {
            mpsc::Receiver::recv(self)
        }
    }

    /// Windows' wiring on any OS: Ctrl-Break and Ctrl-C are two sources
    /// relayed into one interrupt; Ctrl-Break alone stops the run (cleanup,
    /// not exit) and a Ctrl-C after it gives up.
    #[tokio::test]
    async fn ctrl_break_then_ctrl_c_interrupt_then_give_up() {
        let interrupt = Interrupt::new();
        let (tx, rx) = mpsc::channel(4);
        let (ctrl_c, ctrl_c_rx) = mpsc::channel(1);
        let (ctrl_break, ctrl_break_rx) = mpsc::channel(1);
        relay(Signal::Interrupt, ctrl_c_rx, tx.clone());
        relay(Signal::Break, ctrl_break_rx, tx);
        let (gave_up_tx, gave_up) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(forward(
            interrupt.clone(),
            rx,
            |_| {},
            move |s| {
                let _ = gave_up_tx.send(s);
            },
        ));

        ctrl_break.send(()).await.unwrap();
        assert_eq!(interrupt.wait().await, Signal::Break);
        assert_eq!(Signal::Break.to_string(), "Ctrl-Break");
        ctrl_c.send(()).await.unwrap();
        assert_eq!(gave_up.await.unwrap(), Signal::Interrupt);
        assert_eq!(
            interrupt.signal(),
            Some(Signal::Break),
            "the first one is kept"
        );
        // Both sources gone: the relays end, and with them the listener.
        drop((ctrl_c, ctrl_break));
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("listener ends when its sources close")
            .unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_real_sigterm_is_caught() {
        let interrupt = Interrupt::new();
        listen(interrupt.clone(), |_| {}, |_| {}).unwrap();
        // SAFETY: sending a signal to our own process; the handler above is
        // installed, so the default action (terminate) does not run.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        let s = tokio::time::timeout(std::time::Duration::from_secs(5), interrupt.wait())
            .await
            .expect("signal delivered within 5 s");
        assert_eq!(s, Signal::Terminate);
    }
}
