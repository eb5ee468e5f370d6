//! The queue's tests: the ordering rules from the driver's side (what waits for which sync,
//! what is reported, what the backlog counts). Apart from the queue so that its rules read
//! without two hundred lines of cases after them.

use super::*;
use crate::command::{Command, Entry};
use crate::message::{AppendOutcome, PeerBody, PeerMessage};
use crate::node::HardState;
use crate::protocol::{ClientResponse, Rejection};
use crate::types::{ClientId, ConnId, LogIndex, NodeId, Seq, Term};

fn entries(term: u64, from: u64, to: u64) -> Effect {
    Effect::Persist(Persist::Entries(
        (from..=to)
            .map(|i| Entry {
                term: Term(term),
                index: LogIndex(i),
                command: Command::Noop,
            })
            .collect(),
    ))
}

fn ack(index: u64) -> Effect {
    Effect::Send(PeerMessage {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(1),
        body: PeerBody::AppendResponse {
            prev_index: LogIndex(0),
            outcome: AppendOutcome::Accepted {
                match_index: LogIndex(index),
            },
        },
    })
}

fn append_entries() -> Effect {
    Effect::Send(PeerMessage {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: PeerBody::AppendEntries {
            prev: LogPosition::default(),
            entries: Vec::new(),
            commit: LogIndex(0),
        },
    })
}

fn reply() -> Effect {
    Effect::Reply {
        conn: ConnId(1),
        response: ClientResponse {
            client: ClientId(1),
            seq: Seq(1),
            result: Err(Rejection::NotLeader { hint: None }),
        },
    }
}

fn position(term: u64, index: u64) -> Option<LogPosition> {
    Some(LogPosition::new(Term(term), LogIndex(index)))
}

#[test]
fn nothing_waits_while_nothing_is_unsynced() {
    let mut q = PersistQueue::default();
    assert_eq!(q.push(ack(3)), Some(ack(3)));
    assert_eq!(q.push(reply()), Some(reply()));
    assert!(q.start().is_none());
    assert!(q.is_idle());
}

#[test]
fn an_ack_waits_for_the_persist_before_it_but_other_effects_do_not() {
    let mut q = PersistQueue::default();
    assert_eq!(q.push(entries(1, 1, 2)), None);
    assert_eq!(q.push(ack(2)), None);
    assert_eq!(q.push(append_entries()), Some(append_entries()));
    assert_eq!(q.push(reply()), Some(reply()));
    let batch = q.start().unwrap();
    assert_eq!(batch.len(), 1);
    let done = q.finish();
    assert_eq!(done.persisted, position(1, 2));
    assert_eq!(done.released, vec![ack(2)]);
    assert!(q.is_idle());
}

#[test]
fn persists_polled_during_a_sync_share_the_next_one() {
    let mut q = PersistQueue::default();
    let _ = q.push(entries(1, 1, 1));
    let first = q.start().unwrap();
    assert_eq!(first.len(), 1);
    let _ = q.push(entries(1, 2, 2));
    let _ = q.push(Effect::Persist(Persist::HardState(HardState::default())));
    let _ = q.push(entries(1, 3, 4));
    assert!(q.start().is_none(), "one sync at a time");
    assert_eq!(q.backlog().entries, 4);
    let _ = q.finish();
    let second = q.start().unwrap();
    assert_eq!(second.len(), 3);
    assert_eq!(q.finish().persisted, position(1, 4));
    assert_eq!(q.backlog().entries, 0);
}

#[test]
fn an_ack_polled_during_a_sync_waits_for_that_sync_only_if_nothing_was_gathered_since() {
    let mut q = PersistQueue::default();
    let _ = q.push(entries(1, 1, 1));
    let _ = q.start();
    // Nothing new gathered: waits for the sync under way.
    assert_eq!(q.push(ack(1)), None);
    let _ = q.push(entries(1, 2, 2));
    // Something gathered: waits for the next sync too.
    assert_eq!(q.push(ack(2)), None);
    let done = q.finish();
    assert_eq!(done.released, vec![ack(1)]);
    let _ = q.start();
    assert_eq!(q.finish().released, vec![ack(2)]);
}

#[test]
fn the_backlog_counts_bytes_of_appends_and_snapshots_until_their_sync_is_done() {
    let mut q = PersistQueue::default();
    let append = Entry {
        term: Term(1),
        index: LogIndex(1),
        command: Command::Client(crate::protocol::ClientRequest {
            client: ClientId(1),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: crate::protocol::Op::Append {
                lock: "l".into(),
                token: crate::types::FencingToken(1),
                file: "f".into(),
                data: vec![0; 10_000],
            },
        }),
    };
    let _ = q.push(Effect::Persist(Persist::Entries(vec![append])));
    let snapshot = crate::node::Snapshot {
        last: LogPosition::default(),
        data: vec![0; 5_000],
    };
    let _ = q.push(Effect::Persist(Persist::Snapshot {
        snapshot: std::sync::Arc::new(snapshot),
        replaces_log: false,
    }));
    let backlog = q.backlog();
    assert_eq!(backlog.entries, 1);
    assert!(backlog.bytes >= 15_000, "{backlog:?}");
    let _ = q.start();
    assert_eq!(q.backlog(), backlog, "in flight still counts");
    let _ = q.finish();
    assert_eq!(q.backlog(), Backlog::default());
}

#[test]
fn heartbeat_acks_held_for_one_sync_collapse_into_the_newest() {
    let mut q = PersistQueue::default();
    let _ = q.push(entries(1, 1, 1));
    let _ = q.start();
    let _ = q.push(entries(1, 2, 2));
    // A stalled disk: heartbeats keep coming, each answered after the next sync.
    for _ in 0..100 {
        let _ = q.push(ack(2));
    }
    let _ = q.push(ack(3));
    let _ = q.finish();
    let _ = q.start();
    assert_eq!(q.finish().released, vec![ack(3)]);
}

#[test]
fn an_ack_for_an_earlier_sync_is_not_dropped_for_a_later_one() {
    let mut q = PersistQueue::default();
    let _ = q.push(entries(1, 1, 1));
    let _ = q.start();
    let _ = q.push(ack(1));
    let _ = q.push(entries(1, 2, 2));
    let _ = q.push(ack(2));
    assert_eq!(q.finish().released, vec![ack(1)]);
    let _ = q.start();
    assert_eq!(q.finish().released, vec![ack(2)]);
}

#[test]
fn a_sync_of_hard_state_alone_reports_no_position() {
    let mut q = PersistQueue::default();
    let _ = q.push(Effect::Persist(Persist::HardState(HardState::default())));
    let _ = q.start();
    assert_eq!(q.finish().persisted, None);
    assert_eq!(q.finish().released, Vec::new(), "no sync is under way");
}

#[test]
fn the_report_is_the_last_entry_written_even_when_a_later_persist_truncates() {
    let mut q = PersistQueue::default();
    let _ = q.push(entries(1, 1, 5));
    let _ = q.push(entries(2, 3, 3));
    let _ = q.start();
    assert_eq!(q.finish().persisted, position(2, 3));
}
