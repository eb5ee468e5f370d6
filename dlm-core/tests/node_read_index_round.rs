//! Exact-effect tests of one read-index round (`dlm-core/src/node/read_index.rs`, and the read
//! path of `dlm-core/src/node/client.rs`): at the leader, a read by a known session starts a round
//! and persists nothing, acknowledgements from a majority answer it with the data, a read waits
//! for this term's first entry, and stale or early acknowledgements answer nothing; at a
//! follower, a round is acknowledged and its sender followed. Each test sets a state, feeds one
//! input and compares the whole list of effects.

mod common;

use common::{client_seven_holding, drain_unsynced, elect, peer, pos, req, send, Harness};
use dlm_core::message::{AppendOutcome, PeerBody};
use dlm_core::*;
use std::time::Duration;

/// Start time of every follower test: well before the first election deadline.
const START: Time = Time::from_millis(10);
/// Client 7's state: it holds lock "a" (token 1) and appended "xy" to file "f", with seqs 1 and 2.
fn state() -> StateMachine {
    client_seven_holding(Duration::from_secs(5), Some(b"xy"))
}

/// Node 1 of 3 restarted in `term` (no vote) from a snapshot of [`state`] at (1, 3), no entries.
fn restarted(term: u64) -> Node {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(term),
            voted_for: None,
        },
        snapshot: Some(Snapshot {
            last: pos(1, 3),
            data: state().to_bytes().unwrap(),
        }),
        entries: Vec::new(),
    };
    Node::new(Config::new(NodeId(1), ids), recovered).unwrap()
}

/// [`restarted`] in term 1 and elected leader of term 2 by node 2: its Noop (2, 4) went to both
/// followers as a probe; nothing is committed in term 2 and nothing is reported durable.
fn new_leader() -> (Node, Time) {
    let mut node = restarted(1);
    let now = elect(&mut node, 2);
    drain_unsynced(&mut node);
    assert_eq!(node.last_log(), pos(2, 4));
    (node, now)
}

