//! Membership changes at the leader, one server at a time: deciding whether a change may be
//! proposed now ([`Reconfiguration`]), following the new configuration with replication at
//! once (it takes effect when appended), and, once it commits, letting go of removed members
//! and of leadership itself if this leader was removed.

use super::members::Members;
use super::output::Output;
use super::progress::Progress;
use super::role::{Leader, RoleState};
use super::Node;
use crate::command::Command;
use crate::config::Config;
use crate::membership::{Membership, MembershipRejection};
use crate::protocol::{ClientRequest, Op, Rejection};
use crate::state_machine::check_request;
use crate::types::{ConnId, LogIndex, Time};

/// A leader deciding on a membership change, borrowed from its node.
pub(super) struct Reconfiguration<'a> {
    pub cfg: &'a Config,
    /// The configuration in force and where its entry is.
    pub members: &'a Members,
    pub commit: LogIndex,
    /// The leader's last index: a learner is promoted only within a bound of it.
    pub last: LogIndex,
    /// The node's time: a learner is promoted only if heard from lately.
    pub now: Time,
    pub leader: &'a mut Leader,
    pub out: &'a mut Output,
}

impl Reconfiguration<'_> {
    /// Decides on the change `request` asks for (from connection `conn`): refuses it with a
    /// typed reason, waits for an earlier copy already proposed, or returns the configuration
    /// to propose, with the connection recorded to answer when it applies.
    pub fn decide(&mut self, conn: ConnId, request: &ClientRequest) -> Option<Membership> {
        let (client, seq) = (request.client, request.seq);
        if let Some(transfer) = self.leader.transfer {
            let hint = Some(transfer.to);
            self.out
                .reply(conn, client, seq, Err(Rejection::NotLeader { hint }));
            return None;
        }
        if let Some(waiting) = self.leader.waiting.get_mut(&(client, seq)) {
            // A retry of a change already proposed: answer the newest connection.
            *waiting = conn;
            return None;
        }
        let next = check_request(&request.op, &self.cfg.limits)
            .and_then(|()| self.next(&request.op).map_err(Rejection::Membership));
        match next {
            Ok(Change::Propose(next)) => {
                self.leader.waiting.insert((client, seq), conn);
                Some(next)
            }
            Ok(Change::Done) => {
                // Answered like a read, once a round confirms this node still leads: a
                // deposed leader must not say a change is in force that a newer one undid.
                let op = request.op.clone();
                self.leader.reads.add(conn, client, seq, op, self.commit);
                None
            }
            Err(refusal) => {
                self.out.reply(conn, client, seq, Err(refusal));
                None
            }
        }
    }

    /// The configuration `op` makes of the one in force, if it may be proposed now.
    fn next(&self, op: &Op) -> Result<Change, MembershipRejection> {
        // Until an entry of this term commits, a change of an earlier leader may still be
        // pending elsewhere; two changes from one configuration could lose their overlap.
        if self.commit < self.leader.term_start {
            return Err(MembershipRejection::LeaderNotReady);
        }
        if !self.members.committed(self.commit) {
            let index = self.members.index();
            return Err(MembershipRejection::ChangeInProgress { index });
        }
        let config = &self.members.current;
        let next = match op {
            // Asked again once done (a join that timed out and retries, say): it is done, and
            // the configuration in force has committed (checked above), so say so.
            Op::AddLearner { id, addr } if config.member(*id).is_some_and(|m| m.addr == *addr) => {
                return Ok(Change::Done);
            }
            Op::AddLearner { id, addr } => config.with_learner(*id, addr.clone()),
            Op::Promote { id } => {
                if config.is_learner(*id) {
                    let progress = self.leader.progress.get(id);
                    let matched = progress.map_or(LogIndex(0), |p| p.matched);
                    let max_lag = self.cfg.promote_max_lag;
                    // A new voter that never answers takes a majority's worth of tolerance away
                    // (with two voters, everything stops until it runs), so it must hold the
                    // entry that made it a learner, and have been heard within an election
                    // time-out: a short log alone would let a mistyped address through.
                    // (Its entry's index is 0 when the configuration came from a snapshot;
                    // a learner that has answered holds at least the leader's first entry.)
                    let holds_config = matched >= self.members.index() && matched > LogIndex(0);
                    let heard = progress.is_some_and(|p| {
                        self.now.saturating_since(p.last_heard) <= self.cfg.election_timeout
                    });
                    let behind = self.last.0.saturating_sub(matched.0) > max_lag;
                    if behind || !holds_config || !heard {
                        return Err(MembershipRejection::NotCaughtUp {
                            id: *id,
                            matched,
                            last: self.last,
                            max_lag,
                        });
                    }
                }
                config.promoted(*id)
            }
            Op::Remove { id } => config.without(*id),
            // Only changes are routed here.
            _ => Ok(config.clone()),
        };
        next.map(Change::Propose)
    }
}

/// What a leader makes of a change it may decide on.
enum Change {
    /// Propose this configuration.
    Propose(Membership),
    /// Nothing to do: the configuration in force (committed) already is what was asked.
    Done,
}

impl Node {
    /// An operator asks for a membership change; this node leads.
    pub(super) fn on_membership_change(&mut self, conn: ConnId, request: ClientRequest) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let mut reconfiguration = Reconfiguration {
            cfg: &self.cfg,
            members: &self.members,
            commit: self.commit,
            last: self.log.last().index,
            now: self.now,
            leader,
            out: &mut self.out,
        };
        let Some(config) = reconfiguration.decide(conn, &request) else {
            return;
        };
        self.propose(Command::Membership {
            config,
            client: request.client,
            seq: request.seq,
        });
        self.follow_new_members();
    }

    /// The configuration changed at this leader: every new member gets a progress, so that
    /// the flush sends it the log. A removed member keeps its own until the change commits, so
    /// that it usually learns of its removal.
    fn follow_new_members(&mut self) {
        let (me, now, last) = (self.cfg.id, self.now, self.log.last().index);
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        for member in self.members.current.members() {
            if member.id != me && !leader.progress.contains_key(&member.id) {
                leader.progress.insert(member.id, Progress::new(last, now));
            }
        }
    }

    /// Once the configuration in force has committed, a leader stops replicating to members it
    /// removed. Called after a heartbeat went out, so that a removed member has been sent the
    /// commit index that tells it its removal is final (and it stops standing for election).
    pub(super) fn forget_removed_members(&mut self) {
        if !self.members.committed(self.commit) {
            return;
        }
        let config = &self.members.current;
        if let Some(leader) = self.role.leader_mut() {
            leader.progress.retain(|id, _| config.contains(*id));
        }
    }

    /// Once the configuration in force has committed, a leader that removed itself lets go: it
    /// hands over to the most caught-up voter if one answers, and steps down otherwise, or once
    /// that hand-over runs out.
    pub(super) fn settle_membership(&mut self) {
        if !self.members.committed(self.commit) {
            return;
        }
        let config = &self.members.current;
        let Some(leader) = self.role.leader() else {
            return;
        };
        if config.is_voter(self.cfg.id) || leader.transfer.is_some() {
            return;
        }
        if self.now >= leader.no_transfer_before {
            self.hand_over();
            if self.is_handing_over() {
                return;
            }
        }
        let term = self.term;
        self.become_follower(term, None);
    }
}

#[cfg(test)]
#[path = "reconfigure_tests.rs"]
mod tests;
