//! Exact-effect tests of the vote handlers (`dlm-core/src/node/election.rs`): pre-vote and vote
//! requests and their answers, the sticky-leader rule, stepping down on a newer term, and a
//! pre-candidate that wins and starts leading. Each test sets a state, feeds one input and
//! compares the whole list of effects.

mod common;

use common::{drain_unsynced, fresh_node_of_three, keep_alive, leader_of_three, peer, pos, send};
use dlm_core::message::{AppendOutcome, PeerBody, PeerMessage};
use dlm_core::*;
use std::time::Duration;

/// Node 1 of 3 restarted from storage: term `term`, vote `voted_for`, and a log of Noops at the
/// given (term, index) positions. Nothing has been fed to it yet.
fn restarted(term: u64, voted_for: Option<u64>, log: &[(u64, u64)]) -> Node {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(term),
            voted_for: voted_for.map(NodeId),
        },
        snapshot: None,
        entries: log
            .iter()
            .map(|&(term, index)| Entry {
                term: Term(term),
                index: LogIndex(index),
                command: Command::Noop,
            })
            .collect(),
    };
    Node::new(Config::new(NodeId(1), ids), recovered).unwrap()
}
/// A (pre-)vote request to node 1 from `from`, in `term`, for a candidate whose log ends at `last`.
fn request_vote(from: u64, term: u64, pre: bool, last: LogPosition) -> Input {
    let body = PeerBody::RequestVote {
        pre,
        last,
        transfer: false,
    };
    peer(from, term, body)
}

/// Node 1's answer to a (pre-)vote request from `to`.
fn vote_answer(to: u64, term: u64, pre: bool, granted: bool) -> Effect {
    send(to, term, PeerBody::VoteResponse { pre, granted })
}

fn hard_state(term: u64, voted_for: Option<u64>) -> Effect {
    Effect::Persist(Persist::HardState(HardState {
        term: Term(term),
        voted_for: voted_for.map(NodeId),
    }))
}

/// An empty AppendEntries from leader `from` of `term` whose log ends at `prev`.
fn heartbeat(from: u64, term: u64, prev: LogPosition) -> Input {
    let body = PeerBody::AppendEntries {
        prev,
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    peer(from, term, body)
}

/// An `AppendResponse` accepting up to `matched` an AppendEntries after `prev`.
fn accepted(prev: u64, matched: u64) -> PeerBody {
    PeerBody::AppendResponse {
        prev_index: LogIndex(prev),
        outcome: AppendOutcome::Accepted {
            match_index: LogIndex(matched),
        },
    }
}

/// Start time of every test: well before the first election deadline (300 ms or more later).
const START: Time = Time::from_millis(10);

/// The election time-out of the nodes under test (also the sticky-leader window).
fn election_timeout() -> Duration {
    Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]).election_timeout
}

fn ms(millis: u64) -> Time {
    Time::from_millis(millis)
}

/// Guards `let granted = term > self.term && up_to_date;` (pre branch of `on_vote_request`) and
/// that a pre-vote changes neither term, vote nor election deadline, and needs no sync.
#[test]
fn pre_vote_for_a_newer_term_and_an_up_to_date_log_is_granted_and_changes_nothing() {
    let mut node = restarted(1, None, &[(1, 1)]);
    node.handle(START, Input::Tick);
    assert_eq!(drain_unsynced(&mut node), vec![]);
    let deadline = node.next_deadline();
    node.handle(START, request_vote(2, 2, true, pos(1, 1)));
    let effects = drain_unsynced(&mut node);
    assert_eq!(effects, vec![vote_answer(2, 2, true, true)]);
    assert!(!effects[0].waits_for_persist());
    assert_eq!((node.term(), node.role()), (Term(1), Role::Follower));
    assert_eq!(node.next_deadline(), deadline, "a pre-vote reset the timer");
    // No vote was recorded for node 2: node 3 can still get this node's vote in term 2.
    node.handle(START, request_vote(3, 2, false, pos(1, 1)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            hard_state(2, None),
            hard_state(2, Some(3)),
            vote_answer(3, 2, false, true)
        ]
    );
}

