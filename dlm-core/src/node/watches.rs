//! Watches and tails waiting at the leader for something to report.
//!
//! A watch of a lock, or a tail of a file, that has nothing to report is held here until the
//! lock has a new event, the file grows, or its wait runs out, and then answered on its
//! connection. Nothing is buffered per watcher: the answer is built from the node's window of
//! events (or the file) when it is sent, so a slow watcher costs its entry here and nothing
//! more, and one that falls behind the window is told so (`compacted`) with the current state.

use crate::names::{FileName, LockName};
use crate::protocol::EventPosition;
use crate::state_machine::DetHasher;
use crate::types::{ClientId, ConnId, Seq, Time};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use std::time::Duration;

/// The longest a watch or tail waits at the leader before it is answered with nothing new,
/// whatever it asked: the client asks again, and learns of a leader change meanwhile.
pub const MAX_WATCH_WAIT: Duration = Duration::from_secs(60);

/// What a waiting watch wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Wanted {
    /// Events of `lock` after `after`.
    Lock {
        /// The lock.
        lock: LockName,
        /// The last position the watcher has.
        after: EventPosition,
    },
    /// Bytes of `file` from `offset`.
    File {
        /// The file.
        file: FileName,
        /// The first byte wanted.
        offset: u64,
    },
}

/// One waiting watch or tail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Parked {
    pub conn: ConnId,
    pub client: ClientId,
    pub seq: Seq,
    pub wanted: Wanted,
    /// When it is answered with nothing new.
    pub until: Time,
}

/// The leader's waiting watches and tails.
#[derive(Debug, Default)]
pub(super) struct Watches {
    next_id: u64,
    parked: BTreeMap<u64, Parked>,
    /// Ids in a set, not a list: a lock with thousands of observers loses one as its wait runs
    /// out without a pass over the others.
    by_lock: HashMap<LockName, BTreeSet<u64>, DetHasher>,
    by_file: HashMap<FileName, BTreeSet<u64>, DetHasher>,
    deadlines: BTreeSet<(Time, u64)>,
    /// The requests waiting, so that copies of one (sent on several connections, or by
    /// datagram, while the path loses packets) take one place, not one each.
    requests: BTreeSet<(ClientId, Seq)>,
}

impl Watches {
    /// How many wait.
    pub fn len(&self) -> usize {
        self.parked.len()
    }

    /// Whether a copy of request `seq` of `client` already waits (its answer goes to every
    /// connection the client has used).
    pub fn holds(&self, client: ClientId, seq: Seq) -> bool {
        self.requests.contains(&(client, seq))
    }

    /// Holds `parked` until its subject changes or its time runs out.
    pub fn park(&mut self, parked: Parked) {
        self.requests.insert((parked.client, parked.seq));
        let id = self.next_id;
        self.next_id += 1;
        match &parked.wanted {
            Wanted::Lock { lock, .. } => self.by_lock.entry(lock.clone()).or_default().insert(id),
            Wanted::File { file, .. } => self.by_file.entry(file.clone()).or_default().insert(id),
        };
        self.deadlines.insert((parked.until, id));
        self.parked.insert(id, parked);
    }

    /// Every watch of `lock`, taken out (to be answered, or parked again).
    pub fn take_lock(&mut self, lock: &LockName) -> Vec<Parked> {
        let ids = self.by_lock.remove(lock).unwrap_or_default();
        self.take(ids)
    }

    /// Every tail of `file`, taken out.
    pub fn take_file(&mut self, file: &FileName) -> Vec<Parked> {
        let ids = self.by_file.remove(file).unwrap_or_default();
        self.take(ids)
    }

    /// Every watch whose time has come at `now`, taken out.
    pub fn take_due(&mut self, now: Time) -> Vec<Parked> {
        let mut due = Vec::new();
        while let Some(&(until, id)) = self.deadlines.first() {
            if until > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(parked) = self.remove(id) {
                due.push(parked);
            }
        }
        due
    }

    /// Every watch, taken out (the leader steps down).
    pub fn drain(&mut self) -> Vec<Parked> {
        self.by_lock.clear();
        self.by_file.clear();
        self.deadlines.clear();
        self.requests.clear();
        std::mem::take(&mut self.parked).into_values().collect()
    }

    /// When the earliest watch runs out.
    pub fn next_deadline(&self) -> Time {
        self.deadlines.first().map_or(Time::MAX, |(t, _)| *t)
    }

    fn take(&mut self, ids: BTreeSet<u64>) -> Vec<Parked> {
        ids.into_iter()
            .filter_map(|id| {
                let parked = self.remove(id)?;
                self.deadlines.remove(&(parked.until, id));
                Some(parked)
            })
            .collect()
    }

    fn remove(&mut self, id: u64) -> Option<Parked> {
        let parked = self.parked.remove(&id)?;
        self.requests.remove(&(parked.client, parked.seq));
        match &parked.wanted {
            Wanted::Lock { lock, .. } => unindex(&mut self.by_lock, lock, id),
            Wanted::File { file, .. } => unindex(&mut self.by_file, file, id),
        }
        Some(parked)
    }
}

fn unindex<K: Hash + Eq>(index: &mut HashMap<K, BTreeSet<u64>, DetHasher>, key: &K, id: u64) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LogIndex;

    fn parked(seq: u64, lock: &str, until: u64) -> Parked {
        Parked {
            conn: ConnId(1),
            client: ClientId(1),
            seq: Seq(seq),
            wanted: Wanted::Lock {
                lock: lock.into(),
                after: EventPosition::end_of(LogIndex(0)),
            },
            until: Time::from_millis(until),
        }
    }

    /// A watch of a lock that never changes runs out poll after poll: each must leave no
    /// trace in the index by lock, or an idle watcher would grow the leader's memory forever.
    #[test]
    fn a_watch_that_runs_out_leaves_nothing_behind() {
        let mut watches = Watches::default();
        for seq in 0..100 {
            watches.park(parked(seq, "quiet", seq));
            assert_eq!(watches.take_due(Time::from_millis(seq)).len(), 1);
        }
        watches.park(parked(100, "quiet", 1_000));
        watches.park(parked(101, "other", 1_000));
        assert_eq!(
            watches
                .by_lock
                .get(&LockName::from("quiet"))
                .map(BTreeSet::len),
            Some(1)
        );
        assert_eq!(watches.take_lock(&"quiet".into()).len(), 1);
        assert!(!watches.by_lock.contains_key(&LockName::from("quiet")));
        assert_eq!(
            watches
                .by_lock
                .get(&LockName::from("other"))
                .map(BTreeSet::len),
            Some(1)
        );
        assert_eq!(watches.len(), 1);
        assert_eq!(watches.next_deadline(), Time::from_millis(1_000));
    }
}
