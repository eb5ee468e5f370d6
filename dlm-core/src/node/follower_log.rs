//! A follower's side of replication: the consistency check of an AppendEntries against its
//! log, the fast back-off hint when it fails, and appending what is new (a conflicting suffix is
//! replaced). [`FollowerLog`] borrows only the log, how far it is durable, and the output; the
//! node answers the leader and advances its commit index with the outcome.

use super::output::Output;
use super::Persist;
use crate::command::Entry;
use crate::log::Log;
use crate::message::AppendOutcome;
use crate::types::{LogIndex, LogPosition, Term};

/// Removes `log` from `index` on; what was durable there is no longer this log's.
pub(super) fn truncate_from(log: &mut Log, durable: &mut LogIndex, index: LogIndex) {
    log.truncate_from(index);
    *durable = (*durable).min(index.prev());
}

/// A follower's log, borrowed from its node.
pub(super) struct FollowerLog<'a> {
    pub log: &'a mut Log,
    /// Every entry up to here is durable, as the driver reported.
    pub durable: &'a mut LogIndex,
    pub out: &'a mut Output,
}

impl FollowerLog<'_> {
    /// Checks `entries`, which follow `prev` in the leader's log, against this log and appends
    /// what is new (persisting it). Returns the index the answer is about and the outcome:
    /// accepted up to the last of `entries`, or rejected with the index the leader should try
    /// next.
    pub fn append(&mut self, prev: LogPosition, entries: Vec<Entry>) -> (LogIndex, AppendOutcome) {
        let matched = prev.index.plus(entries.len() as u64);
        // Entries at or before our snapshot are committed, so they match: skip them.
        let base = self.log.base();
        let (prev, entries) = if prev.index < base.index {
            let skip = usize::try_from(base.index.0 - prev.index.0).unwrap_or(usize::MAX);
            if skip > entries.len() {
                let outcome = AppendOutcome::Accepted {
                    match_index: matched,
                };
                return (prev.index, outcome);
            }
            (base, entries.into_iter().skip(skip).collect::<Vec<_>>())
        } else {
            (prev, entries)
        };

        match self.log.term_at(prev.index) {
            Some(term) if term == prev.term => {}
            found => {
                let hint = match found {
                    None => self.log.last().index.next(),
                    Some(conflict) => self.first_index_of_term(prev.index, conflict),
                };
                return (prev.index, AppendOutcome::Rejected { hint });
            }
        }

        let mut new_entries = Vec::new();
        for entry in entries {
            match self.log.term_at(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    // A conflicting suffix is never committed: the leader's log wins.
                    truncate_from(self.log, self.durable, entry.index);
                }
                None => {}
            }
            self.log.push(entry.clone());
            new_entries.push(entry);
        }
        if !new_entries.is_empty() {
            self.out.persist(Persist::Entries(new_entries));
        }
        let outcome = AppendOutcome::Accepted {
            match_index: matched,
        };
        (prev.index, outcome)
    }

    /// The first index (after the snapshot) of the run of `term` that contains `index`: the
    /// leader skips the whole run in one step instead of one entry per round trip.
    fn first_index_of_term(&self, index: LogIndex, term: Term) -> LogIndex {
        let floor = self.log.base().index.next();
        let mut first = index;
        while first > floor && self.log.term_at(first.prev()) == Some(term) {
            first = first.prev();
        }
        first
    }
}

#[cfg(test)]
#[path = "follower_log_tests.rs"]
mod tests;
