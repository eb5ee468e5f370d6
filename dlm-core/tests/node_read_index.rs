//! Reads without the log (read-index): answered only after a majority confirmed the leader's
//! term in a round started after the read arrived, and once everything committed at its arrival
//! (at least this term's first entry) is applied; nothing is persisted for them.

mod common;

use common::{
    accepted, drain_unsynced, fresh_node_of_three, keep_alive, leader_of_three, peer, replies, req,
};
use dlm_core::message::PeerBody;
use dlm_core::*;

fn read(client: u128, seq: u64, file: &str) -> Input {
    Input::Client {
        conn: ConnId(client as u64),
        request: req(
            client,
            seq,
            Op::Read {
                file: file.into(),
                offset: 0,
            },
        ),
    }
}

fn read_ack(from: u64, round: u64) -> Input {
    peer(from, 1, PeerBody::ReadIndexAck { round })
}

fn rounds_sent(effects: &[Effect]) -> Vec<(NodeId, u64)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => match m.body {
                PeerBody::ReadIndex { round } => Some((m.to, round)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Leader 1 of 3 with client 7's session open: its keep-alive (index 2) and the Noop (1)
/// committed and applied.
fn leader_with_a_session() -> (Node, Time) {
    let (mut node, now) = leader_of_three();
    node.handle(now, keep_alive(7));
    node.handle(now, accepted(2, 2));
    node.handle(now, accepted(3, 2));
    drain_unsynced(&mut node);
    assert_eq!(node.applied_index(), LogIndex(2));
    (node, now)
}

#[test]
fn a_read_waits_for_a_majority_to_confirm_a_round_started_after_it() {
    let (mut node, now) = leader_with_a_session();
    node.handle(now, read(7, 2, "f"));
    let effects = drain_unsynced(&mut node);
    assert_eq!(rounds_sent(&effects), vec![(NodeId(2), 1), (NodeId(3), 1)]);
    assert!(replies(&effects).is_empty(), "answered before confirmation");
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Persist(_))),
        "a read was written to the log"
    );
    assert_eq!(node.last_log().index, LogIndex(2));

    // An acknowledgement of an older round proves nothing about this read.
    node.handle(now, read_ack(2, 0));
    assert!(replies(&drain_unsynced(&mut node)).is_empty());
    node.handle(now, read_ack(3, 1));
    let effects = drain_unsynced(&mut node);
    assert_eq!(replies(&effects), vec![(7, Err(Rejection::NoSuchFile))]);
}

#[test]
fn reads_of_one_batch_share_a_round() {
    let (mut node, now) = leader_with_a_session();
    node.handle(now, read(7, 2, "f"));
    node.handle(now, read(7, 3, "g"));
    let effects = drain_unsynced(&mut node);
    assert_eq!(rounds_sent(&effects), vec![(NodeId(2), 1), (NodeId(3), 1)]);
    node.handle(now, read_ack(2, 1));
    let effects = drain_unsynced(&mut node);
    assert_eq!(replies(&effects).len(), 2);
}

#[test]
fn a_read_sees_what_was_committed_when_it_arrived() {
    let (mut node, now) = leader_with_a_session();
    // Client 7 takes lock "a" (index 3) and appends to "f" (index 4); both commit through the
    // two followers (the leader's own copies are never reported durable here).
    let acquire = Op::Acquire {
        lock: "a".into(),
        lease: std::time::Duration::from_secs(5),
        wait: None,
    };
    node.handle(
        now,
        Input::Client {
            conn: ConnId(7),
            request: req(7, 2, acquire),
        },
    );
    node.handle(now, accepted(2, 3));
    node.handle(now, accepted(3, 3));
    drain_unsynced(&mut node);
    let append = Op::Append {
        lock: "a".into(),
        token: FencingToken(1),
        file: "f".into(),
        data: b"x".to_vec(),
    };
    node.handle(
        now,
        Input::Client {
            conn: ConnId(7),
            request: req(7, 3, append),
        },
    );
    node.handle(now, accepted(2, 4));
    node.handle(now, accepted(3, 4));
    drain_unsynced(&mut node);
    assert_eq!(node.applied_index(), LogIndex(4));

    node.handle(now, read(7, 4, "f"));
    drain_unsynced(&mut node);
    node.handle(now, read_ack(2, 1));
    let data = Ok(Reply::Data {
        data: b"x".to_vec(),
        len: 1,
    });
    assert_eq!(replies(&drain_unsynced(&mut node)), vec![(7, data)]);
}