/// Guards `term > self.term` in the pre-vote grant: a pre-vote must be for a term above ours, and
/// is refused in our own term (the `term < self.term` refusal covers older ones).
#[test]
fn pre_vote_not_above_our_term_is_refused_in_our_term() {
    for term in [1, 2] {
        let mut node = restarted(2, None, &[(1, 1)]);
        node.handle(START, Input::Tick);
        node.handle(START, request_vote(3, term, true, pos(1, 1)));
        assert_eq!(
            drain_unsynced(&mut node),
            vec![vote_answer(3, 2, true, false)],
            "pre-vote for term {term}"
        );
        assert_eq!(node.term(), Term(2));
    }
}

/// Guards `let up_to_date = last >= self.log.last();` for pre-votes: a shorter log of the same
/// last term, or a log whose last term is older, is refused, in our (unchanged) term.
#[test]
fn pre_vote_for_a_shorter_or_older_log_is_refused() {
    let cases = [
        // (our log, the candidate's last entry)
        (vec![(1, 1), (1, 2)], pos(1, 1)),
        (vec![(1, 1), (2, 2)], pos(1, 5)),
    ];
    for (log, last) in cases {
        let mut node = restarted(2, None, &log);
        node.handle(START, Input::Tick);
        node.handle(START, request_vote(3, 3, true, last));
        assert_eq!(
            drain_unsynced(&mut node),
            vec![vote_answer(3, 2, true, false)],
            "{log:?} vs {last:?}"
        );
        assert_eq!(node.term(), Term(2));
    }
}

/// Guards `if term < self.term || ...` in `on_vote_request`: a vote request from an older term is
/// refused in our term (which tells the candidate to step down), with nothing persisted.
#[test]
fn vote_request_from_an_older_term_is_refused_in_our_term() {
    let mut node = restarted(3, None, &[]);
    node.handle(START, Input::Tick);
    node.handle(START, request_vote(2, 2, false, pos(2, 9)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![vote_answer(2, 3, false, false)]
    );
    assert_eq!(node.term(), Term(3));
}

/// Guards `self.become_follower(term, None)` then `self.voted_for = Some(from);
/// self.persist_hard_state();` in `on_vote_request`: the new term and the vote are persisted
/// before the grant, and the grant waits for that persist to be durable.
#[test]
fn vote_for_a_newer_term_persists_term_and_vote_before_the_grant() {
    let mut node = restarted(1, None, &[(1, 1)]);
    node.handle(START, Input::Tick);
    node.handle(START, request_vote(2, 2, false, pos(1, 1)));
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        effects,
        vec![
            hard_state(2, None),
            hard_state(2, Some(2)),
            vote_answer(2, 2, false, true),
        ]
    );
    let waits: Vec<bool> = effects.iter().map(Effect::waits_for_persist).collect();
    assert_eq!(waits, vec![false, false, true]);
    assert_eq!((node.term(), node.role()), (Term(2), Role::Follower));
}

/// Guards `&& up_to_date` in the vote grant: a candidate with a shorter log, or an older last
/// term, is refused, although its newer term is adopted (and persisted, with no vote).
#[test]
fn vote_for_a_shorter_or_older_log_is_refused_but_the_term_is_adopted() {
    let cases = [
        (vec![(1, 1), (1, 2)], pos(1, 1)),
        (vec![(1, 1), (2, 2)], pos(1, 5)),
    ];
    for (log, last) in cases {
        let mut node = restarted(2, None, &log);
        node.handle(START, Input::Tick);
        node.handle(START, request_vote(3, 3, false, last));
        assert_eq!(
            drain_unsynced(&mut node),
            vec![hard_state(3, None), vote_answer(3, 3, false, false)],
            "{log:?} vs {last:?}"
        );
        assert_eq!(node.term(), Term(3));
    }
}

