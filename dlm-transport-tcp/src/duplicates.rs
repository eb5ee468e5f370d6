//! Sending each message on more than one connection while the path loses packets.
//!
//! Under heavy loss TCP's own recovery is what limits dlm: every repair waits at least one of
//! the kernel's timer ticks (the RACK reorder timer and the retransmission timer both count in
//! ticks, 4 ms at HZ=250, however short the round trip), and a connection delivers in order,
//! so every message behind a lost segment waits for its repair too. A call crosses four links
//! or more, so under 20% loss on each almost every call meets a repair (BENCHMARKS.md,
//! 2026-12-07, third session). With each message written to two connections, a message is
//! late only when both copies are; with three, when all three are. (Not 4% and 0.8% instead
//! of 20%: a connection stays blocked behind a lost segment until its repair, so the copies'
//! delays are not independent; measured, two connections tripled the throughput under 20%
//! loss and three quadrupled it: BENCHMARKS.md, 2026-12-07, fourth session.)
//!
//! Copies are safe end to end. Peer messages may arrive twice and out of order (the core
//! tolerates both, and the simulator duplicates and reorders them). Client requests are
//! deduplicated by the leader by `(client, seq)` (a copy of one in progress waits for the same
//! answer, one already answered is answered from the cache), and a client takes the first
//! answer to a call and ignores any later one.
//!
//! By default ([`Duplicates::AfterLoss`]) a link or a client's connections to a node send
//! copies only while one of its sockets has retransmitted lately, read from `TCP_INFO` as for
//! the tail probes ([`crate::tail_probe`]); the extra connections are dialed when the first
//! copy is queued, authenticate exactly as the first (same handshake, same TLS), and are
//! closed once copies have stopped. A clean network dials nothing and copies nothing.

use crate::datagram::Datagrams;
use crate::tail_probe::TailProbes;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::time::Instant;

/// Whether and when messages go out on more than one connection (see the module docs of
/// `duplicates` in the source for why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Duplicates {
    /// On `connections` connections (two or more), while a connection of the link (or of the
    /// client, to that node) has retransmitted a segment within the last [`TailProbes::HOLD`];
    /// on one otherwise. Where the kernel does not report retransmissions (not Linux), never.
    AfterLoss {
        /// Connections each message goes out on while loss is seen; 1 or less means one.
        connections: usize,
    },
    /// Always on `connections` connections (for tests and measurements).
    Always {
        /// Connections each message goes out on; 1 or less means one.
        connections: usize,
    },
    /// One connection, whatever the loss.
    Never,
}

impl Default for Duplicates {
    /// Three connections after loss: see [`Duplicates::DEFAULT_CONNECTIONS`].
    fn default() -> Duplicates {
        Duplicates::AfterLoss {
            connections: Duplicates::DEFAULT_CONNECTIONS,
        }
    }
}

impl Duplicates {
    /// Connections per link while loss is seen, by default. Measured in BENCHMARKS.md
    /// (2026-12-07, fourth session).
    pub const DEFAULT_CONNECTIONS: usize = 3;

    /// The most connections a link may use: the extra ones it keeps ready to dial.
    pub(crate) fn most(self) -> usize {
        match self {
            Duplicates::AfterLoss { connections } | Duplicates::Always { connections } => {
                connections.max(1)
            }
            Duplicates::Never => 1,
        }
    }
}

/// Whether a link's (or a client's, for one node) connections have lately lost packets, shared
/// by the writers of those connections, which report retransmissions, and the senders, which
/// decide how many copies to make, on connections and as datagrams ([`crate::datagram`]).
#[derive(Debug)]
pub(crate) struct LossSignal {
    policy: Duplicates,
    datagrams: Datagrams,
    origin: Instant,
    /// Nanoseconds from `origin` until which copies are sent; 0 while no loss was seen.
    until: AtomicU64,
}

impl LossSignal {
    pub(crate) fn new(policy: Duplicates) -> LossSignal {
        LossSignal {
            policy,
            datagrams: Datagrams::Never,
            origin: Instant::now(),
            until: AtomicU64::new(0),
        }
    }

    /// The same, also deciding when messages go out as datagrams.
    pub(crate) fn with_datagrams(self, datagrams: Datagrams) -> LossSignal {
        LossSignal { datagrams, ..self }
    }

    /// Whether anyone listens: writers read `TCP_INFO` for this signal only when it does.
    pub(crate) fn wanted(&self) -> bool {
        matches!(self.policy, Duplicates::AfterLoss { connections } if connections > 1)
            || matches!(self.datagrams, Datagrams::AfterLoss { .. })
    }

    /// Whether a message sent at `now` also goes out as a datagram (if it fits in one).
    pub(crate) fn datagrams(&self, now: Instant) -> bool {
        match self.datagrams {
            Datagrams::Never => false,
            Datagrams::Always { .. } => true,
            Datagrams::AfterLoss { .. } => self.lossy(now),
        }
    }

    fn lossy(&self, now: Instant) -> bool {
        self.lossy_until().is_some_and(|until| now < until)
    }

    /// A writer saw a retransmission at `now`: copies until [`TailProbes::HOLD`] after it.
    pub(crate) fn lost(&self, now: Instant) {
        let until = now.saturating_duration_since(self.origin) + TailProbes::HOLD;
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.until.fetch_max(nanos, Ordering::Relaxed);
    }

