//! A follower receiving a snapshot in chunks: it keeps the bytes so far, keyed by sender, term,
//! snapshot position and size, answers each chunk with how much it holds, and hands the node the
//! whole snapshot once the last chunk arrives. Chunks of two leaders' snapshots of the same index
//! are never mixed: they hold the same state but may serialise it in a different order.

use super::output::Output;
use crate::config::Config;
use crate::message::PeerBody;
use crate::types::{LogIndex, LogPosition, NodeId, Term};

/// A snapshot transfer in progress: (sender, term), the snapshot's position, its size, the
/// bytes received so far.
pub(super) type IncomingSnapshot = ((NodeId, Term), LogPosition, u64, Vec<u8>);

/// A follower's snapshot reception, borrowed from its node.
pub(super) struct SnapshotReceiver<'a> {
    pub cfg: &'a Config,
    pub term: Term,
    /// A snapshot at or below the commit index brings nothing new.
    pub commit: LogIndex,
    pub incoming: &'a mut Option<IncomingSnapshot>,
    pub out: &'a mut Output,
}

impl SnapshotReceiver<'_> {
    /// Takes the chunk at `offset` of the snapshot at `last` (`size` bytes in all) from `from`.
    /// Returns the whole snapshot once this chunk completes it; otherwise answers with how many
    /// bytes it holds (zero for a chunk that cannot start or continue a transfer), or `done` for
    /// a snapshot it does not need.
    pub fn receive(
        &mut self,
        from: NodeId,
        last: LogPosition,
        size: u64,
        offset: u64,
        data: &[u8],
    ) -> Option<Vec<u8>> {
        if last.index <= self.commit {
            *self.incoming = None;
            self.answer(from, last, size, true);
            return None;
        }
        let source = (from, self.term);
        let mut buffer = match self.incoming.take() {
            Some((src, l, s, buffer)) if src == source && l == last && s == size => buffer,
            _ if offset == 0 => Vec::new(),
            _ => {
                self.answer(from, last, 0, false);
                return None;
            }
        };
        if offset == buffer.len() as u64 {
            buffer.extend_from_slice(data);
            if buffer.len() as u64 >= size {
                return Some(buffer);
            }
        }
        let received = buffer.len() as u64;
        *self.incoming = Some((source, last, size, buffer));
        self.answer(from, last, received, false);
        None
    }

    /// Tells `to` how much of the snapshot at `last` this node holds, or that it is `done`.
    pub fn answer(&mut self, to: NodeId, last: LogPosition, received: u64, done: bool) {
        let body = PeerBody::SnapshotResponse {
            last,
            received,
            done,
        };
        self.out.send(self.cfg.id, to, self.term, body);
    }
}

#[cfg(test)]
#[path = "snapshot_receiver_tests.rs"]
mod tests;