/// [`new_leader`] once both followers accepted its Noop: it is committed and applied.
fn serving_leader() -> (Node, Time) {
    let (mut node, now) = new_leader();
    node.handle(now, peer(2, 2, accepted(3, 4)));
    node.handle(now, peer(3, 2, accepted(3, 4)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.applied_index(), LogIndex(4));
    (node, now)
}

fn accepted(prev_index: u64, match_index: u64) -> PeerBody {
    PeerBody::AppendResponse {
        prev_index: LogIndex(prev_index),
        outcome: AppendOutcome::Accepted {
            match_index: LogIndex(match_index),
        },
    }
}

/// Client `client`'s read of `file` from offset 0, as `seq`, on connection `client`.
fn read(client: u128, seq: u64, file: &str) -> Input {
    Input::Client {
        conn: ConnId(client as u64),
        request: read_request(client, seq, file),
    }
}

fn read_request(client: u128, seq: u64, file: &str) -> ClientRequest {
    req(
        client,
        seq,
        Op::Read {
            file: file.into(),
            offset: 0,
        },
    )
}

/// Round `round` of the leader of term 2, to both followers.
fn round_sent(round: u64) -> Vec<Effect> {
    vec![
        send(2, 2, PeerBody::ReadIndex { round }),
        send(3, 2, PeerBody::ReadIndex { round }),
    ]
}

/// `from`'s acknowledgement of `round`, in term 2.
fn ack(from: u64, round: u64) -> Input {
    peer(from, 2, PeerBody::ReadIndexAck { round })
}

/// The answer to client 7's request `seq`, on connection 7.
fn reply(seq: u64, result: Result<Reply, Rejection>) -> Effect {
    Effect::Reply {
        conn: ConnId(7),
        response: ClientResponse {
            client: ClientId(7),
            seq: Seq(seq),
            result,
        },
    }
}

/// What a read of "f" answers.
fn data_xy() -> Result<Reply, Rejection> {
    Ok(Reply::Data {
        data: b"xy".to_vec(),
        len: 2,
    })
}

// ---------------------------------------------------------------------------------------------
// At the leader.

/// Guards `if self.sm.session(client).is_some() { ... self.start_read(..); return; }` in
/// `on_client` and the loop of `start_read_round` (`for peer in leader.progress.keys() { ...
/// ReadIndex { round } }`): a read by a known session sends round 1 to every follower and
/// nothing else: no log entry, no persist, no answer before confirmation.
#[test]
fn a_read_by_a_known_session_sends_a_round_to_every_follower_and_persists_nothing() {
    let (mut node, now) = serving_leader();
    node.handle(now, read(7, 3, "f"));
    assert_eq!(drain_unsynced(&mut node), round_sent(1));
    assert_eq!(node.last_log(), pos(2, 4));
}

/// Guards `serve_reads`: `rounds.push(leader.reads.round)` (the leader confirms its own round)
/// with `reached_by_quorum(rounds, quorum)`: one follower's acknowledgement makes a majority of
/// three, and the read is answered from the state machine; a later acknowledgement of the same
/// round answers nothing more.
#[test]
fn an_acknowledgement_making_a_majority_answers_the_read_with_the_data() {
    let (mut node, now) = serving_leader();
    node.handle(now, read(7, 3, "f"));
    drain_unsynced(&mut node);
    node.handle(now, ack(3, 1));
    assert_eq!(drain_unsynced(&mut node), vec![reply(3, data_xy())]);
    node.handle(now, ack(2, 1));
    assert_eq!(drain_unsynced(&mut node), vec![]);
}

/// Guards `.is_some_and(|(round, read)| *round <= confirmed && ..)` in `serve_reads`: an
/// acknowledgement of a round older than the read's confirms nothing about it.
#[test]
fn an_acknowledgement_of_an_older_round_answers_nothing() {
    let (mut node, now) = serving_leader();
    node.handle(now, read(7, 3, "f"));
    assert_eq!(drain_unsynced(&mut node), round_sent(1));
    node.handle(now, read(7, 4, "f"));
    assert_eq!(drain_unsynced(&mut node), round_sent(2));
    node.handle(now, ack(2, 0));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    // Round 1 answers the first read only; round 2 the second.
    node.handle(now, ack(2, 1));
    assert_eq!(drain_unsynced(&mut node), vec![reply(3, data_xy())]);
    node.handle(now, ack(3, 2));
    assert_eq!(drain_unsynced(&mut node), vec![reply(4, data_xy())]);
}

/// Guards `*acked = (*acked).max(round);` in `on_read_index_ack`: acknowledgements may arrive
/// out of order; a later round's covers the earlier rounds, and the earlier one arriving late
/// neither lowers it nor answers anything twice.
#[test]
fn a_later_rounds_acknowledgement_covers_earlier_rounds_and_a_late_one_does_nothing() {
    let (mut node, now) = serving_leader();
    node.handle(now, read(7, 3, "f"));
    drain_unsynced(&mut node);
    node.handle(now, read(7, 4, "f"));
    drain_unsynced(&mut node);
    node.handle(now, ack(3, 2));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![reply(3, data_xy()), reply(4, data_xy())]
    );
    node.handle(now, ack(3, 1));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    // Node 3's confirmation of round 2 still stands for a third read once its round is acked.
    node.handle(now, read(7, 5, "f"));
    assert_eq!(drain_unsynced(&mut node), round_sent(3));
    node.handle(now, ack(2, 3));
    assert_eq!(drain_unsynced(&mut node), vec![reply(5, data_xy())]);
}

