//! Answering vote and pre-vote requests, and counting the answers. [`Ballot`] borrows what a
//! voter decides with (the configuration, the time, its term, log and role) and the only state a
//! vote changes (whom it voted for), plus the output; adopting a newer term is a role change and
//! is left to the node.

use super::output::Output;
use super::role::RoleState;
use super::{HardState, Persist};
use crate::config::Config;
use crate::membership::Membership;
use crate::message::PeerBody;
use crate::types::{LogPosition, NodeId, Term, Time};

/// A voter, borrowed from its node.
pub(super) struct Ballot<'a> {
    pub cfg: &'a Config,
    pub now: Time,
    pub term: Term,
    /// The last entry of the voter's log: a candidate must be at least as up to date.
    pub last: LogPosition,
    pub role: &'a RoleState,
    pub voted_for: &'a mut Option<NodeId>,
    pub out: &'a mut Output,
}

impl Ballot<'_> {
    /// Whether this node leads, or heard from its leader within an election time-out.
    fn leader_alive(&self) -> bool {
        match self.role {
            RoleState::Leader(_) => true,
            role => role
                .followed()
                .is_some_and(|heard| self.now < heard.at + self.cfg.election_timeout),
        }
    }

    /// Refuses, in this node's term, a request from an older term, or one that would disturb a
    /// live leader: a member that was cut off and comes back cannot depose a healthy leader. A
    /// transfer is the leader's own wish, so it is not refused for that. Returns whether it
    /// refused.
    pub fn refuse_stale_or_disruptive(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        transfer: bool,
    ) -> bool {
        if term >= self.term && (transfer || !self.leader_alive()) {
            return false;
        }
        self.answer(from, self.term, pre, false);
        true
    }

    /// Answers a pre-vote for `term`, the term the candidate would stand in; nobody changes term
    /// for a pre-vote. A grant is answered in that term, so the candidate can count it.
    pub fn answer_pre_vote(&mut self, from: NodeId, term: Term, last: LogPosition) {
        let granted = term > self.term && last >= self.last;
        let reply_term = if granted { term } else { self.term };
        self.answer(from, reply_term, true, granted);
    }

    /// Answers a vote in this node's (current) term: granted once per term, to a candidate at
    /// least as up to date. A new vote is persisted before the answer leaves. Returns whether
    /// it was granted (the voter then puts off its own election).
    pub fn answer_vote(&mut self, from: NodeId, last: LogPosition) -> bool {
        let granted = self.voted_for.is_none_or(|v| v == from) && last >= self.last;
        if granted && self.voted_for.is_none() {
            *self.voted_for = Some(from);
            self.out.persist(Persist::HardState(HardState {
                term: self.term,
                voted_for: Some(from),
            }));
        }
        self.answer(from, self.term, false, granted);
        granted
    }

    fn answer(&mut self, to: NodeId, term: Term, pre: bool, granted: bool) {
        let body = PeerBody::VoteResponse { pre, granted };
        self.out.send(self.cfg.id, to, term, body);
    }
}

/// Counts a granted vote from `from` for the round of a (pre-)candidate in `term`. A pre-vote is
/// answered in the term the pre-candidate would stand in, so its round is `term.next()`.
/// Returns whether the votes of `config`'s voters now make its quorum: only voters count, the
/// candidate's own vote included only if it is one (a node whose uncommitted configuration
/// removed it stands without counting itself). Answers to another round or role are ignored.
pub(super) fn count_vote(
    role: &mut RoleState,
    term: Term,
    config: &Membership,
    from: NodeId,
    answer_term: Term,
    pre: bool,
) -> bool {
    let round = if pre { term.next() } else { term };
    let Some(votes) = role.votes_mut(pre).filter(|_| answer_term == round) else {
        return false;
    };
    votes.insert(from);
    votes.iter().filter(|id| config.is_voter(**id)).count() >= config.quorum()
}

#[cfg(test)]
#[path = "votes_tests.rs"]
mod tests;
