//! The wait between a peer link's attempts to connect.
//!
//! Exponential, so that a peer that is down for long is not dialed hundreds of times a second;
//! capped well below an election timeout, so that a peer that comes back is reached before the
//! cluster gives up on it; and with full jitter (a uniform draw between zero and the current
//! ceiling), so that the nodes that lost a peer together do not dial it in lock-step.

use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::time::Duration;

pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    /// The ceiling of the next draw.
    ceiling: Duration,
    rng: Xoshiro256PlusPlus,
}

impl Backoff {
    /// Seeded from `seed`, to which the operating system's generator adds its own bytes when it
    /// can (tests give a fixed seed and no salt).
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        let max = max.max(min);
        Backoff {
            min,
            max,
            ceiling: min,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }

    /// A back-off seeded from the operating system's generator, or from `fallback` if it has
    /// none to give (jitter then still differs from node to node if `fallback` does).
    pub(crate) fn random(min: Duration, max: Duration, fallback: u64) -> Backoff {
        let mut bytes = [0u8; 8];
        let seed = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => fallback,
        };
        Backoff::new(min, max, seed)
    }

    /// The next wait: uniform in zero to the ceiling, which then doubles up to the cap.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let ceiling = u64::try_from(self.ceiling.as_nanos()).unwrap_or(u64::MAX);
        let wait = match ceiling.checked_add(1) {
            Some(span) => self.rng.next_u64() % span,
            None => self.rng.next_u64(),
        };
        self.ceiling = self.ceiling.saturating_mul(2).min(self.max);
        Duration::from_nanos(wait)
    }

    /// After a connection that worked: the next failure starts from the bottom again.
    pub(crate) fn reset(&mut self) {
        self.ceiling = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn waits_stay_under_a_doubling_ceiling_capped_at_max() {
        let mut b = Backoff::new(10 * MS, 100 * MS, 7);
        let ceilings = [10, 20, 40, 80, 100, 100, 100];
        for ceiling in ceilings {
            let wait = b.next_wait();
            assert!(wait <= ceiling * MS, "{wait:?} over {ceiling} ms");
        }
        b.reset();
        assert!(b.next_wait() <= 10 * MS);
    }

    #[test]
    fn waits_are_jittered_over_the_whole_range() {
        let mut b = Backoff::new(100 * MS, 100 * MS, 11);
        let waits: Vec<Duration> = (0..200).map(|_| b.next_wait()).collect();
        assert!(waits.iter().any(|w| *w < 20 * MS), "{waits:?}");
        assert!(waits.iter().any(|w| *w > 80 * MS), "{waits:?}");
    }

    #[test]
    fn differently_seeded_links_do_not_wait_alike() {
        let mut a = Backoff::new(100 * MS, 100 * MS, 1);
        let mut b = Backoff::new(100 * MS, 100 * MS, 2);
        let a: Vec<Duration> = (0..8).map(|_| a.next_wait()).collect();
        let b: Vec<Duration> = (0..8).map(|_| b.next_wait()).collect();
        assert_ne!(a, b);
    }
}
