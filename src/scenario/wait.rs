//! Waiting for a hub to reach a state: poll with a deadline, never a fixed
//! settle delay. Time comes from tokio, so tests drive it with
//! `tokio::time::pause()`.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The last thing seen when a wait gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// Description of the last state observed (or the last probe error).
    pub last: String,
    /// Probes made.
    pub probes: u32,
}

/// Call `probe` until it returns `Ok(Some(t))` or `timeout` has passed,
/// pausing `interval` between probes. `Ok(None)` means "not yet" and
/// `Err(e)` a failed probe; both are retried until the deadline, and the
/// last one is described in the timeout. At least one probe always runs,
/// and one more runs at the deadline so a slow poll cannot miss it.
pub async fn until<T, F, Fut>(
    timeout: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, TimedOut>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut probes = 0;
    loop {
        probes += 1;
        let last = match probe().await {
            Ok(Some(t)) => return Ok(t),
            Ok(None) => "condition not met".to_owned(),
            Err(e) => e,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(TimedOut { last, probes });
        }
        tokio::time::sleep_until((now + interval).min(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn returns_as_soon_as_the_condition_holds() {
        let n = AtomicU32::new(0);
        let start = Instant::now();
        let got = until(Duration::from_secs(5), Duration::from_millis(100), || {
            let k = n.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, String>((k == 3).then_some(k)) }
        })
        .await;
        assert_eq!(got, Ok(3));
        assert_eq!(start.elapsed(), Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_with_the_last_observation() {
        let start = Instant::now();
        let got: Result<(), _> = until(
            Duration::from_secs(1),
            Duration::from_millis(300),
            || async { Err("slot 0 state 1".to_owned()) },
        )
        .await;
        let e = got.unwrap_err();
        assert_eq!(e.last, "slot 0 state 1");
        // probes at 0, 300, 600, 900 and at the deadline.
        assert_eq!(e.probes, 5);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_timeout_still_probes_once() {
        let got = until(Duration::ZERO, Duration::from_millis(100), || async {
            Ok::<_, String>(Some(7))
        })
        .await;
        assert_eq!(got, Ok(7));
    }
}
