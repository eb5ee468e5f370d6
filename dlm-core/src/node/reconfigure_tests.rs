//! Exact-effect tests of a leader's decision on a membership change: one call, the whole list
//! of effects, and the configuration left to propose.

use super::*;
use crate::log::Log;
use crate::node::leader_timers::LeaderTimers;
use crate::node::transfer::Transfer;
use crate::node::Effect;
use crate::protocol::ClientResponse;
use crate::state_machine::StateMachine;
use crate::types::{ClientId, LogPosition, NodeId, Seq, Term, Time};
use std::collections::BTreeMap;

const CONN: ConnId = ConnId(4);
const ADMIN: ClientId = ClientId(99);

fn three() -> Membership {
    Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)])
}

fn change(seq: u64, op: Op) -> ClientRequest {
    ClientRequest {
        client: ADMIN,
        seq: Seq(seq),
        acked_below: Seq(1),
        pending: Vec::new(),
        op,
    }
}

/// A leader of term 2 (its Noop at index 5) whose followers 2 and 3, and learner 4 if the
/// configuration has it, match up to `matched`.
fn leader(matched: u64) -> Leader {
    let progress: BTreeMap<NodeId, Progress> = [2, 3, 4]
        .into_iter()
        .map(|id| {
            let mut p = Progress::new(LogIndex(9), Time::ZERO);
            p.accept(LogIndex(matched));
            (NodeId(id), p)
        })
        .collect();
    Leader::new(progress, LeaderTimers::default(), Time::ZERO, LogIndex(4))
}

/// The configuration in force: `config` from an entry at `at` (term 2), or the start-up one.
fn members(config: Membership, at: Option<u64>) -> Members {
    let log = match at {
        Some(index) => {
            let entries = (1..=index).map(|i| crate::command::Entry {
                term: Term(2),
                index: LogIndex(i),
                command: if i == index {
                    Command::Membership {
                        config: config.clone(),
                        client: ADMIN,
                        seq: Seq(1),
                    }
                } else {
                    Command::Noop
                },
            });
            Log::new(LogPosition::default(), entries)
        }
        None => Log::default(),
    };
    Members::recover(config, &log, &StateMachine::new())
}

/// Runs `decide` for `request` at a leader with commit `commit` and last index 9; returns what
/// it would propose and the effects.
fn decide(
    members: &Members,
    leader: &mut Leader,
    commit: u64,
    request: ClientRequest,
) -> (Option<Membership>, Vec<Effect>) {
    decide_at(Time::from_millis(100), members, leader, commit, request)
}

/// As [`decide`], at time `now` (the followers were last heard at 0).
fn decide_at(
    now: Time,
    members: &Members,
    leader: &mut Leader,
    commit: u64,
    request: ClientRequest,
) -> (Option<Membership>, Vec<Effect>) {
    let mut cfg = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    cfg.promote_max_lag = 3;
    let mut out = Output::default();
    let mut reconfiguration = Reconfiguration {
        cfg: &cfg,
        members,
        commit: LogIndex(commit),
        last: LogIndex(9),
        now,
        leader,
        out: &mut out,
    };
    let proposed = reconfiguration.decide(CONN, &request);
    (proposed, std::iter::from_fn(|| out.pop()).collect())
}

fn refused(seq: u64, result: Result<crate::protocol::Reply, Rejection>) -> Vec<Effect> {
    vec![Effect::Reply {
        conn: CONN,
        response: ClientResponse {
            client: ADMIN,
            seq: Seq(seq),
            result,
        },
    }]
}

fn membership(seq: u64, why: MembershipRejection) -> Vec<Effect> {
    refused(seq, Err(Rejection::Membership(why)))
}

fn add_four() -> Op {
    Op::AddLearner {
        id: NodeId(4),
        addr: "h:4".into(),
    }
}