/// Guards `self.voted_for.is_none_or(|v| v == from)`: one vote per term. Another candidate of the
/// same term is refused; the candidate voted for is granted again, without a second persist.
#[test]
fn vote_is_refused_to_a_second_candidate_of_the_term_and_repeated_to_the_first() {
    let mut node = restarted(1, None, &[]);
    node.handle(START, Input::Tick);
    node.handle(START, request_vote(3, 2, false, pos(0, 0)));
    drain_unsynced(&mut node);
    node.handle(ms(20), request_vote(2, 2, false, pos(1, 7)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![vote_answer(2, 2, false, false)]
    );
    node.handle(ms(30), request_vote(3, 2, false, pos(0, 0)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![vote_answer(3, 2, false, true)]
    );
    // The same holds for a vote recovered from storage.
    let mut node = restarted(2, Some(3), &[]);
    node.handle(START, Input::Tick);
    node.handle(START, request_vote(2, 2, false, pos(1, 7)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![vote_answer(2, 2, false, false)]
    );
}

/// Guards the sticky-leader rule, `(leader_alive && !transfer)` in
/// `if term < self.term || (leader_alive && !transfer) {` in `on_vote_request`, with
/// `leader_alive`'s `self.now < t + self.cfg.election_timeout`, and `self.leader_contact =
/// Some(self.now);` in `on_append_entries` (each heartbeat restarts the window): a follower that
/// heard from its leader within the election time-out refuses pre-votes and votes of a newer
/// term, keeps its term and persists nothing. Without the rule the pre-vote would be granted in
/// term 2 and the vote would persist term 2 and a vote for node 3.
#[test]
fn follower_that_heard_from_a_live_leader_within_the_election_timeout_refuses_candidates() {
    let mut node = restarted(1, None, &[]);
    node.handle(START, Input::Tick);
    let ack = send(2, 1, accepted(0, 0));
    // The first heartbeat makes node 2 the known leader; the second, 200 ms later, is only
    // remembered by `on_append_entries` itself.
    let second = START + Duration::from_millis(200);
    for t in [START, second] {
        node.handle(t, heartbeat(2, 1, pos(0, 0)));
        assert_eq!(drain_unsynced(&mut node), vec![ack.clone()]);
    }
    assert_eq!(node.leader(), Some(NodeId(2)));
    // One nanosecond short of an election time-out since the second heartbeat (and well past
    // one since the first).
    let now = second + (election_timeout() - Duration::from_nanos(1));
    assert!(now < node.next_deadline());
    for pre in [true, false] {
        node.handle(now, request_vote(3, 2, pre, pos(0, 0)));
        assert_eq!(
            drain_unsynced(&mut node),
            vec![vote_answer(3, 1, pre, false)],
            "pre: {pre}"
        );
        assert_eq!((node.term(), node.leader()), (Term(1), Some(NodeId(2))));
    }
}

/// Guards the end of the sticky-leader window, `self.now < t + self.cfg.election_timeout` in
/// `leader_alive`: once an election time-out has passed since the leader was last heard, the
/// same pre-vote and vote are granted (so the rule above does not refuse forever).
#[test]
fn follower_grants_votes_once_an_election_timeout_has_passed_since_its_leader() {
    let mut node = restarted(1, None, &[]);
    node.handle(START, Input::Tick);
    node.handle(START, heartbeat(2, 1, pos(0, 0)));
    drain_unsynced(&mut node);
    let now = START + election_timeout();
    assert!(now < node.next_deadline());
    node.handle(now, request_vote(3, 2, true, pos(0, 0)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![vote_answer(3, 2, true, true)]
    );
    node.handle(now, request_vote(3, 2, false, pos(0, 0)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            hard_state(2, None),
            hard_state(2, Some(3)),
            vote_answer(3, 2, false, true)
        ]
    );
    assert_eq!((node.term(), node.leader()), (Term(2), None));
}

/// Guards `self.role == Role::Leader ||` in `leader_alive`: a leader refuses a vote request of a
/// newer term in its own term and keeps leading (it does not step down for a candidate).
#[test]
fn leader_refuses_vote_requests_of_a_newer_term_and_keeps_leading() {
    for pre in [true, false] {
        let (mut node, now) = leader_of_three();
        node.handle(now, request_vote(2, 5, pre, pos(4, 9)));
        assert_eq!(
            drain_unsynced(&mut node),
            vec![vote_answer(2, 1, pre, false)],
            "pre: {pre}"
        );
        assert!(node.is_leader());
        assert_eq!(node.term(), Term(1));
    }
}

/// Guards `&& !transfer` in the sticky-leader rule: a vote request sent on the leader's own
/// TimeoutNow is granted even though the leader was heard a moment ago.
#[test]
fn transfer_vote_request_is_granted_despite_a_live_leader() {
    let mut node = restarted(1, None, &[]);
    node.handle(START, Input::Tick);
    node.handle(START, heartbeat(2, 1, pos(0, 0)));
    drain_unsynced(&mut node);
    let body = PeerBody::RequestVote {
        pre: false,
        last: pos(0, 0),
        transfer: true,
    };
    node.handle(ms(20), peer(3, 2, body));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            hard_state(2, None),
            hard_state(2, Some(3)),
            vote_answer(3, 2, false, true)
        ]
    );
}

/// Guards `if msg.term > self.term && !granted_pre_vote { ... self.become_follower(msg.term,
/// from_leader.then_some(msg.from)) }` in `on_peer`: any message of a newer term (other than a
/// vote request or a granted pre-vote) makes a leader persist the term, answer its waiting
/// clients `NotLeader` (with the sender as hint if the sender leads) and then handle the message
/// as a follower.
#[test]
fn message_of_a_newer_term_makes_a_leader_step_down() {
    let not_leader = |hint: Option<u64>| Effect::Reply {
        conn: ConnId(7),
        response: ClientResponse {
            client: ClientId(7),
            seq: Seq(1),
            result: Err(Rejection::NotLeader {
                hint: hint.map(NodeId),
            }),
        },
    };
    let cases: Vec<(PeerBody, Option<u64>, Vec<Effect>)> = vec![
        (accepted(0, 1), None, vec![]),
        (
            PeerBody::AppendResponse {
                prev_index: LogIndex(1),
                outcome: AppendOutcome::Rejected { hint: LogIndex(1) },
            },
            None,
            vec![],
        ),
        (
            PeerBody::VoteResponse {
                pre: false,
                granted: false,
            },
            None,
            vec![],
        ),
        (
            PeerBody::VoteResponse {
                pre: true,
                granted: false,
            },
            None,
            vec![],
        ),
        (
            PeerBody::SnapshotResponse {
                last: pos(1, 2),
                received: 0,
                done: false,
            },
            None,
            vec![],
        ),
        (PeerBody::ReadIndexAck { round: 1 }, None, vec![]),
        (
            PeerBody::ReadIndex { round: 4 },
            Some(2),
            vec![send(2, 2, PeerBody::ReadIndexAck { round: 4 })],
        ),
        (
            PeerBody::AppendEntries {
                prev: pos(1, 2),
                entries: Vec::new(),
                commit: LogIndex(0),
            },
            Some(2),
            vec![send(2, 2, accepted(2, 2))],
        ),
    ];
    for (body, hint, then) in cases {
        let (mut node, now) = leader_of_three();
        // Client 7's keep-alive (index 2) is flushed and waits for its commit.
        node.handle(now, keep_alive(7));
        drain_unsynced(&mut node);
        node.handle(now, peer(2, 2, body.clone()));
        let mut expected = vec![hard_state(2, None), not_leader(hint)];
        expected.extend(then);
        assert_eq!(drain_unsynced(&mut node), expected, "{body:?}");
        assert_eq!(node.role(), Role::Follower, "{body:?}");
        assert_eq!(node.term(), Term(2), "{body:?}");
        assert_eq!(node.leader(), hint.map(NodeId), "{body:?}");
        assert_eq!(node.last_log(), pos(1, 2), "{body:?}");
    }
}

/// Guards the pre-vote round and the vote round end to end: `start_pre_vote` asks every peer
/// for the next term without changing its own; a granted pre-vote from a majority
/// (`(true, Role::PreCandidate) if term == self.term.next()`) starts the election, which
/// persists the new term and own vote before asking for votes; a majority of votes
/// (`(false, Role::Candidate) if term == self.term`) makes it leader, and its first drain sends
/// the Noop to every follower before persisting it.
#[test]
fn pre_candidate_then_candidate_wins_on_a_majority_and_sends_its_noop() {
    let mut node = fresh_node_of_three();
    node.handle(Time::ZERO, Input::Tick);
    assert_eq!(drain_unsynced(&mut node), vec![]);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    let pre_vote = |to| {
        let body = PeerBody::RequestVote {
            pre: true,
            last: pos(0, 0),
            transfer: false,
        };
        send(to, 1, body)
    };
    assert_eq!(drain_unsynced(&mut node), vec![pre_vote(2), pre_vote(3)]);
    assert_eq!((node.role(), node.term()), (Role::PreCandidate, Term(0)));

    // A granted pre-vote in the term it would stand in: no step-down to that term, a majority.
    let granted = |pre| PeerBody::VoteResponse { pre, granted: true };
    node.handle(now, peer(2, 1, granted(true)));
    let vote = |to| {
        let body = PeerBody::RequestVote {
            pre: false,
            last: pos(0, 0),
            transfer: false,
        };
        send(to, 1, body)
    };
    let effects = drain_unsynced(&mut node);
    assert_eq!(effects, vec![hard_state(1, Some(1)), vote(2), vote(3)]);
    // The vote requests carry the candidate's own vote: they wait for its persist.
    assert!(effects[1].waits_for_persist() && effects[2].waits_for_persist());
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));

    node.handle(now, peer(3, 1, granted(false)));
    let noop = Entry {
        term: Term(1),
        index: LogIndex(1),
        command: Command::Noop,
    };
    let append = PeerBody::AppendEntries {
        prev: pos(0, 0),
        entries: vec![noop.clone()],
        commit: LogIndex(0),
    };
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            send(2, 1, append.clone()),
            send(3, 1, append),
            Effect::Persist(Persist::Entries(vec![noop])),
        ]
    );
    assert!(node.is_leader());
    assert_eq!(node.leader(), Some(NodeId(1)));
}

