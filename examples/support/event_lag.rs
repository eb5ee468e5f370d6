//! How late a watcher hears of an event, for loadgen's `--watchers`: the time from the
//! holder's acknowledged release (its commit, plus the reply's way back) to the watcher's
//! receipt of the `released` event, per token. The watcher's answer leaves the leader in the
//! same pass that answers the holder, so a lag near zero means one round trip from commit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Release acknowledgements and sightings, matched by token.
#[derive(Default)]
pub struct EventLag {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    acked: HashMap<u64, Instant>,
    seen: HashMap<u64, Instant>,
    /// Lags in µs (negative: the watcher heard before the holder's answer arrived).
    lags_us: Vec<i64>,
}

impl EventLag {
    /// The holder's release of `token` was acknowledged at `at`.
    pub fn acked(&self, token: u64, at: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.seen.remove(&token) {
            Some(seen) => inner.lags_us.push(-micros(at, seen)),
            None => {
                inner.acked.insert(token, at);
            }
        }
    }

    /// The watcher heard of `token`'s release at `at`.
    pub fn seen(&self, token: u64, at: Instant) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.acked.remove(&token) {
            Some(acked) => inner.lags_us.push(micros(at, acked)),
            None => {
                inner.seen.insert(token, at);
            }
        }
    }

    /// How many matched, the median and 99th percentile lag in µs, and how many the watcher
    /// heard of first.
    pub fn summary(&self) -> Option<(usize, i64, i64, usize)> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let lags = &mut inner.lags_us;
        if lags.is_empty() {
            return None;
        }
        lags.sort_unstable();
        let at = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
        let early = lags.iter().filter(|l| **l < 0).count();
        Some((lags.len(), at(0.5), at(0.99), early))
    }
}

/// `later - earlier` in µs (saturating at zero).
fn micros(later: Instant, earlier: Instant) -> i64 {
    i64::try_from(later.saturating_duration_since(earlier).as_micros()).unwrap_or(i64::MAX)
}
