//! The in-memory replicated log: the entries after the last snapshot (plus a retained tail), and
//! the position the snapshot covers. What is on disk is the driver's business; the node tells it
//! what to persist through effects.

use crate::command::Entry;
use crate::types::{LogIndex, LogPosition, Term};
use std::collections::VecDeque;

/// The log of one node.
#[derive(Clone, Debug, Default)]
pub struct Log {
    /// The last entry dropped from memory (covered by a snapshot).
    base: LogPosition,
    /// Entries `base.index + 1 ..= last`.
    entries: VecDeque<Entry>,
}

impl Log {
    /// A log that starts after `base` with `entries` (which must follow it contiguously; entries
    /// that do not are dropped, since recovery must never invent a gap).
    pub fn new(base: LogPosition, entries: impl IntoIterator<Item = Entry>) -> Log {
        let mut expected = base.index.next();
        // Filtered and collected in place when given a `Vec` (as recovery does) and turned into a
        // deque without a copy: a million recovered entries are not moved one by one into a
        // deque that doubles as it grows.
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|entry| entry.index > base.index)
            .take_while(|entry| {
                let follows = entry.index == expected;
                expected = expected.next();
                follows
            })
            .collect();
        Log {
            base,
            entries: VecDeque::from(entries),
        }
    }

    /// The position covered by the snapshot (nothing at or before it is in memory).
    pub fn base(&self) -> LogPosition {
        self.base
    }

    /// The last entry's position (the base if there are none).
    pub fn last(&self) -> LogPosition {
        self.entries.back().map_or(self.base, Entry::position)
    }

    /// The term of the entry at `index`, if known (the base's term counts).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.get(index).map(|e| e.term)
    }

    /// The entry at `index`, if in memory.
    pub fn get(&self, index: LogIndex) -> Option<&Entry> {
        let offset = index.0.checked_sub(self.base.index.0 + 1)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Appends an entry the leader created. Its index must be `last + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last().index.next());
        self.entries.push_back(entry);
    }

    /// Removes every entry at or after `index`.
    pub fn truncate_from(&mut self, index: LogIndex) {
        let keep = index.0.saturating_sub(self.base.index.0 + 1);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Entries from `from` on, at most `max_entries` and (after the first) about `max_bytes`.
    pub fn slice(&self, from: LogIndex, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let Some(start) = from.0.checked_sub(self.base.index.0 + 1) else {
            return Vec::new();
        };
        let Ok(start) = usize::try_from(start) else {
            return Vec::new();
        };
        let mut bytes = 0;
        let mut out = Vec::new();
        for entry in self.entries.iter().skip(start).take(max_entries) {
            let size = entry_size(entry);
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(entry.clone());
        }
        out
    }

    /// Entries `from..=to` (those in memory).
    pub fn range(&self, from: LogIndex, to: LogIndex) -> impl Iterator<Item = &Entry> {
        let start = from.0.saturating_sub(self.base.index.0 + 1);
        let count = (to.0 + 1).saturating_sub(from.0.max(self.base.index.0 + 1));
        self.entries
            .iter()
            .skip(usize::try_from(start).unwrap_or(usize::MAX))
            .take(usize::try_from(count).unwrap_or(usize::MAX))
    }

    /// Drops entries up to and including `upto` (they are covered by a snapshot), keeping the
    /// term of the last one dropped for the consistency check.
    pub fn compact(&mut self, upto: LogIndex) {
        while let Some(front) = self.entries.front() {
            if front.index > upto {
                break;
            }
            self.base = front.position();
            self.entries.pop_front();
        }
    }

    /// Replaces everything with an empty log after `base` (a snapshot was installed).
    pub fn reset(&mut self, base: LogPosition) {
        self.entries.clear();
        self.base = base;
    }

    /// Number of entries in memory.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// An upper bound of an entry's encoded size (postcard, as the transports send it), for
/// batching: an AppendEntries whose entries add up to `n` by this measure encodes to at most
/// `n` plus the message's own fields ([`crate::frame::MESSAGE_OVERHEAD`]), so the batch byte
/// budget bounds the frame. Every kind of command is counted by its variable parts (names,
/// data, values, addresses) plus room for its fixed fields at their widest encoding; no field
/// is guessed. Cheap: it reads lengths only.
pub fn entry_size(entry: &Entry) -> usize {
    use crate::command::Command;
    // Term, index and the command's tag.
    let fixed = 2 * wire::U64 + wire::TAG;
    fixed
        + match &entry.command {
            Command::Noop => 0,
            Command::Client(request) => {
                // Client, seq, acknowledged watermark, pending seqs and the op's tag.
                let pending = wire::LEN + request.pending.len() * wire::U64;
                wire::U128 + 2 * wire::U64 + pending + wire::TAG + op_size(&request.op)
            }
            Command::Expire { lock, .. } => wire::bytes(lock.len()) + 2 * wire::U64,
            Command::LiftDelay { lock } => wire::bytes(lock.len()),
            Command::CancelWait { lock, .. } => wire::bytes(lock.len()) + wire::U128 + wire::U64,
            Command::ExpireSession { .. } => wire::U128,
            Command::Membership { config, .. } => {
                let members: usize = config
                    .members()
                    .map(|m| wire::U64 + wire::bytes(m.addr.len()))
                    .sum();
                2 * wire::LEN + members + wire::U128 + wire::U64
            }
        }
}

/// The upper bound [`entry_size`] gives an op's own fields (after its tag).
fn op_size(op: &crate::protocol::Op) -> usize {
    use crate::protocol::Op;
    match op {
        Op::Acquire { lock, .. } => {
            wire::bytes(lock.len()) + wire::DURATION + wire::OPTION_DURATION
        }
        Op::AcquireAs { lock, .. } => {
            wire::bytes(lock.len()) + wire::DURATION + wire::OPTION_DURATION + wire::MODE
        }
        Op::Release { lock, .. } | Op::Cancel { lock, .. } => wire::bytes(lock.len()) + wire::U64,
        Op::Revoke { lock } => wire::bytes(lock.len()),
        Op::KeepAlive | Op::Status | Op::Members => 0,
        Op::Append {
            lock, file, data, ..
        } => {
            wire::bytes(lock.len()) + wire::U64 + wire::bytes(file.len()) + wire::bytes(data.len())
        }
        Op::Read { file, .. } => wire::bytes(file.len()) + wire::U64,
        Op::Locks { prefix, after, .. } => {
            wire::bytes(prefix.len())
                + wire::TAG
                + after.as_ref().map_or(0, |a| wire::bytes(a.len()))
                + wire::U32
        }
        Op::Sessions { .. } => wire::TAG + wire::U128 + wire::U32,
        Op::AddLearner { addr, .. } => wire::U64 + wire::bytes(addr.len()),
        Op::Promote { .. } | Op::Remove { .. } => wire::U64,
        Op::Proclaim { lock, value, .. } => {
            wire::bytes(lock.len()) + wire::U64 + wire::bytes(value.len())
        }
        Op::WatchLock { lock, .. } => {
            // `from`: a tag and a position (index and place).
            wire::bytes(lock.len()) + wire::TAG + wire::U64 + wire::U32 + wire::DURATION
        }
        Op::TailFile { file, .. } => wire::bytes(file.len()) + wire::U64 + wire::DURATION,
    }
}

/// The widest postcard encoding of each kind of field: integers are varints (7 bits a
/// byte), enum tags are `u32` varints, and strings and byte vectors are a length then the
/// bytes.
pub(crate) mod wire {
    /// A `u32`.
    pub const U32: usize = 5;
    /// A `u64`.
    pub const U64: usize = 10;
    /// A `u128`.
    pub const U128: usize = 19;
    /// An enum's tag (a variant index).
    pub const TAG: usize = U32;
    /// A length prefix (a `usize`, as a `u64`).
    pub const LEN: usize = U64;
    /// A `Duration`: seconds and nanoseconds.
    pub const DURATION: usize = U64 + U32;
    /// An `Option<Duration>`.
    pub const OPTION_DURATION: usize = 1 + DURATION;
    /// A [`crate::Mode`]: a tag and a semaphore's size.
    pub const MODE: usize = TAG + U32;

    /// A string or byte vector of `len` bytes.
    pub const fn bytes(len: usize) -> usize {
        LEN + len
    }
}

#[cfg(test)]
#[path = "log_size_tests.rs"]
mod size_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    fn noop(term: u64, index: u64) -> Entry {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            command: Command::Noop,
        }
    }

    fn pos(term: u64, index: u64) -> LogPosition {
        LogPosition::new(Term(term), LogIndex(index))
    }

    fn indexes<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<u64> {
        entries.into_iter().map(|e| e.index.0).collect()
    }

    /// Recovery keeps only entries that follow the base without a gap.
    #[test]
    fn new_skips_what_the_base_covers_and_stops_at_a_gap() {
        let log = Log::new(
            pos(1, 2),
            [noop(1, 1), noop(1, 2), noop(1, 3), noop(2, 4), noop(2, 6)],
        );
        assert_eq!(log.base(), pos(1, 2));
        assert_eq!(log.last(), pos(2, 4));
        assert_eq!(log.len(), 2);
    }

    /// A recovered log given as a vector keeps the vector's buffer: its entries are not copied.
    #[test]
    fn new_takes_a_vector_over_without_copying_it() {
        let entries: Vec<Entry> = (1..=1000).map(|i| noop(1, i)).collect();
        let buffer = entries.as_ptr();
        let log = Log::new(pos(1, 10), entries);
        assert_eq!(log.len(), 990);
        // The kept entries move to the front of the same buffer.
        let first = log.get(LogIndex(11)).map(|e| e as *const Entry);
        assert_eq!(first, Some(buffer));
    }

    /// The base's term answers the consistency check at the base; nothing before it is known.
    #[test]
    fn term_at_knows_the_base_and_the_entries_only() {
        let log = Log::new(pos(3, 5), [noop(3, 6), noop(4, 7)]);
        assert_eq!(log.term_at(LogIndex(5)), Some(Term(3)));
        assert_eq!(log.term_at(LogIndex(7)), Some(Term(4)));
        assert_eq!(log.term_at(LogIndex(4)), None);
        assert_eq!(log.term_at(LogIndex(8)), None);
        assert!(log.get(LogIndex(5)).is_none());
    }

    /// Truncation removes from an index on, never the base, and an index past the end is a no-op.
    #[test]
    fn truncate_from_keeps_everything_before_the_index() {
        let mut log = Log::new(pos(1, 2), (3..=6).map(|i| noop(1, i)));
        log.truncate_from(LogIndex(9));
        assert_eq!(log.last(), pos(1, 6));
        log.truncate_from(LogIndex(5));
        assert_eq!(log.last(), pos(1, 4));
        log.truncate_from(LogIndex(1));
        assert_eq!(log.last(), pos(1, 2));
        assert_eq!(log.len(), 0);
    }

    /// A slice takes at most `max_entries`, and stops before the byte budget, but always takes the
    /// first entry however large; nothing before the base is sliced.
    #[test]
    fn slice_honours_both_budgets_and_always_sends_one() {
        let log = Log::new(pos(1, 2), (3..=8).map(|i| noop(1, i)));
        assert_eq!(indexes(&log.slice(LogIndex(4), 3, usize::MAX)), [4, 5, 6]);
        let one = entry_size(&noop(1, 3));
        assert_eq!(indexes(&log.slice(LogIndex(4), 10, 2 * one)), [4, 5]);
        assert_eq!(indexes(&log.slice(LogIndex(4), 10, 0)), [4]);
        assert!(log.slice(LogIndex(2), 10, usize::MAX).is_empty());
        assert!(log.slice(LogIndex(9), 10, usize::MAX).is_empty());
    }

    /// A range is clipped to what is in memory on both ends.
    #[test]
    fn range_is_clipped_to_memory() {
        let log = Log::new(pos(1, 2), (3..=6).map(|i| noop(1, i)));
        assert_eq!(indexes(log.range(LogIndex(4), LogIndex(5))), [4, 5]);
        assert_eq!(indexes(log.range(LogIndex(1), LogIndex(3))), [3]);
        assert_eq!(indexes(log.range(LogIndex(5), LogIndex(99))), [5, 6]);
        assert!(log.range(LogIndex(7), LogIndex(9)).next().is_none());
    }

    /// Compaction moves the base to the last entry dropped, keeping its term for the check.
    #[test]
    fn compact_moves_the_base_to_the_last_dropped_entry() {
        let mut log = Log::new(pos(1, 2), [noop(1, 3), noop(2, 4), noop(2, 5)]);
        log.compact(LogIndex(4));
        assert_eq!(log.base(), pos(2, 4));
        assert_eq!(log.term_at(LogIndex(4)), Some(Term(2)));
        assert_eq!(indexes(log.range(LogIndex(1), LogIndex(9))), [5]);
        log.compact(LogIndex(99));
        assert_eq!(
            (log.base(), log.last(), log.len()),
            (pos(2, 5), pos(2, 5), 0)
        );
        log.reset(pos(7, 40));
        assert_eq!((log.base(), log.last()), (pos(7, 40), pos(7, 40)));
    }
}