/// Guards the guards of `on_vote_response`: `if !granted { return; }` and the round conditions
/// `(true, Role::PreCandidate) if term == self.term.next()` and `(false, Role::Candidate) if
/// term == self.term`. A pre-vote grant for another term, a vote grant to a pre-candidate, a
/// refusal, and a late pre-vote grant to a candidate change nothing and emit nothing.
#[test]
fn candidate_counts_only_grants_of_its_own_round() {
    let mut node = fresh_node_of_three();
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    drain_unsynced(&mut node);
    let answer = |pre, granted| PeerBody::VoteResponse { pre, granted };
    // (from, term, answer, role and term it leaves)
    let answers = [
        (2, 2, answer(true, true), Role::PreCandidate, 0),
        (3, 0, answer(false, true), Role::PreCandidate, 0),
        (2, 0, answer(true, false), Role::PreCandidate, 0),
    ];
    for (from, term, body, role, left_in) in answers {
        node.handle(now, peer(from, term, body.clone()));
        assert_eq!(drain_unsynced(&mut node), vec![], "{body:?} in term {term}");
        assert_eq!((node.role(), node.term()), (role, Term(left_in)));
    }
    // One real grant wins the pre-vote round.
    node.handle(now, peer(3, 1, answer(true, true)));
    drain_unsynced(&mut node);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));
    let answers = [
        (2, 1, answer(false, false)),
        (2, 1, answer(true, true)),
        (3, 1, answer(true, true)),
    ];
    for (from, term, body) in answers {
        node.handle(now, peer(from, term, body.clone()));
        assert_eq!(drain_unsynced(&mut node), vec![], "{body:?} in term {term}");
        assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));
    }
    node.handle(now, peer(2, 1, answer(false, true)));
    assert!(node.is_leader());
}

