//! The cluster's configuration: who votes, who only learns, and where each can be reached.
//!
//! A configuration changes one server at a time ([`Membership::with_learner`],
//! [`Membership::promoted`], [`Membership::without`]), so that any two configurations one change
//! apart have overlapping majorities. It travels in the log as
//! [`crate::Command::Membership`] and takes effect on a node as soon as it is appended.

use crate::types::{LogIndex, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One member: its id and an address that the core never interprets (a transport dials it).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Member {
    /// The node.
    pub id: NodeId,
    /// Where to reach it, in whatever form the transport understands; empty when unknown (the
    /// members a cluster was started with, whose addresses come from start-up flags).
    pub addr: String,
}

/// A configuration: the voters, and the learners that receive the log and snapshots but never
/// vote or count towards a commit. Each list is kept in id order and no id is in both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    voters: Vec<Member>,
    learners: Vec<Member>,
}

impl Membership {
    /// The configuration a cluster starts with: these voters, addresses unknown.
    pub fn bootstrap(ids: impl IntoIterator<Item = NodeId>) -> Membership {
        let mut voters: Vec<Member> = ids
            .into_iter()
            .map(|id| Member {
                id,
                addr: String::new(),
            })
            .collect();
        voters.sort();
        voters.dedup_by_key(|m| m.id);
        Membership {
            voters,
            learners: Vec::new(),
        }
    }

    /// This configuration with the address of each member listed in `addresses` whose own
    /// address is empty filled in (the start-up configuration, from start-up flags).
    pub fn addressed(mut self, addresses: &BTreeMap<NodeId, String>) -> Membership {
        for member in self.voters.iter_mut().chain(self.learners.iter_mut()) {
            if member.addr.is_empty() {
                if let Some(addr) = addresses.get(&member.id) {
                    member.addr.clone_from(addr);
                }
            }
        }
        self
    }

    /// The voters, in id order.
    pub fn voters(&self) -> &[Member] {
        &self.voters
    }

    /// The learners, in id order.
    pub fn learners(&self) -> &[Member] {
        &self.learners
    }

    /// Every member, voters first.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.voters.iter().chain(&self.learners)
    }

    /// The member `id`, voter or learner.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members().find(|m| m.id == id)
    }

    /// Whether `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.iter().any(|m| m.id == id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.iter().any(|m| m.id == id)
    }

    /// Whether `id` is a member at all.
    pub fn contains(&self, id: NodeId) -> bool {
        self.member(id).is_some()
    }

    /// Whether `id` is the only voter (it then decides alone).
    pub fn is_sole_voter(&self, id: NodeId) -> bool {
        matches!(self.voters.as_slice(), [only] if only.id == id)
    }

    /// How many voters make a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// How many voters have a lower id than `id` (0 for the lowest): the election stagger.
    pub fn rank(&self, id: NodeId) -> usize {
        self.voters.iter().filter(|m| m.id < id).count()
    }

    /// This configuration with `id` added as a learner at `addr`.
    pub fn with_learner(
        &self,
        id: NodeId,
        addr: String,
    ) -> Result<Membership, MembershipRejection> {
        if self.contains(id) {
            return Err(MembershipRejection::AlreadyMember { id });
        }
        let mut next = self.clone();
        next.learners.push(Member { id, addr });
        next.learners.sort();
        Ok(next)
    }

    /// This configuration with learner `id` made a voter.
    pub fn promoted(&self, id: NodeId) -> Result<Membership, MembershipRejection> {
        if self.is_voter(id) {
            return Err(MembershipRejection::AlreadyVoter { id });
        }
        let Some(at) = self.learners.iter().position(|m| m.id == id) else {
            return Err(MembershipRejection::UnknownMember { id });
        };
        let mut next = self.clone();
        let member = next.learners.remove(at);
        next.voters.push(member);
        next.voters.sort();
        Ok(next)
    }

    /// This configuration without member `id`. The last voter cannot be removed: nobody would
    /// be left to decide anything.
    pub fn without(&self, id: NodeId) -> Result<Membership, MembershipRejection> {
        if !self.contains(id) {
            return Err(MembershipRejection::UnknownMember { id });
        }
        if self.is_sole_voter(id) {
            return Err(MembershipRejection::LastVoter { id });
        }
        let mut next = self.clone();
        next.voters.retain(|m| m.id != id);
        next.learners.retain(|m| m.id != id);
        Ok(next)
    }
}

