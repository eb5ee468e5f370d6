//! Tail-loss probes: when to follow a burst of frames with a tiny segment of its own.
//!
//! Most of dlm's messages travel alone: a request, its reply, one AppendEntries, one
//! acknowledgement. When a lone segment is lost nothing comes after it, so the receiver has no
//! later segment to report the gap with, and the sender waits for a timer: Linux's loss probe,
//! which with one segment in flight waits the minimum retransmission time-out as well, or the
//! retransmission time-out itself. A [`crate::wire::PONG`] written as its own segment right
//! after the burst is the "something after it": if the burst is lost and the probe arrives,
//! the receiver acknowledges the probe selectively at once and the sender's RACK recovery
//! resends the burst after about a round trip (rounded up to the kernel's timer tick). Every
//! end already accepts a `PONG` anywhere, so the probe needs no protocol change.
//!
//! A probe costs a write and a segment per burst, which on a clean network buys nothing. So by
//! default ([`TailProbes::AfterLoss`]) a connection probes only while its kernel has lately
//! retransmitted a segment that the receiver did not already have: losses on the path show up
//! in that count within one check, while the spurious retransmissions of a clean network
//! (a loss probe that beat a delayed acknowledgement, reported back as a duplicate) do not.
//! Measured in BENCHMARKS.md (2026-12-07, third session): with the default 5 ms minimum
//! retransmission time-out, probes lift throughput under 20% loss by 15-35%; with the
//! kernel's 200 ms floor nothing helps much.

use crate::duplicates::LossSignal;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A writer whose socket's retransmission count can be read.
pub(crate) trait Retransmissions {
    /// Segments retransmitted since the socket opened; `None` if unknown.
    fn retransmitted(&self) -> Option<u32>;
}

/// In-memory pipes in tests: nothing is ever retransmitted.
#[cfg(test)]
impl Retransmissions for tokio::io::DuplexStream {
    fn retransmitted(&self) -> Option<u32> {
        None
    }
}

/// When a connection follows each burst of frames with a tail-loss probe (see the module docs
/// of `tail_probe` in the source for why).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailProbes {
    /// While the connection's socket has retransmitted a segment within the last
    /// [`TailProbes::HOLD`]: free on a clean network, and quick repairs on a lossy one. Where
    /// the kernel does not report retransmissions (not Linux), never.
    #[default]
    AfterLoss,
    /// After every burst.
    Always,
    /// Never: lost lone segments wait for TCP's retransmission timer.
    Never,
}

impl TailProbes {
    /// How long probing stays on after the last retransmission seen.
    pub const HOLD: Duration = Duration::from_secs(10);
    /// How often, at most, a writer asks its kernel for the retransmission count: one system
    /// call per connection per interval, and a loss is noticed within about one.
    pub const CHECK_EVERY: Duration = Duration::from_millis(20);
}

/// One connection's probing state.
#[derive(Debug)]
pub(crate) struct TailProbe {
    policy: TailProbes,
    /// When the count was last read, and what it was.
    checked: Option<(Instant, u32)>,
    /// Probing is on until then.
    on_until: Option<Instant>,
    /// Told of every loss seen, when it wants to be ([`crate::duplicates`]).
    report: Option<Arc<LossSignal>>,
}

impl TailProbe {
    pub(crate) fn new(policy: TailProbes) -> TailProbe {
        TailProbe {
            policy,
            checked: None,
            on_until: None,
            report: None,
        }
    }

    /// Also tells `signal` of every loss seen, if it wants to know (then the count is read
    /// whatever the probing policy).
    pub(crate) fn reporting_to(self, signal: Arc<LossSignal>) -> TailProbe {
        TailProbe {
            report: signal.wanted().then_some(signal),
            ..self
        }
    }

