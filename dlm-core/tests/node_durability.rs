//! The durability contract: a leader counts its own copy of an entry only once its driver
//! reports it durable (`Input::Persisted`), followers' acknowledgements may commit what the
//! leader is still syncing, a stale report counts for nothing, and only promises about local
//! storage wait for a sync.

mod common;

use common::{
    accepted, drain_unsynced, fresh_node_of_three, keep_alive, kept_alive_nothing, leader_of_three,
    peer, replies,
};
use dlm_core::message::{AppendOutcome, PeerBody, PeerMessage};
use dlm_core::*;

fn persisted(term: u64, index: u64) -> Input {
    Input::Persisted(LogPosition::new(Term(term), LogIndex(index)))
}

/// Leader 1 of 3 in term 1 with its Noop (index 1) and one client's keep-alive (index 2)
/// proposed, persisted and sent, and no persist reported durable yet.
fn leader_syncing_one_entry() -> (Node, Time) {
    let (mut node, now) = leader_of_three();
    node.handle(now, keep_alive(7));
    let effects = drain_unsynced(&mut node);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Persist(Persist::Entries(_)))));
    assert_eq!(node.last_log().index, LogIndex(2));
    assert_eq!(node.durable_index(), LogIndex(0));
    (node, now)
}

#[test]
fn a_leader_of_one_commits_only_once_its_persist_is_reported() {
    let mut node = Node::new(Config::single(NodeId(1)), Recovered::default()).unwrap();
    node.handle(Time::ZERO, Input::Tick);
    assert!(node.is_leader());
    drain_unsynced(&mut node);
    node.handle(Time::ZERO, keep_alive(7));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(0), "committed before durable");
    assert!(replies(&effects).is_empty(), "answered before durable");

    node.handle(Time::ZERO, persisted(1, 2));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(2));
    assert_eq!(replies(&effects), kept_alive_nothing(7));
}

#[test]
fn two_followers_commit_what_the_leader_is_still_syncing() {
    let (mut node, now) = leader_syncing_one_entry();
    node.handle(now, accepted(2, 2));
    node.handle(now, accepted(3, 2));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(2));
    assert_eq!(replies(&effects), kept_alive_nothing(7));
}

#[test]
fn one_follower_and_an_unsynced_leader_are_no_majority() {
    let (mut node, now) = leader_syncing_one_entry();
    node.handle(now, accepted(2, 2));
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        node.commit_index(),
        LogIndex(0),
        "counted its own unsynced copy"
    );
    assert!(replies(&effects).is_empty());

    // The Noop alone is reported: the majority now holds index 1, but the reply waits for 2.
    node.handle(now, persisted(1, 1));
    assert_eq!(node.commit_index(), LogIndex(1));
    node.handle(now, persisted(1, 2));
    let effects = drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(2));
    assert_eq!(replies(&effects), kept_alive_nothing(7));
}

fn entries(term: u64, from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            term: Term(term),
            index: LogIndex(index),
            command: Command::Noop,
        })
        .collect()
}

fn append(from: u64, term: u64, prev: LogPosition, entries: Vec<Entry>) -> Input {
    peer(
        from,
        term,
        PeerBody::AppendEntries {
            prev,
            entries,
            commit: LogIndex(0),
        },
    )
}

#[test]
fn a_report_about_a_replaced_entry_counts_for_nothing() {
    let mut node = fresh_node_of_three();
    let now = Time::from_millis(10);
    node.handle(now, append(2, 1, LogPosition::default(), entries(1, 1, 3)));
    drain_unsynced(&mut node);
    // Leader 3 of term 2 replaces entries 2 and 3 before the sync of term 1's entries is done.
    let prev = LogPosition::new(Term(1), LogIndex(1));
    node.handle(now, append(3, 2, prev, entries(2, 2, 2)));
    drain_unsynced(&mut node);
    node.handle(now, persisted(1, 3));
    assert_eq!(
        node.durable_index(),
        LogIndex(0),
        "a replaced entry counted"
    );
    node.handle(now, persisted(2, 2));
    assert_eq!(node.durable_index(), LogIndex(2));
}

#[test]
fn truncating_the_log_lowers_what_counts_as_durable() {
    let mut node = fresh_node_of_three();
    let now = Time::from_millis(10);
    node.handle(now, append(2, 1, LogPosition::default(), entries(1, 1, 3)));
    drain_unsynced(&mut node);
    node.handle(now, persisted(1, 3));
    assert_eq!(node.durable_index(), LogIndex(3));
    let prev = LogPosition::new(Term(1), LogIndex(1));
    node.handle(now, append(3, 2, prev, entries(2, 2, 2)));
    assert_eq!(node.durable_index(), LogIndex(1));
}

#[test]
fn what_storage_recovered_is_durable() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        snapshot: None,
        entries: entries(1, 1, 4),
    };
    let node = Node::new(Config::new(NodeId(1), ids), recovered).unwrap();
    assert_eq!(node.durable_index(), LogIndex(4));
}

fn send(body: PeerBody) -> Effect {
    Effect::Send(PeerMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body,
    })
}

#[test]
fn only_promises_about_local_storage_wait_for_a_sync() {
    let last = LogPosition::default();
    let waits = [
        PeerBody::AppendResponse {
            prev_index: LogIndex(0),
            outcome: AppendOutcome::Rejected { hint: LogIndex(1) },
        },
        PeerBody::VoteResponse {
            pre: false,
            granted: true,
        },
        PeerBody::RequestVote {
            pre: false,
            last,
            transfer: false,
        },
        PeerBody::SnapshotResponse {
            last,
            received: 0,
            done: true,
        },
    ];
    for body in waits {
        assert!(send(body.clone()).waits_for_persist(), "{body:?}");
    }
    let free = [
        PeerBody::AppendEntries {
            prev: last,
            entries: Vec::new(),
            commit: LogIndex(0),
        },
        PeerBody::VoteResponse {
            pre: true,
            granted: true,
        },
        PeerBody::RequestVote {
            pre: true,
            last,
            transfer: false,
        },
        PeerBody::InstallSnapshot {
            last,
            size: 0,
            offset: 0,
            data: Vec::new(),
        },
        PeerBody::TimeoutNow,
    ];
    for body in free {
        assert!(!send(body.clone()).waits_for_persist(), "{body:?}");
    }
    let reply = Effect::Reply {
        conn: ConnId(1),
        response: ClientResponse {
            client: ClientId(1),
            seq: Seq(1),
            result: Ok(Reply::Released),
        },
    };
    assert!(!reply.waits_for_persist());
    let persist = Effect::Persist(Persist::HardState(HardState::default()));
    assert!(!persist.waits_for_persist());
}