    /// Until when copies are sent after the last loss seen, if one was.
    fn lossy_until(&self) -> Option<Instant> {
        match self.until.load(Ordering::Relaxed) {
            0 => None,
            nanos => Some(self.origin + std::time::Duration::from_nanos(nanos)),
        }
    }

    /// How many connections a message sent at `now` goes out on.
    pub(crate) fn connections(&self, now: Instant) -> usize {
        match self.policy {
            Duplicates::Never => 1,
            Duplicates::Always { .. } => self.policy.most(),
            Duplicates::AfterLoss { .. } => {
                if self.lossy(now) {
                    self.policy.most()
                } else {
                    1
                }
            }
        }
    }

    /// Ends once a message sent now would go out on `lane + 1` connections no more: for an
    /// extra connection, that it is no longer needed. Never with [`Duplicates::Always`].
    pub(crate) async fn unneeded(&self, lane: usize) {
        loop {
            let now = Instant::now();
            if self.connections(now) <= lane {
                return;
            }
            match (self.policy, self.lossy_until()) {
                // Only a new loss can change the count before then.
                (Duplicates::AfterLoss { .. }, Some(until)) if until > now => {
                    tokio::time::sleep_until(until).await
                }
                // Lane 0 (always needed), or copies always on: never.
                _ => return std::future::pending().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn after_loss(connections: usize) -> Duplicates {
        Duplicates::AfterLoss { connections }
    }

    #[tokio::test(start_paused = true)]
    async fn copies_only_for_the_hold_time_after_a_loss() {
        let signal = LossSignal::new(after_loss(2));
        assert!(signal.wanted());
        let t0 = Instant::now();
        // A clean start: one connection.
        assert_eq!(signal.connections(t0), 1);
        signal.lost(t0 + Duration::from_millis(10));
        assert_eq!(signal.connections(t0 + Duration::from_millis(10)), 2);
        let end = t0 + Duration::from_millis(10) + TailProbes::HOLD;
        assert_eq!(signal.connections(end - Duration::from_millis(1)), 2);
        assert_eq!(signal.connections(end), 1);
        // An earlier loss reported late does not shorten the hold.
        signal.lost(t0);
        assert_eq!(signal.connections(end - Duration::from_millis(1)), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_policy_sets_the_number_of_connections() {
        let t0 = Instant::now();
        for (policy, clean, lossy) in [
            (after_loss(3), 1, 3),
            (after_loss(1), 1, 1),
            (Duplicates::Always { connections: 2 }, 2, 2),
            (Duplicates::Never, 1, 1),
        ] {
            let signal = LossSignal::new(policy);
            assert_eq!(signal.connections(t0), clean, "{policy:?}");
            signal.lost(t0);
            assert_eq!(signal.connections(t0), lossy, "{policy:?}");
        }
        assert!(!LossSignal::new(after_loss(1)).wanted());
        assert!(!LossSignal::new(Duplicates::Never).wanted());
        assert!(!LossSignal::new(Duplicates::Always { connections: 2 }).wanted());
    }

    #[tokio::test(start_paused = true)]
    async fn datagrams_follow_their_own_policy_on_the_same_signal() {
        let t0 = Instant::now();
        let later = t0 + TailProbes::HOLD;
        for (datagrams, clean, lossy, wanted) in [
            (Datagrams::AfterLoss { copies: 2 }, false, true, true),
            (Datagrams::Always { copies: 1 }, true, true, false),
            (Datagrams::Never, false, false, false),
        ] {
            // Whatever the connections' policy: datagrams alone can want the signal.
            let signal = LossSignal::new(Duplicates::Never).with_datagrams(datagrams);
            assert_eq!(signal.wanted(), wanted, "{datagrams:?}");
            assert_eq!(signal.datagrams(t0), clean, "{datagrams:?}");
            signal.lost(t0);
            assert_eq!(signal.datagrams(t0), lossy, "{datagrams:?}");
            assert_eq!(signal.connections(t0), 1, "{datagrams:?}");
            // Off again once the hold time is over.
            assert_eq!(signal.datagrams(later), clean, "{datagrams:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_extra_connection_is_unneeded_once_the_hold_time_is_over() {
        let signal = LossSignal::new(after_loss(2));
        let t0 = Instant::now();
        // Bounded waits, so that a signal that never ends fails the test rather than hangs it.
        let bound = TailProbes::HOLD * 3;
        // Never lossy: unneeded at once.
        let unneeded = tokio::time::timeout(bound, signal.unneeded(1)).await;
        assert!(unneeded.is_ok());
        assert_eq!(Instant::now(), t0);
        signal.lost(t0);
        // A second loss half-way extends it.
        let extend = async {
            tokio::time::sleep(TailProbes::HOLD / 2).await;
            signal.lost(Instant::now());
            std::future::pending::<()>().await;
        };
        tokio::select! {
            unneeded = tokio::time::timeout(bound, signal.unneeded(1)) => assert!(unneeded.is_ok()),
            () = extend => unreachable!(),
        }
        assert_eq!(Instant::now(), t0 + TailProbes::HOLD / 2 + TailProbes::HOLD);
        // The first connection is always needed.
        let first = tokio::time::timeout(Duration::from_secs(3600), signal.unneeded(0)).await;
        assert!(first.is_err());
    }
}
