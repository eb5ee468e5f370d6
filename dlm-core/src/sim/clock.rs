//! A clock that runs at its own rate: a node's or a client's local time against true time.

use crate::types::Time;

/// A clock rate offset from true time, in parts per million (+20,000 runs 2% fast).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skew(pub i64);

impl Skew {
    fn rate(self) -> u128 {
        u128::try_from(1_000_000 + self.0).unwrap_or(0).max(1)
    }

    /// The local time at true time `t` (nanoseconds).
    pub fn local(self, t: u64) -> Time {
        Time::from_nanos(u64::try_from(u128::from(t) * self.rate() / 1_000_000).unwrap_or(u64::MAX))
    }

    /// The earliest true time at which the local clock shows `local`.
    pub fn true_of(self, local: Time) -> u64 {
        if local == Time::MAX {
            return u64::MAX;
        }
        let nanos = u128::from(local.as_nanos()) * 1_000_000;
        u64::try_from(nanos.div_ceil(self.rate())).unwrap_or(u64::MAX)
    }
}
