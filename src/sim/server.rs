//! The simulated hub as a server: its own accept loop (so it can count,
//! limit, drop and reboot connections), the options it starts with, and the
//! handle tests hold (ready when returned, shut down on drop).

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::advertise::{AdvertiseError, Advertisement, Advertiser, Responder};
use super::fault::FaultSpec;
use super::profile::Profile;
use super::routes::{app, into_wire, ConnId};
use super::state::{ConnStats, Delivery, Received, SimState};

/// How to start a simulated hub.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub profile: Profile,
    /// Where to listen; `127.0.0.1:0` by default.
    pub bind: SocketAddr,
    pub faults: Vec<FaultSpec>,
    /// Register the hub over mDNS (`_vege._tcp.local.`).
    pub advertise: bool,
    /// With `advertise`: register on this shared responder instead of a
    /// daemon of the hub's own (`sim --count`).
    pub responder: Option<Responder>,
}

impl SimOptions {
    pub fn new(profile: Profile) -> SimOptions {
        SimOptions {
            profile,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            faults: Vec::new(),
            advertise: false,
            responder: None,
        }
    }
}

/// Start a hub on the current tokio runtime (tests with
/// `tokio::time::pause()` use this). Stop it with [`SimHandle::stop`].
pub async fn spawn(opts: SimOptions) -> io::Result<SimHandle> {
    let (handle, serve) = bind(opts).await?;
    let task = tokio::spawn(serve);
    Ok(handle.with_runner(Runner::Task(task)))
}

/// Start a hub on a thread with its own runtime; it is serving when this
/// returns.
pub fn start(profile: Profile) -> io::Result<SimHandle> {
    start_with(SimOptions::new(profile))
}

/// [`start`] with options.
pub fn start_with(opts: SimOptions) -> io::Result<SimHandle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("vegehub-sim".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                match bind(opts).await {
                    Ok((handle, serve)) => {
                        let _ = tx.send(Ok(handle));
                        serve.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })?;
    match rx.recv() {
        Ok(Ok(handle)) => Ok(handle.with_runner(Runner::Thread(thread))),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("simulator thread ended before serving")),
    }
}

/// Bind, register over mDNS if asked, and return the handle plus the serve
/// future (which ends after a shutdown, with every connection dropped).
async fn bind(opts: SimOptions) -> io::Result<(SimHandle, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(opts.bind).await?;
    let addr = listener.local_addr()?;
    let advertiser = if opts.advertise {
        let ad = advertisement(&opts.profile, addr);
        let responder = opts.responder.clone();
        let advertiser = tokio::task::spawn_blocking(move || match responder {
            Some(r) => Advertiser::register_on(&r, &ad),
            None => Advertiser::register(&ad),
        })
        .await
        .map_err(io::Error::other)?
        .map_err(io::Error::other)?;
        Some(advertiser)
    } else {
        None
    };
    let state = SimState::new(opts.profile, opts.faults);
    let (stop, stop_rx) = watch::channel(false);
    let serve = serve(listener, state.clone(), stop_rx);
    let handle = SimHandle {
        addr,
        state,
        stop,
        runner: None,
        advertiser,
    };
    Ok((handle, serve))
}

/// What `--advertise` announces for a profile served on `addr`.
pub fn advertisement(profile: &Profile, addr: SocketAddr) -> Advertisement {
    let instance = (profile.name() != profile.mac().instance_name()).then(|| profile.name().into());
    Advertisement {
        mac: profile.mac().clone(),
        instance,
        port: addr.port(),
        addrs: if addr.ip().is_unspecified() {
            Vec::new()
        } else {
            vec![addr.ip()]
        },
        version: profile.firmware().to_owned(),
        sensors: profile.sensors().iter().map(|s| s.name.clone()).collect(),
        actuators: profile.actuator_count(),
        power_mode: profile.power_mode(),
    }
}

async fn serve(mut listener: TcpListener, state: SimState, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut reboots = state.reboots();
    loop {
        tokio::select! {
            // Also ends when the handle is gone.
            _ = stop.changed() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            // A reboot with a down time: no listener (connections are
            // refused) until the hub is back, at the same address.
            Ok(()) = reboots.changed() => {
                let Some(down) = state.reboot_down() else { continue };
                let Ok(addr) = listener.local_addr() else { continue };
                drop(listener);
                tokio::select! {
                    _ = stop.changed() => return conns.shutdown().await,
                    // The simulated boot time, not a settle delay.
                    () = tokio::time::sleep(down) => {}
                }
                listener = match TcpListener::bind(addr).await {
                    Ok(l) => l,
                    // The port was taken meanwhile: the hub stays gone.
                    Err(_) => return conns.shutdown().await,
                };
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match state.admit() {
                    Some(id) => {
                        conns.spawn(serve_connection(stream, state.clone(), id));
                    }
                    // max-conns: closed at once, like a hub out of sockets.
                    None => drop(stream),
                },
                // Out of file descriptors and the like: give other tasks a turn.
                Err(_) => tokio::task::yield_now().await,
            },
        }
    }
    drop(listener);
    // Drops every connection, hung ones included.
    conns.shutdown().await;
}

/// Decrements the open-connection count however the connection ends
/// (finished, dropped by a fault or a reboot, aborted at shutdown).
struct OpenGuard(SimState);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.conn_closed();
    }
}