#[test]
fn a_new_leader_answers_reads_only_once_its_first_entry_is_applied() {
    // Node 1 was a follower that applied client 7's keep-alive (index 1, term 1) and then leads
    // term 2 with its Noop (index 2) not yet committed: something committed in term 1 after
    // index 1 could exist without it knowing.
    let mut node = fresh_node_of_three();
    let now = Time::from_millis(10);
    let entry = Entry {
        term: Term(1),
        index: LogIndex(1),
        command: Command::Client(req(7, 1, Op::KeepAlive)),
    };
    let append = PeerBody::AppendEntries {
        prev: LogPosition::default(),
        entries: vec![entry],
        commit: LogIndex(1),
    };
    node.handle(now, peer(2, 1, append));
    node.handle(now, peer(2, 1, PeerBody::TimeoutNow));
    let vote = PeerBody::VoteResponse {
        pre: false,
        granted: true,
    };
    node.handle(now, peer(3, 2, vote));
    assert!(node.is_leader());
    drain_unsynced(&mut node);
    assert_eq!(node.last_log().index, LogIndex(2));

    node.handle(now, read(7, 2, "f"));
    drain_unsynced(&mut node);
    let ack = |from| peer(from, 2, PeerBody::ReadIndexAck { round: 1 });
    node.handle(now, ack(3));
    assert!(
        replies(&drain_unsynced(&mut node)).is_empty(),
        "answered before this term's first entry applied"
    );
    node.handle(
        now,
        Input::Persisted(LogPosition::new(Term(2), LogIndex(2))),
    );
    node.handle(
        now,
        peer(
            3,
            2,
            PeerBody::AppendResponse {
                prev_index: LogIndex(1),
                outcome: message::AppendOutcome::Accepted {
                    match_index: LogIndex(2),
                },
            },
        ),
    );
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.applied_index(), LogIndex(2));
    assert_eq!(replies(&effects), vec![(7, Err(Rejection::NoSuchFile))]);
}

#[test]
fn a_leader_that_steps_down_sends_its_readers_elsewhere() {
    let (mut node, now) = leader_with_a_session();
    node.handle(now, read(7, 2, "f"));
    drain_unsynced(&mut node);
    let newer = PeerBody::AppendEntries {
        prev: LogPosition::default(),
        entries: Vec::new(),
        commit: LogIndex(0),
    };
    node.handle(now, peer(3, 5, newer));
    let hint = Err(Rejection::NotLeader {
        hint: Some(NodeId(3)),
    });
    assert_eq!(replies(&drain_unsynced(&mut node)), vec![(7, hint)]);
}

#[test]
fn a_follower_confirms_its_leader_and_a_stale_one_learns_the_newer_term() {
    let mut node = fresh_node_of_three();
    let now = Time::from_millis(10);
    node.handle(now, peer(2, 3, PeerBody::ReadIndex { round: 9 }));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.leader(), Some(NodeId(2)));
    let acks: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => Some((m.to, m.term, m.body.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks,
        vec![(NodeId(2), Term(3), PeerBody::ReadIndexAck { round: 9 })]
    );
    node.handle(now, peer(3, 2, PeerBody::ReadIndex { round: 4 }));
    let effects = drain_unsynced(&mut node);
    let answers: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => Some((m.to, m.term)),
            _ => None,
        })
        .collect();
    assert_eq!(
        answers,
        vec![(NodeId(3), Term(3))],
        "the stale leader was not told"
    );
}
