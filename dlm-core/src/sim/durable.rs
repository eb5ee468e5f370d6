//! What a simulated node has made durable: persists are applied here as they are executed, and a
//! crash rebuilds the node from this copy alone.

use crate::command::Entry;
use crate::message::{AppendOutcome, PeerBody, PeerMessage};
use crate::node::{HardState, Node, Persist, Recovered, Snapshot};
use crate::types::LogIndex;

/// The durable copy of one node's storage.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
}

impl Durable {
    /// Executes one persist.
    pub fn apply(&mut self, persist: &Persist) {
        match persist {
            Persist::HardState(hs) => self.hard_state = *hs,
            Persist::Entries(entries) => {
                let Some(first) = entries.first() else {
                    return;
                };
                // The stored entries are in index order: cut at the first one replaced.
                let keep = self.entries.partition_point(|e| e.index < first.index);
                self.entries.truncate(keep);
                self.entries.extend(entries.iter().cloned());
            }
            Persist::Snapshot {
                snapshot,
                replaces_log,
            } => {
                let last = snapshot.last.index;
                if *replaces_log {
                    self.entries.clear();
                } else {
                    let covered = self.entries.partition_point(|e| e.index <= last);
                    self.entries.drain(..covered);
                }
                self.snapshot = Some((**snapshot).clone());
            }
        }
    }

    /// Whether what `msg` promises about its sender's storage is already true of this durable
    /// copy: a vote (its own, in a RequestVote, or for the receiver) is on disk for that term,
    /// an acknowledgement's match index is stored. Anything said in a term older than the
    /// durable one promises nothing any more.
    pub fn backs(&self, msg: &PeerMessage) -> bool {
        let hs = &self.hard_state;
        if hs.term > msg.term {
            return true;
        }
        match &msg.body {
            PeerBody::RequestVote { pre: false, .. } => {
                hs.term == msg.term && hs.voted_for == Some(msg.from)
            }
            PeerBody::VoteResponse {
                pre: false,
                granted: true,
            } => hs.term == msg.term && hs.voted_for == Some(msg.to),
            PeerBody::AppendResponse {
                outcome: AppendOutcome::Accepted { match_index },
                ..
            } => match_index.0 == 0 || (hs.term == msg.term && self.stored_through(*match_index)),
            _ => true,
        }
    }

    /// Whether the stored log (or snapshot) reaches `index`.
    fn stored_through(&self, index: LogIndex) -> bool {
        let in_log = self.entries.last().is_some_and(|e| e.index >= index);
        in_log
            || self
                .snapshot
                .as_ref()
                .is_some_and(|s| s.last.index >= index)
    }

    /// Whether storage holds `node`'s log up to the durable mark its driver reported: the same
    /// entry at that index, or a snapshot past it.
    pub fn holds_durable_mark(&self, node: &Node) -> bool {
        let mark = node.durable_index();
        if mark.0 == 0 {
            return true;
        }
        let stored = match self.entry(mark) {
            Some(e) => Some(e.term),
            None => self
                .snapshot
                .as_ref()
                .filter(|s| s.last.index == mark)
                .map(|s| s.last.term),
        };
        let last = node.last_log();
        let in_memory = match node.entry(mark) {
            Some(e) => Some(e.term),
            None => (last.index == mark).then_some(last.term),
        };
        match (stored, in_memory) {
            (Some(a), Some(b)) => a == b,
            (None, _) => self.snapshot.as_ref().is_some_and(|s| s.last.index > mark),
            (Some(_), None) => true,
        }
    }

    /// The stored entry at `index`. Stored entries are consecutive, so its place is computed.
    fn entry(&self, index: LogIndex) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        let at = usize::try_from(index.0.checked_sub(first.0)?).ok()?;
        self.entries.get(at).filter(|e| e.index == index)
    }

    /// What a restarted node recovers.
    pub fn recover(&self) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
    }
}
