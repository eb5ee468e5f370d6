//! Log replication: the leader's flush of new entries (one persist, pipelined AppendEntries per
//! follower), the follower's consistency check, fast back-off, heartbeats and the commit rule.

use super::follower_log::FollowerLog;
use super::progress::reached_by_quorum;
use super::role::{Leader, RoleState};
use super::sender::Sender;
use super::{Effect, Node, Persist};
use crate::command::Entry;
use crate::message::{AppendOutcome, PeerBody};
use crate::types::{LogIndex, LogPosition, NodeId};

impl Node {
    /// The leader's state and its sending side, borrowed apart so that a handler can walk the
    /// followers' progress while it sends. None when not leading.
    pub(super) fn leader_parts(&mut self) -> Option<(&mut Leader, Sender<'_>)> {
        let RoleState::Leader(leader) = &mut self.role else {
            return None;
        };
        let sender = Sender {
            cfg: &self.cfg,
            term: self.term,
            commit: self.commit,
            log: &self.log,
            snapshot: self.snapshot.as_ref(),
            out: &mut self.out,
        };
        Some((leader, sender))
    }

    /// Sends and persists whatever the leader proposed since the last flush. Sends go first, so
    /// the followers sync while the leader does; the leader's own copy counts only once its
    /// driver reports it durable (see the commit rule on [`Node`]).
    pub(super) fn flush(&mut self) {
        let Some((leader, mut sender)) = self.leader_parts() else {
            return;
        };
        let last = sender.log.last().index;
        if leader.flushed >= last {
            return;
        }
        let from = leader.flushed.next();
        leader.flushed = last;
        if !leader.quiet {
            for (peer, p) in &mut leader.progress {
                sender.replicate(*peer, p);
            }
        }
        let entries: Vec<Entry> = sender.log.range(from, last).cloned().collect();
        sender.out.push(Effect::Persist(Persist::Entries(entries)));
    }

    /// Sends `peer` as many AppendEntries as its progress allows.
    pub(super) fn replicate(&mut self, peer: NodeId) {
        if let Some((leader, mut sender)) = self.leader_parts().filter(|(l, _)| !l.quiet) {
            if let Some(p) = leader.progress.get_mut(&peer) {
                sender.replicate(peer, p);
            }
        }
    }

    /// Heartbeat: every follower hears from the leader, and lost messages are recovered.
    pub(super) fn broadcast_heartbeat(&mut self) {
        if let Some((leader, mut sender)) = self.leader_parts().filter(|(l, _)| !l.quiet) {
            for (peer, p) in &mut leader.progress {
                sender.heartbeat(*peer, p);
            }
        }
    }

    pub(super) fn on_append_entries(
        &mut self,
        from: NodeId,
        prev: LogPosition,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) {
        self.heard_from_leader(from);
        let mut follower_log = FollowerLog {
            log: &mut self.log,
            durable: &mut self.durable,
            out: &mut self.out,
        };
        let (prev_index, outcome) = follower_log.append(prev, entries);
        self.members.refresh(&self.log, &self.sm, prev.index.next());
        if let AppendOutcome::Accepted { match_index } = outcome {
            let commit = commit.min(match_index);
            if commit > self.commit {
                self.commit = commit;
                self.apply_committed();
            }
        }
        self.send(
            from,
            PeerBody::AppendResponse {
                prev_index,
                outcome,
            },
        );
    }

    pub(super) fn on_append_response(
        &mut self,
        from: NodeId,
        prev_index: LogIndex,
        outcome: AppendOutcome,
    ) {
        let now = self.now;
        let last = self.log.last().index;
        let Some(p) = self
            .role
            .leader_mut()
            .and_then(|l| l.progress.get_mut(&from))
        else {
            return;
        };
        p.last_heard = now;
        match outcome {
            AppendOutcome::Accepted { match_index } => {
                p.accept(match_index.min(last));
                self.maybe_commit();
                self.ask_successor_if_caught_up(from);
            }
            AppendOutcome::Rejected { hint } => {
                // An answer to something older than what is known to match is stale.
                if prev_index < p.matched || p.snapshot.is_some() {
                    return;
                }
                p.back_off(hint.min(prev_index));
            }
        }
        self.replicate(from);
    }

    /// Commits the highest index stored on a majority, if it is of the current term.
    pub(super) fn maybe_commit(&mut self) {
        let Some(leader) = self.role.leader() else {
            return;
        };
        // Only voters count, this leader among them unless it is removing itself.
        let config = &self.members.current;
        let mut matched: Vec<LogIndex> = leader
            .progress
            .iter()
            .filter(|(id, _)| config.is_voter(**id))
            .map(|(_, p)| p.matched)
            .collect();
        if config.is_voter(self.cfg.id) {
            matched.push(self.durable.min(leader.flushed));
        }
        let Some(candidate) = reached_by_quorum(matched, config.quorum()) else {
            return;
        };
        if candidate > self.commit && self.log.term_at(candidate) == Some(self.term) {
            self.commit = candidate;
            self.apply_committed();
        }
    }
}