/// Node 1 of `members` standing in term 1: its pre-vote granted by node 2, its vote requests
/// out; effects drained. Returns the node and the time.
fn candidate(members: u64) -> (Node, Time) {
    let ids: Vec<NodeId> = (1..=members).map(NodeId).collect();
    let mut node = Node::new(Config::new(NodeId(1), ids), Recovered::default()).unwrap();
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    let granted = PeerBody::VoteResponse {
        pre: true,
        granted: true,
    };
    node.handle(now, peer(2, 1, granted.clone()));
    if members == 5 {
        node.handle(now, peer(3, 1, granted));
    }
    drain_unsynced(&mut node);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));
    (node, now)
}

/// Guards `if term > self.term { self.become_follower(term, None) }` in `on_vote_request`
/// (strictly newer): a candidate asked for its vote by a rival of the same term refuses and
/// keeps standing; it does not step down for a term it already has.
#[test]
fn a_candidate_asked_by_a_rival_of_its_term_refuses_and_keeps_standing() {
    let (mut node, now) = candidate(3);
    node.handle(now, request_vote(3, 1, false, pos(0, 0)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![vote_answer(3, 1, false, false)]
    );
    assert_eq!(node.role(), Role::Candidate);
}

/// Guards `if votes.len() < quorum { return; }` in `on_vote_response`: in a cluster of five a
/// candidate with one vote besides its own has two of the three it needs, and keeps standing.
#[test]
fn a_candidate_of_five_needs_three_votes() {
    let (mut node, now) = candidate(5);
    let granted = PeerBody::VoteResponse {
        pre: false,
        granted: true,
    };
    node.handle(now, peer(2, 1, granted.clone()));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.role(), Role::Candidate);
    node.handle(now, peer(3, 1, granted));
    assert!(node.is_leader());
}