#[test]
fn a_valid_change_is_proposed_and_its_connection_waits() {
    let mut l = leader(9);
    let (proposed, effects) = decide(&members(three(), None), &mut l, 5, change(1, add_four()));
    assert_eq!(proposed, three().with_learner(NodeId(4), "h:4".into()).ok());
    assert!(effects.is_empty());
    assert_eq!(l.waiting.get(&(ADMIN, Seq(1))), Some(&CONN));
}

/// The own-term rule: the Noop of this term (index 5) has not committed.
#[test]
fn nothing_changes_before_an_entry_of_this_term_commits() {
    let mut l = leader(9);
    let (proposed, effects) = decide(&members(three(), None), &mut l, 4, change(1, add_four()));
    assert_eq!(proposed, None);
    assert_eq!(effects, membership(1, MembershipRejection::LeaderNotReady));
    assert!(l.waiting.is_empty());
}

/// At most one change uncommitted: the configuration's own entry (index 7) is above the
/// commit index.
#[test]
fn a_change_waits_for_the_previous_one_to_commit() {
    let mut l = leader(9);
    let config = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let m = members(config, Some(7));
    let (proposed, effects) = decide(&m, &mut l, 6, change(2, Op::Remove { id: NodeId(4) }));
    assert_eq!(proposed, None);
    let index = LogIndex(7);
    assert_eq!(
        effects,
        membership(2, MembershipRejection::ChangeInProgress { index })
    );
    let (proposed, effects) = decide(&m, &mut l, 7, change(3, Op::Remove { id: NodeId(4) }));
    assert_eq!(proposed, Some(three()));
    assert!(effects.is_empty());
}

/// A learner is promoted only within `promote_max_lag` (3) of the last index (9).
#[test]
fn a_learner_too_far_behind_is_not_promoted() {
    let config = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let m = members(config.clone(), None);
    let mut l = leader(5);
    let (proposed, effects) = decide(&m, &mut l, 5, change(1, Op::Promote { id: NodeId(4) }));
    assert_eq!(proposed, None);
    let behind = MembershipRejection::NotCaughtUp {
        id: NodeId(4),
        matched: LogIndex(5),
        last: LogIndex(9),
        max_lag: 3,
    };
    assert_eq!(effects, membership(1, behind));
    let mut l = leader(6);
    let (proposed, _) = decide(&m, &mut l, 5, change(2, Op::Promote { id: NodeId(4) }));
    assert_eq!(proposed, config.promoted(NodeId(4)).ok());
}

/// A learner within the lag bound is still not promoted while it lacks the entry that made it a
/// learner (at 8 here: it never answered since), nor once silent for over an election
/// time-out (300 ms): either way the new voter might never answer.
#[test]
fn a_learner_that_lacks_its_configuration_or_went_silent_is_not_promoted() {
    let config = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let promote = |seq| change(seq, Op::Promote { id: NodeId(4) });
    let m = members(config.clone(), Some(8));
    let (proposed, effects) = decide(&m, &mut leader(7), 8, promote(1));
    assert_eq!(proposed, None);
    let lacking = MembershipRejection::NotCaughtUp {
        id: NodeId(4),
        matched: LogIndex(7),
        last: LogIndex(9),
        max_lag: 3,
    };
    assert_eq!(effects, membership(1, lacking));
    let (proposed, _) = decide(&m, &mut leader(8), 8, promote(2));
    assert_eq!(proposed, config.promoted(NodeId(4)).ok());

    let silent = Time::from_millis(301);
    let (proposed, effects) = decide_at(silent, &m, &mut leader(8), 8, promote(3));
    assert_eq!(proposed, None);
    assert!(
        matches!(effects.as_slice(), [Effect::Reply { response, .. }]
            if matches!(response.result, Err(Rejection::Membership(MembershipRejection::NotCaughtUp { .. })))),
        "{effects:?}"
    );
    let (proposed, _) = decide_at(Time::from_millis(300), &m, &mut leader(8), 8, promote(4));
    assert_eq!(proposed, config.promoted(NodeId(4)).ok());
}