    /// Whether to probe after the burst just flushed at `now`. `retransmitted` reads the
    /// socket's retransmission count; it is called at most once per
    /// [`TailProbes::CHECK_EVERY`].
    pub(crate) fn after_burst(
        &mut self,
        now: Instant,
        retransmitted: impl FnOnce() -> Option<u32>,
    ) -> bool {
        if self.report.is_none() {
            match self.policy {
                TailProbes::Always => return true,
                TailProbes::Never => return false,
                TailProbes::AfterLoss => {}
            }
        }
        let due = match self.checked {
            None => true,
            Some((at, _)) => now.saturating_duration_since(at) >= TailProbes::CHECK_EVERY,
        };
        if due {
            if let Some(count) = retransmitted() {
                // The first reading is the baseline: retransmissions of the handshake or of
                // an earlier life of the socket say nothing about the path now.
                // A count that fell is a duplicate report arriving after its retransmission.
                if self.checked.is_some_and(|(_, seen)| count > seen) {
                    self.on_until = Some(now + TailProbes::HOLD);
                    if let Some(signal) = &self.report {
                        signal.lost(now);
                    }
                }
                self.checked = Some((now, count));
            }
        }
        match self.policy {
            TailProbes::Always => true,
            TailProbes::Never => false,
            TailProbes::AfterLoss => self.on_until.is_some_and(|until| now < until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn always_and_never_do_not_ask_the_kernel() {
        let t0 = Instant::now();
        let asked = Cell::new(0);
        let count = || {
            asked.set(asked.get() + 1);
            Some(5)
        };
        assert!(TailProbe::new(TailProbes::Always).after_burst(t0, count));
        assert!(!TailProbe::new(TailProbes::Never).after_burst(t0, count));
        assert_eq!(asked.get(), 0);
    }

    #[test]
    fn a_retransmission_turns_probing_on_for_the_hold_time() {
        let t0 = Instant::now();
        let mut p = TailProbe::new(TailProbes::AfterLoss);
        // The first count is a baseline, however high.
        assert!(!p.after_burst(t0, || Some(3)));
        assert!(!p.after_burst(t0 + ms(20), || Some(3)));
        // A new retransmission: on.
        assert!(p.after_burst(t0 + ms(40), || Some(4)));
        // Stays on without further losses until the hold time has passed.
        let end = t0 + ms(40) + TailProbes::HOLD;
        assert!(p.after_burst(end - ms(1), || Some(4)));
        assert!(!p.after_burst(end, || Some(4)));
        // A count that fell (a duplicate reported late) is no loss.
        assert!(!p.after_burst(end + ms(20), || Some(2)));
        // And a later loss turns it on again.
        assert!(p.after_burst(end + ms(40), || Some(9)));
    }

    #[test]
    fn the_count_is_read_at_most_once_per_check_interval() {
        let t0 = Instant::now();
        let mut p = TailProbe::new(TailProbes::AfterLoss);
        let asked = Cell::new(0);
        let count = |n| {
            asked.set(asked.get() + 1);
            Some(n)
        };
        assert!(!p.after_burst(t0, || count(0)));
        // Within the interval the count is not read, so a loss there is noticed only later.
        assert!(!p.after_burst(t0 + ms(19), || count(1)));
        assert_eq!(asked.get(), 1);
        assert!(p.after_burst(t0 + ms(20), || count(1)));
        assert_eq!(asked.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn losses_are_reported_to_the_signal_whatever_the_probing() {
        use crate::duplicates::Duplicates;
        let t0 = Instant::now();
        for policy in [TailProbes::Never, TailProbes::Always, TailProbes::AfterLoss] {
            let signal = Arc::new(LossSignal::new(Duplicates::AfterLoss { connections: 2 }));
            let mut p = TailProbe::new(policy).reporting_to(signal.clone());
            let _ = p.after_burst(t0, || Some(0));
            assert_eq!(signal.connections(t0), 1, "{policy:?}");
            let probed = p.after_burst(t0 + ms(20), || Some(1));
            assert_eq!(signal.connections(t0 + ms(20)), 2, "{policy:?}");
            // The probing policy itself is unchanged by the report.
            assert_eq!(probed, policy != TailProbes::Never, "{policy:?}");
        }
        // A signal that does not want reports costs no reads of the count.
        let signal = Arc::new(LossSignal::new(Duplicates::Never));
        let mut p = TailProbe::new(TailProbes::Never).reporting_to(signal);
        assert!(!p.after_burst(t0, || unreachable!()));
    }

    #[test]
    fn without_a_count_probing_stays_off() {
        let t0 = Instant::now();
        let mut p = TailProbe::new(TailProbes::AfterLoss);
        for i in 0..5 {
            assert!(!p.after_burst(t0 + ms(20 * i), || None));
        }
    }
}
