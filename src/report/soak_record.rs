//! Soak runs (`--repeat N`, `--repeat-for DURATION`): the whole plan again
//! and again against the same hubs over the one session; per cycle its
//! verdict, duration, connections and the harness's own sockets and memory;
//! at the end the trend check that turns a slow leak into exit 3. Pure
//! bookkeeping: `run` measures, `report` prints.

use std::time::Duration;

/// How often the plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Repeat {
    /// Once: an ordinary run, no soak section anywhere.
    #[default]
    Once,
    /// `--repeat N` (N ≥ 2).
    Times(u32),
    /// `--repeat-for DURATION`: cycles start until DURATION has passed
    /// (a cycle that started always finishes).
    For(Duration),
}

impl Repeat {
    pub fn is_soak(&self) -> bool {
        !matches!(self, Repeat::Once)
    }

    /// Whether cycle `next` (1-based) starts, `elapsed` into the soak.
    pub fn another(&self, next: u32, elapsed: Duration) -> bool {
        match *self {
            Repeat::Once => next == 1,
            Repeat::Times(n) => next <= n,
            Repeat::For(d) => next == 1 || elapsed < d,
        }
    }
}

/// One cycle of a soak, measured after its last scenario ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cycle {
    /// 1-based.
    pub cycle: u32,
    /// Scenarios that passed or were skipped, and that failed, over every hub.
    pub passed: usize,
    pub failed: usize,
    /// `HUB SCENARIO: message` of each failure.
    pub failures: Vec<String>,
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    /// Connections the session opened during this cycle.
    pub connections_opened: usize,
    /// Connections the session opened since the run began.
    pub connections_total: usize,
    /// The session's connections still open at the end of the cycle (the
    /// kept-alive ones); `None` when the socket table could not be read.
    pub connections_open: Option<usize>,
    /// Sockets the harness process has open (Linux: /proc/self/fd), the
    /// in-process simulator's included; `None` where not measured.
    pub sockets_open: Option<usize>,
    /// Resident memory of the harness process in bytes (Linux:
    /// /proc/self/status); `None` where not measured.
    pub rss_bytes: Option<u64>,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

/// A quantity that grew from cycle to cycle.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Trend {
    /// `connections_open`, `sockets_open`, `rss_bytes`, `duration_ms`.
    pub metric: &'static str,
    /// Median of the early and of the late cycles compared.
    pub early: f64,
    pub late: f64,
    /// `harness memory grew from 12.0 MiB to 31.5 MiB over cycles 2-40`.
    pub message: String,
}

/// The soak's result, for every report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SoakReport {
    pub cycles: Vec<Cycle>,
    /// Empty: nothing grew (or too few cycles to say, see `judged`).
    pub trends: Vec<Trend>,
    /// False when there were fewer than [`MIN_CYCLES`] cycles.
    pub judged: bool,
}

impl SoakReport {
    pub fn new(cycles: Vec<Cycle>) -> SoakReport {
        let judged = cycles.len() >= MIN_CYCLES;
        let trends = if judged { trends(&cycles) } else { Vec::new() };
        SoakReport {
            cycles,
            trends,
            judged,
        }
    }

    /// A slow leak: exit 3.
    pub fn leaked(&self) -> bool {
        !self.trends.is_empty()
    }

    pub fn failed_cycles(&self) -> usize {
        self.cycles.iter().filter(|c| c.failed > 0).count()
    }
}

/// Fewest cycles a trend is judged on: the first is warm-up, and early and
/// late need at least one cycle each beside it.
pub const MIN_CYCLES: usize = 4;

/// Memory may grow by this much (and by [`MEMORY_GROWTH_RATIO`]) without
/// being a trend: allocator and page-cache noise.
pub const MEMORY_GROWTH_BYTES: f64 = 1024.0 * 1024.0;
pub const MEMORY_GROWTH_RATIO: f64 = 0.05;
/// Late cycles may take this much longer (and [`DURATION_GROWTH_RATIO`])
/// than early ones without being a trend: scheduling noise on a busy host.
pub const DURATION_GROWTH_MS: f64 = 50.0;
pub const DURATION_GROWTH_RATIO: f64 = 0.5;
/// How steadily a series must rise (Kendall's tau over the cycles after the
/// first) for memory and duration: a leak rises steadily, noise does not.
pub const MIN_TAU: f64 = 0.5;