async fn serve_connection(stream: TcpStream, state: SimState, id: usize) {
    let _open = OpenGuard(state.clone());
    let mut reboots = state.reboots();
    let router = app(state.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        state.conn_request(id);
        req.extensions_mut().insert(ConnId(id));
        let router = router.clone();
        async move {
            let resp = router
                .oneshot(req.map(Body::new))
                .await
                .unwrap_or_else(|never| match never {});
            into_wire(resp)
        }
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        // A simulated reboot drops every connection.
        _ = reboots.changed() => {}
    }
}

enum Runner {
    Task(tokio::task::JoinHandle<()>),
    Thread(std::thread::JoinHandle<()>),
}

/// A running simulated hub. Dropping it shuts it down.
pub struct SimHandle {
    addr: SocketAddr,
    state: SimState,
    stop: watch::Sender<bool>,
    runner: Option<Runner>,
    advertiser: Option<Advertiser>,
}

impl SimHandle {
    fn with_runner(mut self, runner: Runner) -> SimHandle {
        self.runner = Some(runner);
        self
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The hub's state (for handler-level inspection in tests).
    pub fn state(&self) -> &SimState {
        &self.state
    }

    pub fn stats(&self) -> ConnStats {
        self.state.stats()
    }

    /// The stored config document now.
    pub fn config(&self) -> serde_json::Value {
        self.state.config()
    }

    /// Live state (0/1) of every actuator slot.
    pub fn actuator_states(&self) -> Vec<u8> {
        self.state.actuator_states()
    }

    /// Every request the hub received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.state.received()
    }

    /// How many times the hub has rebooted (`reboot-after`).
    pub fn reboot_count(&self) -> u64 {
        self.state.reboot_count()
    }

    /// Data updates the hub has posted so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.deliveries()
    }

    /// Wait until at least `n` data updates have completed (delivered or
    /// failed); returns whether they did before `deadline`.
    pub async fn wait_deliveries(&self, n: usize, deadline: Duration) -> bool {
        self.state.wait_deliveries(n, deadline).await
    }

    /// Block until `pred` holds for the connection stats, or `deadline`
    /// passes; returns whether it held. For hubs from `start`; on the
    /// runtime of a `spawn`ed hub use [`SimHandle::wait_until`].
    pub fn wait_for(&self, deadline: Duration, pred: impl Fn(&ConnStats) -> bool) -> bool {
        self.state.wait_for(deadline, pred)
    }

    /// Block until `pred` holds for the hub's state (its stored config and
    /// actuator slots), or `deadline` passes; returns whether it held. For
    /// hubs from `start`.
    pub fn wait_state(&self, deadline: Duration, pred: impl Fn(&SimState) -> bool) -> bool {
        self.state.wait_state(deadline, pred)
    }

    /// Async [`SimHandle::wait_for`].
    pub async fn wait_until(&self, deadline: Duration, pred: impl Fn(&ConnStats) -> bool) -> bool {
        self.state.wait_until(deadline, pred).await
    }

    /// Stop accepting, drop every connection (hung ones too), wait for the
    /// server to end, unregister from mDNS. Returns the final stats.
    ///
    /// A hub from `spawn` can only be waited for from outside its runtime
    /// or on a multi-thread runtime; elsewhere use [`SimHandle::stop`].
    pub fn shutdown(mut self) -> ConnStats {
        let _ = self.close_blocking();
        self.state.stats()
    }

    /// [`SimHandle::shutdown`], reporting a failed mDNS unregistration.
    pub fn try_shutdown(mut self) -> Result<ConnStats, AdvertiseError> {
        self.close_blocking()?;
        Ok(self.state.stats())
    }

    /// Async shutdown: the way to stop a hub started with `spawn`.
    pub async fn stop(mut self) -> Result<ConnStats, AdvertiseError> {
        let _ = self.stop.send(true);
        match self.runner.take() {
            Some(Runner::Task(task)) => {
                let _ = task.await;
            }
            Some(Runner::Thread(thread)) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            None => {}
        }
        self.unregister()?;
        Ok(self.state.stats())
    }

    fn close_blocking(&mut self) -> Result<(), AdvertiseError> {
        let _ = self.stop.send(true);
        match self.runner.take() {
            Some(Runner::Thread(thread)) => {
                let _ = thread.join();
            }
            Some(Runner::Task(task)) => match tokio::runtime::Handle::try_current() {
                Err(_) => {
                    // Outside any runtime: the serving runtime may still be
                    // driven by another thread; wait for the task there.
                    let _ = futures_block_on(task);
                }
                Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    let _ = tokio::task::block_in_place(|| rt.block_on(task));
                }
                // A current-thread runtime cannot be blocked on from itself:
                // the stop signal is sent and the server ends when polled.
                Ok(_) => {}
            },
            None => {}
        }
        self.unregister()
    }

    fn unregister(&mut self) -> Result<(), AdvertiseError> {
        match self.advertiser.take() {
            Some(a) => a.shutdown(),
            None => Ok(()),
        }
    }
}

/// Wait for a task from a thread outside every runtime.
fn futures_block_on<F: Future>(f: F) -> Option<F::Output> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .ok()
        .map(|rt| rt.block_on(f))
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        let _ = self.close_blocking();
    }
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("profile", &self.state.profile().source())
            .finish()
    }
}
