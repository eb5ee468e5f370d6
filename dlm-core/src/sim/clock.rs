//! A clock that runs at its own rate: a node's or a client's local time against true time.

use crate::types::Time;

/// A clock rate offset from true time, in parts per million (+20,000 runs 2% fast).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Skew(pub i64);

impl Skew {
    fn rate(self) -> u64 {
        u64::try_from(1_000_000 + self.0).unwrap_or(0).max(1)
    }

    /// The local time at true time `t` (nanoseconds).
    pub fn local(self, t: u64) -> Time {
        // u64 arithmetic while it cannot overflow (runs of hours), which is every step in
        // practice and several times faster than the u128 fallback.
        let nanos = match t.checked_mul(self.rate()) {
            Some(scaled) => scaled / 1_000_000,
            None => u64::try_from(u128::from(t) * u128::from(self.rate()) / 1_000_000)
                .unwrap_or(u64::MAX),
        };
        Time::from_nanos(nanos)
    }

    /// The earliest true time at which the local clock shows `local`.
    pub fn true_of(self, local: Time) -> u64 {
        if local == Time::MAX {
            return u64::MAX;
        }
        match local.as_nanos().checked_mul(1_000_000) {
            Some(scaled) => scaled.div_ceil(self.rate()),
            None => {
                let scaled = u128::from(local.as_nanos()) * 1_000_000;
                u64::try_from(scaled.div_ceil(u128::from(self.rate()))).unwrap_or(u64::MAX)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The u64 fast path and the u128 fallback agree, on both sides of where u64 would overflow:
    /// `true_of` is the earliest true time at which the local clock shows the value.
    #[test]
    fn true_of_is_the_earliest_true_time_showing_a_local_time() {
        let near_overflow = u64::MAX / 1_000_000;
        let times = [
            1,
            999,
            1_000_001,
            123_456_789_012,
            near_overflow - 1,
            near_overflow + 7,
        ];
        for skew in [Skew(-20_000), Skew(0), Skew(1), Skew(20_000)] {
            for nanos in times {
                let local = Time::from_nanos(nanos);
                let t = skew.true_of(local);
                assert!(skew.local(t) >= local, "{skew:?} {nanos}");
                assert!(skew.local(t - 1) < local, "{skew:?} {nanos}");
            }
        }
        assert_eq!(Skew(5).true_of(Time::MAX), u64::MAX);
    }
}