/// Guards `if old.flushed < self.log.last().index { self.truncate_log_from(old.flushed.next()) }`
/// in `become_follower`: a leader deposed before it flushed a proposal drops it (nobody else has
/// it, and it was never persisted), answers its client with a hint, and sends nothing for it.
#[test]
fn a_deposed_leader_drops_the_proposals_it_never_flushed() {
    let (mut node, now) = leader_of_three();
    let flushed = node.last_log();
    node.handle(now, keep_alive(7));
    assert_eq!(
        node.last_log().index,
        flushed.index.next(),
        "proposed, not yet flushed"
    );
    let heartbeat = PeerBody::AppendEntries {
        prev: flushed,
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    node.handle(now, peer(2, 2, heartbeat));
    assert_eq!(node.last_log(), flushed);
    let not_leader = Effect::Reply {
        conn: ConnId(7),
        response: ClientResponse {
            client: ClientId(7),
            seq: Seq(1),
            result: Err(Rejection::NotLeader {
                hint: Some(NodeId(2)),
            }),
        },
    };
    let accept = PeerBody::AppendResponse {
        prev_index: flushed.index,
        outcome: AppendOutcome::Accepted {
            match_index: flushed.index,
        },
    };
    assert_eq!(
        drain_unsynced(&mut node),
        vec![hard_state(2, None), not_leader, send(2, 2, accept)]
    );
}

/// Guards `if self.now < leader.since + window` and `now.saturating_since(p.last_heard) < window`
/// in `check_quorum`: a leader that has heard from no follower steps down at the first heartbeat
/// a full election time-out (300 ms) after it began leading, not later; one nanosecond before,
/// it is still in its grace period.
#[test]
fn a_leader_hearing_nobody_steps_down_exactly_an_election_time_out_after_it_began() {
    let (mut early, began) = leader_of_three();
    early.handle(began + Duration::from_nanos(299_999_999), Input::Tick);
    assert!(early.is_leader(), "deposed inside its grace period");

    let (mut node, began) = leader_of_three();
    node.handle(began + Duration::from_millis(300), Input::Tick);
    assert!(
        !node.is_leader(),
        "still leading a full time-out after its last word from anyone"
    );
    assert_eq!(node.role(), Role::Follower);

    // Past the grace period: one follower heard 200 ms ago makes a majority with the leader;
    // nobody heard for 400 ms does not.
    let (mut heard, began) = leader_of_three();
    heard.handle(
        began + Duration::from_millis(200),
        peer(2, 1, accepted(0, 0)),
    );
    heard.handle(began + Duration::from_millis(400), Input::Tick);
    assert!(heard.is_leader(), "deposed with a majority heard");
    let (mut silent, began) = leader_of_three();
    silent.handle(began + Duration::from_millis(400), Input::Tick);
    assert!(
        !silent.is_leader(),
        "still leading with nobody heard for 400 ms"
    );
}

/// Guards the first checks of `on_peer`: a message addressed to another node, one claiming to
/// come from this node, and one from a non-member that only a leader would not send (a leader
/// outside the configuration is followed: see `node_membership.rs`) are all dropped, whatever
/// term they carry.
#[test]
fn messages_not_for_this_node_or_not_from_a_member_are_dropped() {
    let heartbeat = || PeerBody::AppendEntries {
        prev: pos(0, 0),
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    let misaddressed = [
        PeerMessage {
            from: NodeId(2),
            to: NodeId(3),
            term: Term(5),
            body: heartbeat(),
        },
        PeerMessage {
            from: NodeId(1),
            to: NodeId(1),
            term: Term(5),
            body: heartbeat(),
        },
        PeerMessage {
            from: NodeId(9),
            to: NodeId(1),
            term: Term(5),
            body: PeerBody::ReadIndexAck { round: 1 },
        },
    ];
    for msg in misaddressed {
        let mut node = fresh_node_of_three();
        node.handle(Time::from_millis(10), Input::Peer(msg.clone()));
        assert_eq!(drain_unsynced(&mut node), vec![], "{msg:?}");
        assert_eq!((node.term(), node.leader()), (Term(0), None), "{msg:?}");
    }
}
