//! Routing of peer messages: the membership and term rules every message passes first, then one
//! handler per kind. A message from an older term is answered here, so that a stale sender
//! learns the newer term and steps down.

use super::Node;
use crate::message::{AppendOutcome, PeerBody, PeerMessage};

impl Node {
    /// Dispatches a peer message after the term rules common to all of them.
    pub(super) fn on_peer(&mut self, msg: PeerMessage) {
        if msg.to != self.cfg.id || msg.from == self.cfg.id {
            return;
        }
        // Requests (what a leader sends, and vote requests) are taken from a sender outside
        // the configuration too: this node's configuration may lag behind a leader or a voter
        // added since (or it is joining), and refusing such a voter's vote request could leave
        // the cluster without a leader. Only answers to what it never asked are dropped. A
        // removed node that does not know it is held off by pre-vote and the leader-alive rule.
        let request = msg.body.is_from_leader() || matches!(msg.body, PeerBody::RequestVote { .. });
        if !request && !self.members.current.contains(msg.from) {
            return;
        }
        if let PeerBody::RequestVote {
            pre,
            last,
            transfer,
        } = msg.body
        {
            self.on_vote_request(msg.from, msg.term, pre, last, transfer);
            return;
        }
        let granted_pre_vote = matches!(
            msg.body,
            PeerBody::VoteResponse {
                pre: true,
                granted: true
            }
        );
        if msg.term > self.term && !granted_pre_vote {
            let from_leader = msg.body.is_from_leader();
            self.become_follower(msg.term, from_leader.then_some(msg.from));
        } else if msg.term < self.term {
            self.answer_stale(msg);
            return;
        }
        match msg.body {
            PeerBody::AppendEntries {
                prev,
                entries,
                commit,
            } => self.on_append_entries(msg.from, prev, entries, commit),
            PeerBody::AppendResponse {
                prev_index,
                outcome,
            } => self.on_append_response(msg.from, prev_index, outcome),
            PeerBody::VoteResponse { pre, granted } => {
                self.on_vote_response(msg.from, msg.term, pre, granted)
            }
            PeerBody::InstallSnapshot {
                last,
                size,
                offset,
                data,
            } => self.on_install_snapshot(msg.from, last, size, offset, data),
            PeerBody::SnapshotResponse {
                last,
                received,
                done,
            } => self.on_snapshot_response(msg.from, last, received, done),
            PeerBody::TimeoutNow => {
                if self
                    .role
                    .followed()
                    .is_some_and(|heard| heard.id == msg.from)
                {
                    self.start_election(true);
                }
            }
            PeerBody::ReadIndex { round } => self.on_read_index(msg.from, round),
            PeerBody::ReadIndexAck { round } => self.on_read_index_ack(msg.from, round),
            PeerBody::RequestVote { .. } => {}
        }
    }

    /// A message from an older term: tell a stale leader our term, so it steps down.
    fn answer_stale(&mut self, msg: PeerMessage) {
        match msg.body {
            PeerBody::AppendEntries { prev, .. } => {
                let hint = self.log.last().index.next();
                self.send(
                    msg.from,
                    PeerBody::AppendResponse {
                        prev_index: prev.index,
                        outcome: AppendOutcome::Rejected { hint },
                    },
                );
            }
            PeerBody::InstallSnapshot { last, .. } => self.send(
                msg.from,
                PeerBody::SnapshotResponse {
                    last,
                    received: 0,
                    done: false,
                },
            ),
            // Our newer term makes the stale leader step down.
            PeerBody::ReadIndex { round } => self.send(msg.from, PeerBody::ReadIndexAck { round }),
            _ => {}
        }
    }
}
