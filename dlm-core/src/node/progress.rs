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
