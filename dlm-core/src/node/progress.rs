//! The leader's view of one follower: how far its log matches, what is in flight, and whether it
//! is being sent a snapshot.

use crate::types::{LogIndex, LogPosition, Time};
use std::collections::VecDeque;

/// The highest value that at least `quorum` of `values` (one per member) have reached: what a
/// majority has stored, or confirmed.
pub(crate) fn reached_by_quorum<T: Ord + Copy>(mut values: Vec<T>, quorum: usize) -> Option<T> {
    values.sort_unstable_by(|a, b| b.cmp(a));
    values.get(quorum.checked_sub(1)?).copied()
}

/// Replication progress of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub matched: LogIndex,
    /// Next index to send.
    pub next: LogIndex,
    /// Last index of each AppendEntries in flight (replicate mode).
    pub inflight: VecDeque<LogIndex>,
    /// Probing for the match point: one message at a time until an accept.
    pub probing: bool,
    /// In probe mode, a probe is out and unanswered (re-sent on the next heartbeat).
    pub probe_sent: bool,
    /// A snapshot being sent: which one, and how many bytes the follower has.
    pub snapshot: Option<(LogPosition, u64)>,
    /// When the follower last answered anything (check-quorum, transfer).
    pub last_heard: Time,
}

impl Progress {
    /// A follower we know nothing about yet: probe from the end of our log.
    pub fn new(last: LogIndex, now: Time) -> Progress {
        Progress {
            matched: LogIndex(0),
            next: last.next(),
            inflight: VecDeque::new(),
            probing: true,
            probe_sent: false,
            snapshot: None,
            last_heard: now,
        }
    }

    /// Whether another AppendEntries with entries may go out now.
    pub fn can_send(&self, max_inflight: usize) -> bool {
        if self.snapshot.is_some() {
            return false;
        }
        if self.probing {
            !self.probe_sent
        } else {
            self.inflight.len() < max_inflight
        }
    }

    /// The follower matches up to `index`.
    pub fn accept(&mut self, index: LogIndex) {
        if index > self.matched {
            self.matched = index;
        }
        if self.next <= self.matched {
            self.next = self.matched.next();
        }
        while self.inflight.front().is_some_and(|i| *i <= index) {
            self.inflight.pop_front();
        }
        self.probing = false;
        self.probe_sent = false;
    }

    /// The consistency check failed; go back to probing from `next`.
    pub fn back_off(&mut self, next: LogIndex) {
        self.next = next.max(self.matched.next());
        self.inflight.clear();
        self.probing = true;
        self.probe_sent = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a majority has reached: the quorum-th highest value, none without enough members.
    #[test]
    fn reached_by_quorum_is_the_quorum_th_highest() {
        assert_eq!(reached_by_quorum(vec![5, 9, 7], 2), Some(7));
        assert_eq!(reached_by_quorum(vec![5, 9, 7, 1, 3], 3), Some(5));
        assert_eq!(reached_by_quorum(vec![4], 1), Some(4));
        assert_eq!(reached_by_quorum(vec![4, 8], 3), None);
        assert_eq!(reached_by_quorum(Vec::<u64>::new(), 0), None);
    }

    /// A new follower is probed one message at a time from the end of the leader's log.
    #[test]
    fn a_new_follower_is_probed_one_message_at_a_time() {
        let mut p = Progress::new(LogIndex(10), Time::ZERO);
        assert_eq!(
            (p.matched, p.next, p.probing),
            (LogIndex(0), LogIndex(11), true)
        );
        assert!(p.can_send(8));
        p.probe_sent = true;
        assert!(!p.can_send(8));
    }

    /// An accept leaves probe mode, raises match (never lowers it), moves next past it and
    /// retires the messages it covers; then up to `max_inflight` may be out.
    #[test]
    fn accept_raises_match_and_retires_what_it_covers() {
        let mut p = Progress::new(LogIndex(10), Time::ZERO);
        p.accept(LogIndex(10));
        assert_eq!(
            (p.matched, p.next, p.probing),
            (LogIndex(10), LogIndex(11), false)
        );
        p.inflight
            .extend([LogIndex(12), LogIndex(14), LogIndex(16)]);
        assert!(p.can_send(4));
        assert!(!p.can_send(3));
        p.next = LogIndex(17);
        p.accept(LogIndex(14));
        assert_eq!(p.inflight, [LogIndex(16)]);
        assert_eq!((p.matched, p.next), (LogIndex(14), LogIndex(17)));
        p.accept(LogIndex(12));
        assert_eq!(p.matched, LogIndex(14), "a late accept lowered the match");
    }

    /// A rejection probes again from the hint, never at or below what is known to match, and
    /// forgets what was in flight.
    #[test]
    fn back_off_probes_again_above_the_match() {
        let mut p = Progress::new(LogIndex(10), Time::ZERO);
        p.accept(LogIndex(6));
        p.inflight.push_back(LogIndex(9));
        p.probe_sent = true;
        p.back_off(LogIndex(3));
        assert_eq!(
            (p.next, p.probing, p.probe_sent),
            (LogIndex(7), true, false)
        );
        assert!(p.inflight.is_empty());
        p.back_off(LogIndex(9));
        assert_eq!(p.next, LogIndex(9));
    }

    /// Nothing else goes out while a snapshot is being sent.
    #[test]
    fn nothing_is_sent_during_a_snapshot() {
        let mut p = Progress::new(LogIndex(10), Time::ZERO);
        p.accept(LogIndex(10));
        p.snapshot = Some((LogPosition::new(crate::types::Term(2), LogIndex(8)), 0));
        assert!(!p.can_send(8));
    }
}