/// Guards `let index = commit.max(leader.term_start);` in `start_read` and `read.index <= applied`
/// in `serve_reads`: a read that arrives before the leader's own Noop is committed waits, even
/// once its round is confirmed by everyone, and is answered by the input that applies the Noop.
#[test]
fn a_read_before_the_leaders_noop_is_applied_waits_for_it() {
    let (mut node, now) = new_leader();
    node.handle(now, read(7, 3, "f"));
    assert_eq!(drain_unsynced(&mut node), round_sent(1));
    node.handle(now, ack(2, 1));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    node.handle(now, ack(3, 1));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    // One follower holds the Noop: without the leader's own durable copy, no majority yet.
    node.handle(now, peer(2, 2, accepted(3, 4)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert_eq!(node.applied_index(), LogIndex(3));
    node.handle(now, peer(3, 2, accepted(3, 4)));
    assert_eq!(drain_unsynced(&mut node), vec![reply(3, data_xy())]);
}

/// Guards the other half of that comment in `on_client`: "A first request opens the session
/// through the log". A read by a client without a session is proposed like any request: one
/// AppendEntries per follower, then its persist, and no round.
#[test]
fn a_read_by_an_unknown_session_goes_through_the_log() {
    let (mut node, now) = serving_leader();
    let request = read_request(8, 1, "f");
    node.handle(
        now,
        Input::Client {
            conn: ConnId(8),
            request: request.clone(),
        },
    );
    let entry = Entry {
        term: Term(2),
        index: LogIndex(5),
        command: Command::Client(request),
    };
    let append = PeerBody::AppendEntries {
        prev: pos(2, 4),
        entries: vec![entry.clone()],
        commit: LogIndex(4),
    };
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            send(2, 2, append.clone()),
            send(3, 2, append),
            Effect::Persist(Persist::Entries(vec![entry])),
        ]
    );
}

/// Guards `start_read_round` then `serve_reads` with a quorum of one: a single node confirms its
/// own round, so a read is answered in the same drain, with nothing sent or persisted.
#[test]
fn a_single_node_answers_a_read_at_once() {
    let mut h = Harness::leader(Config::single(NodeId(1)));
    h.request(7, req(7, 1, common::acquire("a", None)));
    h.request(7, req(7, 2, common::append("a", 1, "f", b"xy")));
    let effects = h.request(7, read_request(7, 3, "f"));
    assert_eq!(effects, vec![reply(3, data_xy())]);
}

/// Guards `let Some(leader) = self.role.leader_mut() else { return; }` in `on_read_index_ack`
/// and `msg.term < self.term => answer_stale` (which ignores acknowledgements): an
/// acknowledgement reaching a node that does not lead, or of an older term, does nothing.
#[test]
fn an_acknowledgement_at_a_follower_or_of_an_older_term_does_nothing() {
    let mut follower = restarted(2);
    follower.handle(START, Input::Tick);
    follower.handle(START, ack(2, 1));
    assert_eq!(drain_unsynced(&mut follower), vec![]);

    let (mut node, now) = serving_leader();
    node.handle(now, read(7, 3, "f"));
    drain_unsynced(&mut node);
    node.handle(now, peer(2, 1, PeerBody::ReadIndexAck { round: 1 }));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    assert!(node.is_leader());
}

// ---------------------------------------------------------------------------------------------
// At a follower.

/// Guards `on_read_index`: `self.heard_from_leader(from)` then `ReadIndexAck { round }`: a
/// follower of the same term acknowledges the round it was sent, persists nothing, follows the
/// sender and puts off its election.
#[test]
fn a_follower_acknowledges_the_round_and_follows_the_sender() {
    let mut node = restarted(2);
    node.handle(START, Input::Tick);
    let deadline = node.next_deadline();
    let later = Time::from_millis(200);
    assert!(later < deadline);
    node.handle(later, peer(2, 2, PeerBody::ReadIndex { round: 5 }));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, PeerBody::ReadIndexAck { round: 5 })]
    );
    assert_eq!(node.leader(), Some(NodeId(2)));
    assert!(
        node.next_deadline() > deadline,
        "the election was not put off"
    );
}

/// Guards `heard_from_leader` from `on_read_index` at a candidate: a round of its own term from
/// another member proves that member leads, so the candidate steps down, follows it and
/// acknowledges, with nothing persisted (the term does not change).
#[test]
fn a_candidate_sent_a_round_of_its_term_steps_down_and_acknowledges() {
    let mut node = restarted(1);
    node.handle(Time::ZERO, Input::Tick);
    let now = node.next_deadline();
    node.handle(now, Input::Tick);
    node.handle(
        now,
        peer(
            2,
            2,
            PeerBody::VoteResponse {
                pre: true,
                granted: true,
            },
        ),
    );
    drain_unsynced(&mut node);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
    node.handle(now, peer(3, 2, PeerBody::ReadIndex { round: 1 }));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(3, 2, PeerBody::ReadIndexAck { round: 1 })]
    );
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.leader(), Some(NodeId(3)));
}
