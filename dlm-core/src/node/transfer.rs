//! Handing leadership to another member: to the lowest-id member once it has caught up (the
//! preferred leader), or to the most caught-up one when this node is about to stop, so that a
//! planned restart costs the cluster one round trip instead of an election time-out.

use super::timers::Deadline;
use super::Node;
use crate::message::PeerBody;
use crate::types::NodeId;

/// A hand-over in progress. While it lasts the leader proposes nothing new, so the successor can
/// catch up, and it answers clients with a hint to the successor.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer {
    /// The successor. When the leader gives up on it and carries on leading is the node's
    /// [`super::timers::Deadline::TransferEnd`].
    pub to: NodeId,
    /// TimeoutNow has been sent (only once the successor holds the whole log).
    pub asked: bool,
}

impl Node {
    /// Hands leadership to the lowest-id member below us that is fully caught up and answering.
    pub(super) fn consider_transfer(&mut self) {
        if !self.cfg.prefer_lowest_id {
            return;
        }
        let last = self.log.last().index;
        let now = self.now;
        let fresh = self.cfg.heartbeat_interval * 2;
        let Some(leader) = self.role.leader() else {
            return;
        };
        if leader.transfer.is_some()
            || now < leader.since + self.cfg.election_timeout
            || now < leader.no_transfer_before
        {
            return;
        }
        let target = leader
            .progress
            .iter()
            .filter(|(id, p)| {
                **id < self.cfg.id
                    && p.matched == last
                    && now.saturating_since(p.last_heard) < fresh
            })
            .map(|(id, _)| *id)
            .min();
        if let Some(target) = target {
            self.begin_transfer(target);
        }
    }

    /// This node is about to stop: hands leadership to the member that answered within an
    /// election time-out, preferring one heard within two heartbeats, then the one with the most
    /// of the log, then the lowest id. Without one, or when not leading, it does nothing: the
    /// others elect a leader after their time-out.
    pub(super) fn hand_over(&mut self) {
        let now = self.now;
        let window = self.cfg.election_timeout;
        let fresh = self.cfg.heartbeat_interval * 2;
        let Some(leader) = self.role.leader() else {
            return;
        };
        if leader.transfer.is_some_and(|t| t.asked) {
            return;
        }
        let successor = leader
            .progress
            .iter()
            .filter(|(_, p)| p.snapshot.is_none() && now.saturating_since(p.last_heard) < window)
            .max_by_key(|(id, p)| {
                let heard_lately = now.saturating_since(p.last_heard) < fresh;
                (heard_lately, p.matched, std::cmp::Reverse(**id))
            })
            .map(|(id, _)| *id);
        if let Some(successor) = successor {
            self.begin_transfer(successor);
        }
    }

    /// Stops proposing and asks `to` to stand as soon as it holds the whole log.
    fn begin_transfer(&mut self, to: NodeId) {
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        leader.transfer = Some(Transfer { to, asked: false });
        let until = self.now + self.cfg.election_timeout;
        self.timers.arm(Deadline::TransferEnd, until);
        self.ask_successor_if_caught_up(to);
    }

    /// A heartbeat during a transfer: TimeoutNow may have been lost, so ask again. A successor
    /// that already stands ignores it (it is no longer a follower of this leader).
    pub(super) fn repeat_transfer_request(&mut self) {
        let Some(transfer) = self.role.leader().and_then(|l| l.transfer) else {
            return;
        };
        if transfer.asked {
            self.send(transfer.to, PeerBody::TimeoutNow);
        }
    }

    /// Whether a hand-over or transfer is under way (see [`crate::Input::HandOver`]).
    pub fn is_handing_over(&self) -> bool {
        self.role.leader().is_some_and(|l| l.transfer.is_some())
    }

    /// Sends TimeoutNow to `peer` if it is the successor of a transfer and holds the whole log:
    /// a successor that lacked entries could not win the election it starts.
    pub(super) fn ask_successor_if_caught_up(&mut self, peer: NodeId) {
        let last = self.log.last().index;
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        let Some(transfer) = &mut leader.transfer else {
            return;
        };
        let caught_up = leader
            .progress
            .get(&peer)
            .is_some_and(|p| p.matched == last);
        if transfer.to != peer || transfer.asked || !caught_up {
            return;
        }
        transfer.asked = true;
        self.send(peer, PeerBody::TimeoutNow);
    }
}
