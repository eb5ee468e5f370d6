//! What a leader sends one follower: AppendEntries from the follower's `next` (pipelined, or
//! one probe at a time), empty heartbeats, and snapshot chunks when the follower is behind the
//! compacted log. [`Sender`] borrows only what sending needs (the configuration, the log, the
//! latest snapshot and the output) and takes the follower's [`Progress`] as an argument, so a
//! leader can walk its followers' progress and send to each without copying the peer list.

use super::output::Output;
use super::progress::Progress;
use super::Snapshot;
use crate::config::Config;
use crate::log::Log;
use crate::message::PeerBody;
use crate::types::{LogIndex, LogPosition, NodeId, Term};
use std::sync::Arc;

/// A leader's sending side, borrowed from its node.
pub(super) struct Sender<'a> {
    pub cfg: &'a Config,
    /// The leader's term, stamped on every message.
    pub term: Term,
    /// The leader's commit index, carried by every AppendEntries.
    pub commit: LogIndex,
    pub log: &'a Log,
    /// The latest snapshot, for followers behind the compacted log.
    pub snapshot: Option<&'a Arc<Snapshot>>,
    pub out: &'a mut Output,
}

impl Sender<'_> {
    /// Sends `peer` as many AppendEntries as its progress allows.
    pub fn replicate(&mut self, peer: NodeId, p: &mut Progress) {
        let last = self.log.last().index;
        while p.can_send(self.cfg.max_inflight) && p.next <= last {
            if !self.send_append(peer, p, true) {
                return;
            }
        }
    }

    /// The heartbeat for `peer`: it hears from the leader, and what was lost is recovered. A
    /// snapshot chunk is re-sent; a probe is re-sent; in pipelined mode an empty AppendEntries
    /// from `next` is rejected by a follower that missed something, and whatever the window now
    /// allows goes out.
    pub fn heartbeat(&mut self, peer: NodeId, p: &mut Progress) {
        if p.snapshot.is_some() {
            self.send_snapshot_chunk(peer, p);
        } else if p.probing {
            p.probe_sent = false;
            self.send_append(peer, p, true);
        } else {
            self.send_append(peer, p, false);
            self.replicate(peer, p);
        }
    }

    /// Sends one AppendEntries to `peer` from its `next` (with entries, or an empty heartbeat).
    /// Returns false if nothing could be sent as entries (a snapshot chunk went instead).
    fn send_append(&mut self, peer: NodeId, p: &mut Progress, with_entries: bool) -> bool {
        let next = p.next;
        let prev_index = next.prev();
        let Some(prev_term) = self.log.term_at(prev_index) else {
            self.send_snapshot_chunk(peer, p);
            return false;
        };
        let entries = if with_entries {
            self.log
                .slice(next, self.cfg.max_batch_entries, self.cfg.max_batch_bytes)
        } else {
            Vec::new()
        };
        if p.probing {
            p.probe_sent = true;
        } else if let Some(sent_last) = entries.last().map(|e| e.index) {
            p.next = sent_last.next();
            p.inflight.push_back(sent_last);
        }
        let body = PeerBody::AppendEntries {
            prev: LogPosition::new(prev_term, prev_index),
            entries,
            commit: self.commit,
        };
        self.send(peer, body);
        true
    }

    /// Sends `peer` the next chunk of the latest snapshot (from the start if it was being sent
    /// another one). Without a snapshot there is nothing to send.
    pub fn send_snapshot_chunk(&mut self, peer: NodeId, p: &mut Progress) {
        let Some(snapshot) = self.snapshot else {
            return;
        };
        let offset = match p.snapshot {
            Some((last, offset)) if last == snapshot.last => offset,
            _ => 0,
        };
        p.snapshot = Some((snapshot.last, offset));
        let size = snapshot.data.len();
        let start = usize::try_from(offset).unwrap_or(size).min(size);
        let end = start.saturating_add(self.cfg.snapshot_chunk).min(size);
        let body = PeerBody::InstallSnapshot {
            last: snapshot.last,
            size: size as u64,
            offset,
            data: snapshot.data[start..end].to_vec(),
        };
        self.send(peer, body);
    }

    /// `peer` answered a snapshot chunk: it holds `received` bytes of the snapshot at `last`,
    /// or all of it (`done`), after which replication resumes from there. An answer about
    /// another snapshot than the one being sent is stale.
    pub fn on_snapshot_response(
        &mut self,
        peer: NodeId,
        p: &mut Progress,
        last: LogPosition,
        received: u64,
        done: bool,
    ) {
        if !matches!(p.snapshot, Some((sending, _)) if sending == last) {
            return;
        }
        if done {
            p.snapshot = None;
            p.accept(last.index);
            self.replicate(peer, p);
        } else {
            p.snapshot = Some((last, received));
            self.send_snapshot_chunk(peer, p);
        }
    }

    fn send(&mut self, to: NodeId, body: PeerBody) {
        self.out.send(self.cfg.id, to, self.term, body);
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
