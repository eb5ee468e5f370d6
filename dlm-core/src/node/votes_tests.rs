//! Exact-effect tests of vote decisions: one call, the whole list of effects.

use super::*;
use crate::membership::Membership;
use crate::message::PeerMessage;
use crate::node::Effect;
use crate::types::LogIndex;
use std::collections::BTreeSet;

const ME: NodeId = NodeId(2);
const CANDIDATE: NodeId = NodeId(3);
const TERM: Term = Term(4);

fn ms(n: u64) -> Time {
    Time::from_millis(n)
}

fn pos(term: u64, index: u64) -> LogPosition {
    LogPosition::new(Term(term), LogIndex(index))
}

/// Our log ends at (term 3, index 10).
const OURS: (u64, u64) = (3, 10);

fn answer(term: Term, pre: bool, granted: bool) -> Effect {
    Effect::Send(PeerMessage {
        from: ME,
        to: CANDIDATE,
        term,
        body: PeerBody::VoteResponse { pre, granted },
    })
}

fn persisted_vote() -> Effect {
    Effect::Persist(Persist::HardState(HardState {
        term: TERM,
        voted_for: Some(CANDIDATE),
    }))
}

/// Runs `f` on the ballot of node 2 of 3 in term 4 at 1 s, with `role` and `voted_for`, and
/// returns the effects and what `f` returned.
fn ballot<T>(
    role: &RoleState,
    voted_for: &mut Option<NodeId>,
    f: impl FnOnce(&mut Ballot<'_>) -> T,
) -> (Vec<Effect>, T) {
    let cfg = Config::new(ME, [NodeId(1), ME, CANDIDATE]);
    let mut out = Output::default();
    let mut ballot = Ballot {
        cfg: &cfg,
        now: ms(1_000),
        term: TERM,
        last: pos(OURS.0, OURS.1),
        role,
        voted_for,
        out: &mut out,
    };
    let result = f(&mut ballot);
    (std::iter::from_fn(|| out.pop()).collect(), result)
}

fn follower_of_1_heard_at(at: u64) -> RoleState {
    RoleState::Follower {
        leader: Some(super::super::role::Heard {
            id: NodeId(1),
            at: ms(at),
        }),
    }
}

#[test]
fn an_older_term_is_refused_in_ours() {
    let role = RoleState::follower(None, Time::ZERO);
    let (effects, refused) = ballot(&role, &mut None, |b| {
        b.refuse_stale_or_disruptive(CANDIDATE, Term(3), false, true)
    });
    assert!(refused);
    assert_eq!(effects, [answer(TERM, false, false)]);
}

#[test]
fn a_live_leader_is_not_disturbed_unless_it_asked_for_the_transfer() {
    // Heard from leader 1 at 0.8 s; the election time-out is 300 ms, so it is alive at 1 s.
    let role = follower_of_1_heard_at(800);
    let (effects, refused) = ballot(&role, &mut None, |b| {
        b.refuse_stale_or_disruptive(CANDIDATE, Term(5), true, false)
    });
    assert!(refused);
    assert_eq!(effects, [answer(TERM, true, false)]);
    let (effects, refused) = ballot(&role, &mut None, |b| {
        b.refuse_stale_or_disruptive(CANDIDATE, Term(5), false, true)
    });
    assert!(!refused && effects.is_empty());
}

#[test]
fn a_leader_silent_for_an_election_timeout_no_longer_protects_the_term() {
    let role = follower_of_1_heard_at(700);
    let (effects, refused) = ballot(&role, &mut None, |b| {
        b.refuse_stale_or_disruptive(CANDIDATE, Term(5), true, false)
    });
    assert!(!refused && effects.is_empty());
}

#[test]
fn a_pre_vote_is_granted_in_the_candidates_term_without_changing_ours() {
    let role = RoleState::follower(None, Time::ZERO);
    let mut voted_for = None;
    let (effects, ()) = ballot(&role, &mut voted_for, |b| {
        b.answer_pre_vote(CANDIDATE, Term(5), pos(3, 10))
    });
    assert_eq!(effects, [answer(Term(5), true, true)]);
    assert_eq!(voted_for, None, "a pre-vote is no vote");
}

#[test]
fn a_pre_vote_for_a_shorter_log_or_no_newer_term_is_refused_in_ours() {
    let role = RoleState::follower(None, Time::ZERO);
    let (effects, ()) = ballot(&role, &mut None, |b| {
        b.answer_pre_vote(CANDIDATE, Term(5), pos(3, 9));
        b.answer_pre_vote(CANDIDATE, Term(5), pos(2, 12));
        b.answer_pre_vote(CANDIDATE, TERM, pos(3, 10));
    });
    assert_eq!(effects, vec![answer(TERM, true, false); 3]);
}

#[test]
fn a_vote_is_persisted_before_it_is_granted_and_given_once_a_term() {
    let role = RoleState::follower(None, Time::ZERO);
    let mut voted_for = None;
    let (effects, granted) = ballot(&role, &mut voted_for, |b| {
        b.answer_vote(CANDIDATE, pos(4, 1))
    });
    assert!(granted);
    assert_eq!(effects, [persisted_vote(), answer(TERM, false, true)]);
    // A retry by the same candidate is granted again without a second persist.
    let (effects, granted) = ballot(&role, &mut voted_for, |b| {
        b.answer_vote(CANDIDATE, pos(4, 1))
    });
    assert!(granted);
    assert_eq!(effects, [answer(TERM, false, true)]);
    // Another candidate in the same term is refused.
    voted_for = Some(NodeId(1));
    let (effects, granted) = ballot(&role, &mut voted_for, |b| {
        b.answer_vote(CANDIDATE, pos(4, 1))
    });
    assert!(!granted);
    assert_eq!(effects, [answer(TERM, false, false)]);
}

#[test]
fn a_vote_for_a_less_up_to_date_log_is_refused() {
    let role = RoleState::follower(None, Time::ZERO);
    let mut voted_for = None;
    let (effects, granted) = ballot(&role, &mut voted_for, |b| {
        b.answer_vote(CANDIDATE, pos(3, 9))
    });
    assert!(!granted);
    assert_eq!(effects, [answer(TERM, false, false)]);
    assert_eq!(voted_for, None);
}

#[test]
fn votes_count_only_for_the_round_and_role_they_answer() {
    let three = Membership::bootstrap([NodeId(1), ME, CANDIDATE]);
    let five = Membership::bootstrap([NodeId(1), ME, CANDIDATE, NodeId(8), NodeId(9)]);
    let mut pre = RoleState::standing(ME, true);
    // A pre-vote round is answered in the next term.
    assert!(!count_vote(&mut pre, TERM, &three, CANDIDATE, TERM, true));
    assert!(!count_vote(
        &mut pre,
        TERM,
        &three,
        CANDIDATE,
        Term(5),
        false
    ));
    assert!(count_vote(&mut pre, TERM, &three, CANDIDATE, Term(5), true));

    let mut candidate = RoleState::standing(ME, false);
    assert!(!count_vote(
        &mut candidate,
        TERM,
        &five,
        CANDIDATE,
        TERM,
        false
    ));
    // The same voter twice is one vote.
    assert!(!count_vote(
        &mut candidate,
        TERM,
        &five,
        CANDIDATE,
        TERM,
        false
    ));
    assert!(count_vote(
        &mut candidate,
        TERM,
        &five,
        NodeId(1),
        TERM,
        false
    ));
    let votes = candidate.votes_mut(false).map(|v| v.clone());
    assert_eq!(votes, Some(BTreeSet::from([NodeId(1), ME, CANDIDATE])));

    let mut follower = RoleState::follower(None, Time::ZERO);
    assert!(!count_vote(
        &mut follower,
        TERM,
        &three,
        CANDIDATE,
        TERM,
        false
    ));
}

/// A candidate that its own (uncommitted) configuration removed does not count itself: under
/// voters 1 and 3 it needs both their votes, where its own and one would do otherwise.
#[test]
fn a_candidate_outside_the_voters_does_not_count_itself() {
    let without_me = Membership::bootstrap([NodeId(1), CANDIDATE]);
    let mut candidate = RoleState::standing(ME, false);
    assert!(!count_vote(
        &mut candidate,
        TERM,
        &without_me,
        NodeId(1),
        TERM,
        false
    ));
    assert!(count_vote(
        &mut candidate,
        TERM,
        &without_me,
        CANDIDATE,
        TERM,
        false
    ));
}