/// The trend check. Cycle 1 is warm-up (the first connection, lazily built
/// pools, the allocator's first arenas) and is left out; the median of the
/// first third of the remaining cycles is compared with the median of the
/// last third.
///
/// - connections still open and the harness's open sockets are counts: any
///   rise of the late median over the early one, with the last cycle above
///   the first compared, is a trend;
/// - memory must rise by more than 1 MiB and 5 %, and steadily;
/// - duration must rise by more than 50 ms and 50 %, and steadily.
pub fn trends(cycles: &[Cycle]) -> Vec<Trend> {
    let body = &cycles[1.min(cycles.len())..];
    let range = match (body.first(), body.last()) {
        (Some(a), Some(b)) => format!("cycles {}-{}", a.cycle, b.cycle),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    let count = |metric: &'static str, what: &str, f: fn(&Cycle) -> Option<usize>| {
        let series: Option<Vec<f64>> = body.iter().map(|c| f(c).map(|v| v as f64)).collect();
        let s = series?;
        let (early, late) = ends(&s);
        (late > early && s[s.len() - 1] > s[0]).then(|| Trend {
            metric,
            early,
            late,
            message: format!("{what} grew from {early} to {late} over {range}"),
        })
    };
    out.extend(count(
        "connections_open",
        "connections still open after each cycle",
        |c| c.connections_open,
    ));
    out.extend(count("sockets_open", "harness open sockets", |c| {
        c.sockets_open
    }));
    let rss: Option<Vec<f64>> = body.iter().map(|c| c.rss_bytes.map(|b| b as f64)).collect();
    if let Some(s) = rss {
        out.extend(steady_growth(
            "rss_bytes",
            &s,
            (MEMORY_GROWTH_BYTES, MEMORY_GROWTH_RATIO),
            |early, late| {
                format!(
                    "harness memory grew from {:.1} MiB to {:.1} MiB over {range}",
                    early / 1048576.0,
                    late / 1048576.0
                )
            },
        ));
    }
    let d: Vec<f64> = body
        .iter()
        .map(|c| c.duration.as_secs_f64() * 1000.0)
        .collect();
    out.extend(steady_growth(
        "duration_ms",
        &d,
        (DURATION_GROWTH_MS, DURATION_GROWTH_RATIO),
        |early, late| {
            format!("cycle duration grew from {early:.0} ms to {late:.0} ms over {range}")
        },
    ));
    out
}

/// A trend in a measure that noise moves too (memory, duration): the late
/// median above the early one by more than `floor` and by more than
/// `ratio` of the early one, and a steady rise (Kendall's tau).
fn steady_growth(
    metric: &'static str,
    s: &[f64],
    (floor, ratio): (f64, f64),
    message: impl FnOnce(f64, f64) -> String,
) -> Option<Trend> {
    let (early, late) = ends(s);
    (late - early > floor.max(early * ratio) && kendall_tau(s) >= MIN_TAU).then(|| Trend {
        metric,
        early,
        late,
        message: message(early, late),
    })
}

/// Medians of the first and the last third (at least one value each).
fn ends(s: &[f64]) -> (f64, f64) {
    let k = (s.len() / 3).max(1);
    (median(&s[..k]), median(&s[s.len() - k..]))
}

fn median(s: &[f64]) -> f64 {
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Kendall's tau-a of the series against its order: 1 strictly rising,
/// -1 strictly falling, about 0 for noise. Sampled to at most 200 points
/// so a long soak stays cheap.
fn kendall_tau(s: &[f64]) -> f64 {
    let step = s.len().div_ceil(200).max(1);
    let v: Vec<f64> = s.iter().step_by(step).copied().collect();
    let n = v.len();
    if n < 2 {
        return 0.0;
    }
    let mut score = 0i64;
    for i in 0..n {
        for j in i + 1..n {
            score += match v[j].total_cmp(&v[i]) {
                std::cmp::Ordering::Greater => 1,
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
            };
        }
    }
    score as f64 / (n * (n - 1) / 2) as f64
}

/// Sockets this process has open (Linux: the `socket:` links in
/// /proc/self/fd).
#[cfg(target_os = "linux")]
pub fn sockets_open() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|l| l.to_string_lossy().starts_with("socket:"))
            .count(),
    )
}

/// Not measured on this OS.
#[cfg(not(target_os = "linux"))]
pub fn sockets_open() -> Option<usize> {
    None
}

/// Resident memory of this process in bytes (Linux: `VmRSS` in
/// /proc/self/status).
#[cfg(target_os = "linux")]
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Not measured on this OS.
#[cfg(not(target_os = "linux"))]
pub fn rss_bytes() -> Option<u64> {
    None
}

/// Test-only (`--debug-soak-leak`): a slow leak the connection gate cannot
/// see, one step per cycle, to prove the trend check catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DebugLeak {
    /// 8 MiB of memory, written so it is resident, never freed.
    Memory,
    /// One listening loopback socket, never closed.
    Sockets,
}

