//! Snapshots: taking one every `snapshot_every` applied entries (and compacting the log behind
//! it), sending one in chunks to a follower that is behind the compacted prefix, and installing
//! one received.

use super::snapshot_receiver::SnapshotReceiver;
use super::{Applied, Effect, Node, Persist, Snapshot};
use crate::state_machine::StateMachine;
use crate::types::{LogIndex, LogPosition, NodeId};
use std::sync::Arc;

impl Node {
    /// Takes a snapshot if enough entries were applied since the last one.
    pub(super) fn maybe_snapshot(&mut self) {
        let since = self.snapshot.as_ref().map_or(LogIndex(0), |s| s.last.index);
        if self.applied.0.saturating_sub(since.0) < self.cfg.snapshot_every {
            return;
        }
        let Some(term) = self.log.term_at(self.applied) else {
            return;
        };
        let Ok(data) = self.sm.to_bytes() else {
            // Cannot happen for plain data; if it did, keep the log and try again later.
            return;
        };
        let snapshot = Arc::new(Snapshot {
            last: LogPosition::new(term, self.applied),
            data,
        });
        self.out.push(Effect::Persist(Persist::Snapshot {
            snapshot: Arc::clone(&snapshot),
            replaces_log: false,
        }));
        self.snapshot = Some(snapshot);
        self.log.compact(self.applied.minus(self.cfg.log_retain));
    }

    /// A follower answered a snapshot chunk.
    pub(super) fn on_snapshot_response(
        &mut self,
        from: NodeId,
        last: LogPosition,
        received: u64,
        done: bool,
    ) {
        let now = self.now;
        let Some((leader, mut sender)) = self.leader_parts() else {
            return;
        };
        if let Some(p) = leader.progress.get_mut(&from) {
            p.last_heard = now;
            sender.on_snapshot_response(from, p, last, received, done);
        }
    }

    fn snapshot_receiver(&mut self) -> SnapshotReceiver<'_> {
        SnapshotReceiver {
            cfg: &self.cfg,
            term: self.term,
            commit: self.commit,
            incoming: &mut self.incoming_snapshot,
            out: &mut self.out,
        }
    }

    /// A chunk of a snapshot from the leader; once the last one is in, the snapshot replaces the
    /// state machine, and the log up to it.
    pub(super) fn on_install_snapshot(
        &mut self,
        from: NodeId,
        last: LogPosition,
        size: u64,
        offset: u64,
        data: Vec<u8>,
    ) {
        self.heard_from_leader(from);
        let Some(buffer) = self
            .snapshot_receiver()
            .receive(from, last, size, offset, &data)
        else {
            return;
        };
        let Ok(sm) = StateMachine::from_bytes(&buffer) else {
            // A corrupt transfer: start over rather than install garbage.
            self.snapshot_receiver().answer(from, last, 0, false);
            return;
        };
        self.sm = sm;
        let keeps_tail = self.log.term_at(last.index) == Some(last.term);
        if keeps_tail {
            self.log.compact(last.index);
        } else {
            self.log.reset(last);
            self.durable = self.durable.min(last.index.prev());
        }
        // The snapshot's configuration, unless the log kept a later one.
        self.members.rescan(&self.log, &self.sm);
        self.commit = last.index;
        self.applied = last.index;
        self.history.reset(last.index);
        let snapshot = Arc::new(Snapshot { last, data: buffer });
        self.out.push(Effect::Persist(Persist::Snapshot {
            snapshot: Arc::clone(&snapshot),
            replaces_log: !keeps_tail,
        }));
        self.snapshot = Some(snapshot);
        self.out.push(Effect::Applied(Applied::Restored));
        self.snapshot_receiver().answer(from, last, size, true);
    }
}
