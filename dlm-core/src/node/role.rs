//! What a node is doing, and what only that role has. One enum, so leadership is recorded once:
//! a node leads exactly when it holds a [`Leader`], votes exist only while it stands, and the
//! leader a follower knows comes with when it last heard from it.

use super::leader_timers::LeaderTimers;
use super::progress::Progress;
use super::read_index::Reads;
use super::transfer::Transfer;
use super::watches::Watches;
use crate::protocol::Role;
use crate::types::{ClientId, ConnId, LogIndex, NodeId, Seq, Time};
use std::collections::{BTreeMap, BTreeSet};

/// State only a leader has.
#[derive(Debug)]
pub(super) struct Leader {
    pub progress: BTreeMap<NodeId, Progress>,
    pub timers: LeaderTimers,
    /// Which connection waits for the answer to which request. Ordered, because a leader that
    /// steps down answers them all in iteration order, and effects must be deterministic.
    pub waiting: BTreeMap<(ClientId, Seq), ConnId>,
    /// Leadership is being handed over; until it succeeds or times out nothing new is proposed.
    pub transfer: Option<Transfer>,
    /// When this node became leader (check-quorum waits one election time-out from here).
    pub since: Time,
    /// Entries after this index are not yet persisted or sent.
    pub flushed: LogIndex,
    /// The index of this term's first entry (its Noop).
    pub term_start: LogIndex,
    /// Reads answered without the log.
    pub reads: Reads,
    /// No transfer to the preferred leader starts before this (one just ran out).
    pub no_transfer_before: Time,
    /// Elected by its own vote alone (the only voter), whose term and vote may not be durable
    /// yet: it sends its learners nothing until its first entry is, or a crash could make it
    /// leader of the same term again with another log, and a learner would keep entries of
    /// that term that were never the leader's.
    pub quiet: bool,
    /// Watches and tails waiting for something to report.
    pub watches: Watches,
}

impl Leader {
    /// A leader elected at `now` whose log ends at `last`: nothing flushed beyond it, nothing
    /// waiting, its term's first entry (the Noop it proposes next) right after it.
    pub fn new(
        progress: BTreeMap<NodeId, Progress>,
        timers: LeaderTimers,
        now: Time,
        last: LogIndex,
    ) -> Leader {
        Leader {
            progress,
            timers,
            waiting: BTreeMap::new(),
            transfer: None,
            since: now,
            flushed: last,
            term_start: last.next(),
            reads: Reads::default(),
            no_transfer_before: Time::ZERO,
            quiet: false,
            watches: Watches::default(),
        }
    }
}

/// The leader a follower knows, and when it last heard from it (a vote request inside an
/// election time-out of that is ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Heard {
    pub id: NodeId,
    pub at: Time,
}

/// A node's role and the state that goes with it.
#[derive(Debug)]
pub(super) enum RoleState {
    /// Follows `leader`, if it knows one.
    Follower { leader: Option<Heard> },
    /// Asks whether an election could succeed; `votes` granted so far (its own included).
    PreCandidate { votes: BTreeSet<NodeId> },
    /// Stands for election in the current term; `votes` granted so far (its own included).
    Candidate { votes: BTreeSet<NodeId> },
    /// Leads the current term.
    Leader(Box<Leader>),
}

impl RoleState {
    /// A follower of `leader` (heard from at `now`), or of nobody yet.
    pub fn follower(leader: Option<NodeId>, now: Time) -> RoleState {
        RoleState::Follower {
            leader: leader.map(|id| Heard { id, at: now }),
        }
    }

    /// A pre-candidate or candidate (`pre`) with only its own vote.
    pub fn standing(me: NodeId, pre: bool) -> RoleState {
        let votes = BTreeSet::from([me]);
        if pre {
            RoleState::PreCandidate { votes }
        } else {
            RoleState::Candidate { votes }
        }
    }

    /// The role as the protocol reports it.
    pub fn kind(&self) -> Role {
        match self {
            RoleState::Follower { .. } => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// The leader's state, when leading.
    pub fn leader(&self) -> Option<&Leader> {
        match self {
            RoleState::Leader(leader) => Some(leader),
            _ => None,
        }
    }

    /// The leader's state, when leading.
    pub fn leader_mut(&mut self) -> Option<&mut Leader> {
        match self {
            RoleState::Leader(leader) => Some(leader),
            _ => None,
        }
    }

    /// The leader this follower knows and when it last heard from it.
    pub fn followed(&self) -> Option<Heard> {
        match self {
            RoleState::Follower { leader } => *leader,
            _ => None,
        }
    }

    /// The votes of a pre-candidate (`pre`) or a candidate, when it is one.
    pub fn votes_mut(&mut self, pre: bool) -> Option<&mut BTreeSet<NodeId>> {
        match (pre, self) {
            (true, RoleState::PreCandidate { votes }) | (false, RoleState::Candidate { votes }) => {
                Some(votes)
            }
            _ => None,
        }
    }
}