/// A learner whose configuration came from a snapshot (its entry's index unknown: 0) is not
/// promoted while its log matches nothing, however generous the lag bound.
#[test]
fn a_learner_that_matches_nothing_is_not_promoted_after_a_snapshot() {
    let config = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let m = members(config, None);
    let mut cfg = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    cfg.promote_max_lag = 1_000;
    let mut l = leader(0);
    let mut out = Output::default();
    let mut reconfiguration = Reconfiguration {
        cfg: &cfg,
        members: &m,
        commit: LogIndex(5),
        last: LogIndex(9),
        now: Time::from_millis(100),
        leader: &mut l,
        out: &mut out,
    };
    let proposed = reconfiguration.decide(CONN, &change(1, Op::Promote { id: NodeId(4) }));
    assert_eq!(proposed, None);
    let effects: Vec<Effect> = std::iter::from_fn(|| out.pop()).collect();
    let unmatched = MembershipRejection::NotCaughtUp {
        id: NodeId(4),
        matched: LogIndex(0),
        last: LogIndex(9),
        max_lag: 1_000,
    };
    assert_eq!(effects, membership(1, unmatched));
}

/// A retry of a change already proposed proposes nothing again; its newest connection waits.
#[test]
fn a_retry_of_a_proposed_change_only_moves_the_connection() {
    let mut l = leader(9);
    l.waiting.insert((ADMIN, Seq(1)), ConnId(1));
    let (proposed, effects) = decide(&members(three(), None), &mut l, 5, change(1, add_four()));
    assert_eq!((proposed, effects), (None, vec![]));
    assert_eq!(l.waiting.get(&(ADMIN, Seq(1))), Some(&CONN));
}

/// During a hand-over nothing is proposed: the operator is sent to the successor.
#[test]
fn a_change_during_a_hand_over_goes_to_the_successor() {
    let mut l = leader(9);
    l.transfer = Some(Transfer {
        to: NodeId(2),
        asked: false,
    });
    let (proposed, effects) = decide(&members(three(), None), &mut l, 5, change(1, add_four()));
    assert_eq!(proposed, None);
    let hint = Some(NodeId(2));
    assert_eq!(effects, refused(1, Err(Rejection::NotLeader { hint })));
}

/// An address is bounded like a name, so a log entry stays small.
#[test]
fn an_empty_or_oversized_address_is_refused() {
    let mut l = leader(9);
    let op = Op::AddLearner {
        id: NodeId(4),
        addr: String::new(),
    };
    let (proposed, effects) = decide(&members(three(), None), &mut l, 5, change(1, op));
    assert_eq!(proposed, None);
    assert_eq!(effects, refused(1, Err(Rejection::BadName { max: 256 })));
}

/// An add asked again once done (same id, same address) is not refused, so a join that timed
/// out may retry: it waits for a read round (answered in `read_index`), proposing nothing;
/// another address is refused.
#[test]
fn a_repeated_add_waits_for_a_round_once_done() {
    let with_four = three().with_learner(NodeId(4), "h:4".into()).unwrap();
    let mut l = leader(9);
    let done = members(with_four.clone(), Some(5));
    let (proposed, effects) = decide(&done, &mut l, 5, change(2, add_four()));
    assert_eq!((proposed, effects), (None, vec![]));
    assert!(l.waiting.is_empty());
    let pending: Vec<_> = l.reads.drain().collect();
    assert_eq!(pending, vec![(CONN, ADMIN, Seq(2))]);
    let elsewhere = Op::AddLearner {
        id: NodeId(4),
        addr: "h:44".into(),
    };
    let (proposed, effects) = decide(&done, &mut l, 5, change(3, elsewhere));
    assert_eq!(proposed, None);
    assert_eq!(
        effects,
        membership(3, MembershipRejection::AlreadyMember { id: NodeId(4) })
    );
    // Not yet committed: the one-change rule answers first.
    let (_, effects) = decide(&done, &mut l, 4, change(4, add_four()));
    assert_eq!(effects, membership(4, MembershipRejection::LeaderNotReady));
}
