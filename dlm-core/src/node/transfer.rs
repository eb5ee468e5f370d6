//! Handing leadership to another member: to the lowest-id member once it has caught up (the
//! preferred leader), or to the most caught-up one when this node is about to stop, so that a
//! planned restart costs the cluster one round trip instead of an election time-out.

use super::output::Output;
use super::role::{Leader, RoleState};
use super::timers::{Deadline, Timers};
use super::Node;
use crate::config::Config;
use crate::membership::Membership;
use crate::message::PeerBody;
use crate::types::{LogIndex, NodeId, Term, Time};

/// After a transfer to the preferred leader runs out, this many election time-outs pass before
/// the leader tries again (a planned hand-over is not held back).
const TRANSFER_RETRY_AFTER: u32 = 10;

/// A hand-over in progress. While it lasts the leader proposes nothing new, so the successor can
/// catch up, and it answers clients with a hint to the successor. When the leader gives up on
/// it and carries on leading is the node's [`Deadline::TransferEnd`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer {
    /// The successor.
    pub to: NodeId,
    /// TimeoutNow has been sent (only once the successor holds the whole log).
    pub asked: bool,
}

/// A leader's hand-overs, borrowed from its node: its state, its deadlines and the output.
pub(super) struct Handover<'a> {
    pub cfg: &'a Config,
    /// The configuration in force: only its voters can take over.
    pub members: &'a Membership,
    pub term: Term,
    pub now: Time,
    /// The last index of the leader's log: a successor must hold all of it.
    pub last: LogIndex,
    pub leader: &'a mut Leader,
    pub timers: &'a mut Timers,
    pub out: &'a mut Output,
}

impl Handover<'_> {
    /// Hands leadership to the lowest-id member below us that is fully caught up and answering,
    /// once this leader has led for an election time-out and no recent transfer ran out.
    pub fn consider(&mut self) {
        if !self.cfg.prefer_lowest_id
            || self.leader.transfer.is_some()
            || self.now < self.leader.since + self.cfg.election_timeout
            || self.now < self.leader.no_transfer_before
        {
            return;
        }
        let fresh = self.cfg.heartbeat_interval * 2;
        let target = self
            .leader
            .progress
            .iter()
            .filter(|(id, p)| {
                **id < self.cfg.id
                    && self.members.is_voter(**id)
                    && p.matched == self.last
                    && self.now.saturating_since(p.last_heard) < fresh
            })
            .map(|(id, _)| *id)
            .min();
        if let Some(target) = target {
            self.begin(target);
        }
    }

    /// This node is about to stop: hands leadership to the member that answered within an
    /// election time-out, preferring one heard within two heartbeats, then the one with the most
    /// of the log, then the lowest id. Without one it does nothing: the others elect a leader
    /// after their time-out.
    pub fn hand_over(&mut self) {
        if self.leader.transfer.is_some_and(|t| t.asked) {
            return;
        }
        let now = self.now;
        let window = self.cfg.election_timeout;
        let fresh = self.cfg.heartbeat_interval * 2;
        let successor = self
            .leader
            .progress
            .iter()
            .filter(|(id, p)| {
                self.members.is_voter(**id)
                    && p.snapshot.is_none()
                    && now.saturating_since(p.last_heard) < window
            })
            .max_by_key(|(id, p)| {
                let heard_lately = now.saturating_since(p.last_heard) < fresh;
                (heard_lately, p.matched, std::cmp::Reverse(**id))
            })
            .map(|(id, _)| *id);
        if let Some(successor) = successor {
            self.begin(successor);
        }
    }

    /// Stops proposing and asks `to` to stand as soon as it holds the whole log.
    fn begin(&mut self, to: NodeId) {
        self.leader.transfer = Some(Transfer { to, asked: false });
        let until = self.now + self.cfg.election_timeout;
        self.timers.arm(Deadline::TransferEnd, until);
        self.ask_if_caught_up(to);
    }

    /// A transfer that ran out is given up, and the same successor is not asked again for a
    /// while: a member that cannot win (its election messages lost) would keep the leader
    /// paused.
    pub fn give_up_if_due(&mut self) {
        if !self.timers.is_due(Deadline::TransferEnd, self.now) {
            return;
        }
        self.timers.clear(Deadline::TransferEnd);
        self.leader.transfer = None;
        self.leader.no_transfer_before =
            self.now + self.cfg.election_timeout * TRANSFER_RETRY_AFTER;
    }

    /// A heartbeat during a transfer: TimeoutNow may have been lost, so ask again. A successor
    /// that already stands ignores it (it is no longer a follower of this leader).
    pub fn repeat_request(&mut self) {
        if let Some(transfer) = self.leader.transfer.filter(|t| t.asked) {
            self.out
                .send(self.cfg.id, transfer.to, self.term, PeerBody::TimeoutNow);
        }
    }

    /// Sends TimeoutNow to `peer` if it is the successor of a transfer and holds the whole log:
    /// a successor that lacked entries could not win the election it starts.
    pub fn ask_if_caught_up(&mut self, peer: NodeId) {
        let Some(transfer) = &mut self.leader.transfer else {
            return;
        };
        let caught_up = self
            .leader
            .progress
            .get(&peer)
            .is_some_and(|p| p.matched == self.last);
        if transfer.to != peer || transfer.asked || !caught_up {
            return;
        }
        transfer.asked = true;
        self.out
            .send(self.cfg.id, peer, self.term, PeerBody::TimeoutNow);
    }
}

impl Node {
    /// The leader's hand-overs; None when not leading.
    pub(super) fn handover(&mut self) -> Option<Handover<'_>> {
        let RoleState::Leader(leader) = &mut self.role else {
            return None;
        };
        Some(Handover {
            cfg: &self.cfg,
            members: &self.members.current,
            term: self.term,
            now: self.now,
            last: self.log.last().index,
            leader,
            timers: &mut self.timers,
            out: &mut self.out,
        })
    }

    /// This node is about to stop: hands leadership over if it leads (see
    /// [`Handover::hand_over`]).
    pub(super) fn hand_over(&mut self) {
        if let Some(mut handover) = self.handover() {
            handover.hand_over();
        }
    }

    /// Whether a hand-over or transfer is under way (see [`crate::Input::HandOver`]).
    pub fn is_handing_over(&self) -> bool {
        self.role.leader().is_some_and(|l| l.transfer.is_some())
    }

    /// Asks `peer` to stand if it is the successor and has caught up.
    pub(super) fn ask_successor_if_caught_up(&mut self, peer: NodeId) {
        if let Some(mut handover) = self.handover() {
            handover.ask_if_caught_up(peer);
        }
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