impl DebugLeak {
    /// Leak one step.
    pub fn leak(self) {
        match self {
            DebugLeak::Memory => {
                std::mem::forget(vec![1u8; 8 << 20]);
            }
            DebugLeak::Sockets => {
                if let Ok(l) = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)) {
                    std::mem::forget(l);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(i: u32, open: usize, sockets: usize, rss_mib: f64, ms: u64) -> Cycle {
        Cycle {
            cycle: i,
            passed: 6,
            failed: 0,
            failures: Vec::new(),
            duration: Duration::from_millis(ms),
            connections_opened: usize::from(i == 1),
            connections_total: 1,
            connections_open: Some(open),
            sockets_open: Some(sockets),
            rss_bytes: Some((rss_mib * 1048576.0) as u64),
        }
    }

    fn metrics(r: &SoakReport) -> Vec<&str> {
        r.trends.iter().map(|t| t.metric).collect()
    }

    #[test]
    fn a_flat_soak_with_noise_has_no_trend() {
        let noise = [0.0, 0.3, -0.2, 0.5, 0.1, -0.4, 0.2, 0.0, 0.6, -0.1];
        let cycles = (1..=40)
            .map(|i| {
                let n = noise[i as usize % noise.len()];
                // Cycle 1 is warm-up: more memory and time than the rest.
                let (rss, ms) = if i == 1 {
                    (6.0, 300)
                } else {
                    (20.0 + n, 40 + (n * 60.0) as u64)
                };
                cycle(i, 1, 3 + usize::from(i % 7 == 0), rss, ms)
            })
            .collect();
        let r = SoakReport::new(cycles);
        assert!(r.judged);
        assert_eq!(metrics(&r), Vec::<&str>::new(), "{:?}", r.trends);
    }

    #[test]
    fn each_slow_leak_is_named() {
        let conns: Vec<_> = (1..=12)
            .map(|i| cycle(i, i as usize, 3, 20.0, 40))
            .collect();
        let r = SoakReport::new(conns);
        assert_eq!(metrics(&r), ["connections_open"]);
        assert!(
            r.trends[0]
                .message
                .starts_with("connections still open after each cycle grew from"),
            "{}",
            r.trends[0].message
        );
        // One socket every third cycle is still a leak.
        let socks = (1..=30)
            .map(|i| cycle(i, 1, 3 + i as usize / 3, 20.0, 40))
            .collect();
        assert_eq!(metrics(&SoakReport::new(socks)), ["sockets_open"]);
        let mem = (1..=10)
            .map(|i| cycle(i, 1, 3, 20.0 + 2.0 * i as f64, 40))
            .collect();
        let r = SoakReport::new(mem);
        assert_eq!(metrics(&r), ["rss_bytes"]);
        assert!(r.trends[0].message.contains("harness memory grew from"));
        // 8.5 KiB a cycle (a request log that is never trimmed) over 500.
        let creep = (1..=500)
            .map(|i| cycle(i, 1, 3, 16.0 + 0.0083 * i as f64, 40))
            .collect();
        assert_eq!(metrics(&SoakReport::new(creep)), ["rss_bytes"]);
        let slow = (1..=10)
            .map(|i| cycle(i, 1, 3, 20.0, 40 + 30 * i as u64))
            .collect();
        assert_eq!(metrics(&SoakReport::new(slow)), ["duration_ms"]);
    }

    #[test]
    fn a_one_off_jump_is_not_a_steady_rise() {
        // One slow cycle in the late third, one memory spike: not steady.
        let cycles = (1..=12)
            .map(|i| {
                let spike = i == 11;
                cycle(
                    i,
                    1,
                    3,
                    if spike { 40.0 } else { 20.0 },
                    if spike { 900 } else { 40 },
                )
            })
            .collect();
        assert!(SoakReport::new(cycles).trends.is_empty());
    }

    #[test]
    fn too_few_cycles_are_not_judged() {
        let cycles = (1..=3).map(|i| cycle(i, i as usize, 3, 20.0, 40)).collect();
        let r = SoakReport::new(cycles);
        assert!(!r.judged && r.trends.is_empty());
    }

    #[test]
    fn repeat_counts_and_deadlines() {
        assert!(Repeat::Times(3).another(3, Duration::ZERO));
        assert!(!Repeat::Times(3).another(4, Duration::ZERO));
        let d = Repeat::For(Duration::from_secs(1));
        assert!(
            d.another(1, Duration::from_secs(5)),
            "the first cycle always runs"
        );
        assert!(d.another(7, Duration::from_millis(999)));
        assert!(!d.another(7, Duration::from_secs(1)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_sockets_and_memory_are_measured() {
        // Other tests open and close sockets meanwhile: only a lower bound.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(sockets_open().unwrap() >= 1);
        drop(l);
        assert!(rss_bytes().unwrap() > 0);
    }
}