/// Why a membership change was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum MembershipRejection {
    /// An earlier change (its entry at `index`) is not committed yet: one change at a time.
    #[error("the change at index {index} is not committed yet")]
    ChangeInProgress {
        /// The entry of the uncommitted configuration.
        index: LogIndex,
    },
    /// The leader has not yet committed an entry of its own term; until it has, an
    /// uncommitted change of an earlier leader may still be pending somewhere.
    #[error("the leader has not committed an entry of its term yet")]
    LeaderNotReady,
    /// `id` is the last voter.
    #[error("node {id} is the last voter")]
    LastVoter {
        /// The node.
        id: NodeId,
    },
    /// `id` is not a member.
    #[error("node {id} is not a member")]
    UnknownMember {
        /// The node.
        id: NodeId,
    },
    /// `id` is already a member (voter or learner).
    #[error("node {id} is already a member")]
    AlreadyMember {
        /// The node.
        id: NodeId,
    },
    /// `id` already votes.
    #[error("node {id} is already a voter")]
    AlreadyVoter {
        /// The node.
        id: NodeId,
    },
    /// Learner `id` is not caught up enough to be promoted: its log matches the leader's up to
    /// `matched` and the leader's ends at `last`; it must hold the entry that made it a
    /// learner, have answered within an election time-out, and miss at most `max_lag` entries.
    #[error(
        "learner {id} has not caught up: its log matches to {matched} of {last} (it must hold \
         the entry that added it, have answered within an election time-out, and lag at most \
         {max_lag} entries)"
    )]
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// How far its log is known to match.
        matched: LogIndex,
        /// The leader's last index.
        last: LogIndex,
        /// The bound ([`crate::Config::promote_max_lag`]).
        max_lag: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(members: &[Member]) -> Vec<u64> {
        members.iter().map(|m| m.id.0).collect()
    }

    #[test]
    fn bootstrap_sorts_and_dedups_voters() {
        let m = Membership::bootstrap([NodeId(3), NodeId(1), NodeId(3), NodeId(2)]);
        assert_eq!(ids(m.voters()), [1, 2, 3]);
        assert!(m.learners().is_empty());
        assert_eq!((m.quorum(), m.rank(NodeId(3))), (2, 2));
    }

    #[test]
    fn addresses_fill_only_empty_ones() {
        let m = Membership::bootstrap([NodeId(1), NodeId(2)])
            .with_learner(NodeId(3), "given:3".into())
            .unwrap();
        let flags = BTreeMap::from([
            (NodeId(1), "flag:1".to_string()),
            (NodeId(3), "flag:3".to_string()),
            (NodeId(9), "flag:9".to_string()),
        ]);
        let m = m.addressed(&flags);
        let addr = |id| m.member(NodeId(id)).map(|m| m.addr.as_str());
        assert_eq!(
            (addr(1), addr(2), addr(3)),
            (Some("flag:1"), Some(""), Some("given:3"))
        );
        assert!(!m.contains(NodeId(9)));
    }

    #[test]
    fn quorum_and_rank_count_voters_only() {
        let m = Membership::bootstrap([NodeId(2), NodeId(4)])
            .with_learner(NodeId(1), "a".into())
            .unwrap();
        assert_eq!(m.quorum(), 2, "a learner raised the quorum");
        assert_eq!(m.rank(NodeId(4)), 1, "a learner counted in the rank");
        assert!(m.is_learner(NodeId(1)) && !m.is_voter(NodeId(1)));
    }

    #[test]
    fn a_learner_is_added_once_and_promoted_once() {
        let m = Membership::bootstrap([NodeId(1)]);
        let m = m.with_learner(NodeId(5), "h:5".into()).unwrap();
        assert_eq!(
            m.with_learner(NodeId(5), "x".into()),
            Err(MembershipRejection::AlreadyMember { id: NodeId(5) })
        );
        assert_eq!(
            m.with_learner(NodeId(1), "x".into()),
            Err(MembershipRejection::AlreadyMember { id: NodeId(1) })
        );
        let p = m.promoted(NodeId(5)).unwrap();
        assert_eq!((ids(p.voters()), ids(p.learners())), (vec![1, 5], vec![]));
        assert_eq!(p.member(NodeId(5)).map(|m| m.addr.as_str()), Some("h:5"));
        assert_eq!(
            p.promoted(NodeId(5)),
            Err(MembershipRejection::AlreadyVoter { id: NodeId(5) })
        );
        assert_eq!(
            p.promoted(NodeId(7)),
            Err(MembershipRejection::UnknownMember { id: NodeId(7) })
        );
    }

    #[test]
    fn removal_refuses_strangers_and_the_last_voter() {
        let m = Membership::bootstrap([NodeId(1), NodeId(2)])
            .with_learner(NodeId(3), String::new())
            .unwrap();
        assert_eq!(
            m.without(NodeId(9)),
            Err(MembershipRejection::UnknownMember { id: NodeId(9) })
        );
        let m = m.without(NodeId(3)).unwrap();
        assert!(!m.contains(NodeId(3)));
        let m = m.without(NodeId(1)).unwrap();
        assert_eq!(ids(m.voters()), [2]);
        assert!(m.is_sole_voter(NodeId(2)));
        assert_eq!(
            m.without(NodeId(2)),
            Err(MembershipRejection::LastVoter { id: NodeId(2) })
        );
    }
}
