//! Exact-effect tests of a leader's sending side: one call, the whole list of messages.

use super::*;
use crate::command::{Command, Entry};
use crate::message::PeerMessage;
use crate::node::Effect;

const ME: NodeId = NodeId(1);
const PEER: NodeId = NodeId(2);
const TERM: Term = Term(3);

fn entry(index: u64) -> Entry {
    Entry {
        term: Term(2),
        index: LogIndex(index),
        command: Command::Noop,
    }
}

/// A log of entries 1..=`last` (in term 2) above an empty base.
fn log(last: u64) -> Log {
    Log::new(LogPosition::default(), (1..=last).map(entry))
}

fn cfg() -> Config {
    let mut cfg = Config::new(ME, [ME, PEER, NodeId(3)]);
    cfg.max_batch_entries = 2;
    cfg.max_inflight = 2;
    cfg.snapshot_chunk = 4;
    cfg
}

fn sent(out: &mut Output) -> Vec<PeerBody> {
    let mut bodies = Vec::new();
    while let Some(effect) = out.pop() {
        match effect {
            Effect::Send(PeerMessage {
                from,
                to,
                term,
                body,
            }) => {
                assert_eq!((from, to, term), (ME, PEER, TERM));
                bodies.push(body);
            }
            other => panic!("not a send: {other:?}"),
        }
    }
    bodies
}

fn append(prev: (u64, u64), entries: &[u64], commit: u64) -> PeerBody {
    PeerBody::AppendEntries {
        prev: LogPosition::new(Term(prev.0), LogIndex(prev.1)),
        entries: entries.iter().map(|i| entry(*i)).collect(),
        commit: LogIndex(commit),
    }
}

/// Runs `f` on a sender over `log` (and `snapshot`) and returns what it sent.
fn with_sender(
    log: &Log,
    snapshot: Option<&Arc<Snapshot>>,
    f: impl FnOnce(&mut Sender<'_>),
) -> Vec<PeerBody> {
    let cfg = cfg();
    let mut out = Output::default();
    let mut sender = Sender {
        cfg: &cfg,
        term: TERM,
        commit: LogIndex(4),
        log,
        snapshot,
        out: &mut out,
    };
    f(&mut sender);
    sent(&mut out)
}

fn pipelined(matched: u64) -> Progress {
    let mut p = Progress::new(LogIndex(matched), crate::types::Time::ZERO);
    p.accept(LogIndex(matched));
    p
}

#[test]
fn replicate_fills_the_window_in_batches_and_stops() {
    let log = log(9);
    let mut p = pipelined(2);
    let sent = with_sender(&log, None, |s| s.replicate(PEER, &mut p));
    assert_eq!(
        sent,
        [append((2, 2), &[3, 4], 4), append((2, 4), &[5, 6], 4)]
    );
    assert_eq!(p.next, LogIndex(7));
    assert_eq!(p.inflight, [LogIndex(4), LogIndex(6)]);
}

#[test]
fn a_probing_follower_gets_one_message_until_it_answers() {
    let log = log(9);
    let mut p = Progress::new(LogIndex(9), crate::types::Time::ZERO);
    p.back_off(LogIndex(5));
    let sent = with_sender(&log, None, |s| {
        s.replicate(PEER, &mut p);
        s.replicate(PEER, &mut p);
    });
    assert_eq!(sent, [append((2, 4), &[5, 6], 4)]);
    assert!(p.probe_sent);
    assert_eq!(p.next, LogIndex(5), "a probe does not move next");
}

#[test]
fn the_heartbeat_of_a_caught_up_follower_is_one_empty_append() {
    let log = log(9);
    let mut p = pipelined(9);
    let sent = with_sender(&log, None, |s| s.heartbeat(PEER, &mut p));
    assert_eq!(sent, [append((2, 9), &[], 4)]);
}

#[test]
fn the_heartbeat_resends_a_lost_probe() {
    let log = log(9);
    let mut p = Progress::new(LogIndex(9), crate::types::Time::ZERO);
    p.back_off(LogIndex(8));
    p.probe_sent = true;
    let sent = with_sender(&log, None, |s| s.heartbeat(PEER, &mut p));
    assert_eq!(sent, [append((2, 7), &[8, 9], 4)]);
}

#[test]
fn the_heartbeat_of_a_pipelined_follower_also_fills_its_window() {
    let log = log(5);
    let mut p = pipelined(2);
    let sent = with_sender(&log, None, |s| s.heartbeat(PEER, &mut p));
    assert_eq!(
        sent,
        [
            append((2, 2), &[], 4),
            append((2, 2), &[3, 4], 4),
            append((2, 4), &[5], 4)
        ]
    );
}

fn snapshot() -> Arc<Snapshot> {
    Arc::new(Snapshot {
        last: LogPosition::new(Term(2), LogIndex(6)),
        data: (0u8..10).collect(),
    })
}

fn chunk(offset: u64, data: std::ops::Range<u8>) -> PeerBody {
    PeerBody::InstallSnapshot {
        last: LogPosition::new(Term(2), LogIndex(6)),
        size: 10,
        offset,
        data: data.collect(),
    }
}

#[test]
fn a_follower_behind_the_compacted_log_is_sent_the_snapshot_in_chunks() {
    let log = Log::new(LogPosition::new(Term(2), LogIndex(6)), (7..=9).map(entry));
    let snapshot = snapshot();
    let mut p = Progress::new(LogIndex(9), crate::types::Time::ZERO);
    p.back_off(LogIndex(3));
    let sent = with_sender(&log, Some(&snapshot), |s| {
        s.replicate(PEER, &mut p);
        s.on_snapshot_response(PEER, &mut p, snapshot.last, 4, false);
        s.on_snapshot_response(PEER, &mut p, snapshot.last, 8, false);
    });
    assert_eq!(sent, [chunk(0, 0..4), chunk(4, 4..8), chunk(8, 8..10)]);
    assert_eq!(p.snapshot, Some((snapshot.last, 8)));
}

#[test]
fn a_finished_snapshot_resumes_replication_after_it() {
    let log = Log::new(LogPosition::new(Term(2), LogIndex(6)), (7..=9).map(entry));
    let snapshot = snapshot();
    let mut p = Progress::new(LogIndex(9), crate::types::Time::ZERO);
    p.back_off(LogIndex(3));
    p.snapshot = Some((snapshot.last, 8));
    let stale = LogPosition::new(Term(1), LogIndex(3));
    let sent = with_sender(&log, Some(&snapshot), |s| {
        s.on_snapshot_response(PEER, &mut p, stale, 10, true);
        s.on_snapshot_response(PEER, &mut p, snapshot.last, 10, true);
    });
    assert_eq!(sent, [append((2, 6), &[7, 8], 4), append((2, 8), &[9], 4)]);
    assert_eq!((p.snapshot, p.matched), (None, LogIndex(6)));
}

#[test]
fn without_a_snapshot_a_follower_behind_the_log_is_sent_nothing() {
    let log = Log::new(LogPosition::new(Term(2), LogIndex(6)), (7..=9).map(entry));
    let mut p = Progress::new(LogIndex(9), crate::types::Time::ZERO);
    p.back_off(LogIndex(3));
    let sent = with_sender(&log, None, |s| s.replicate(PEER, &mut p));
    assert!(sent.is_empty());
    assert_eq!(p.snapshot, None);
}

#[test]
fn a_newer_snapshot_is_sent_from_its_start() {
    let log = Log::new(LogPosition::new(Term(2), LogIndex(6)), (7..=9).map(entry));
    let snapshot = snapshot();
    let mut p = Progress::new(LogIndex(9), crate::types::Time::ZERO);
    p.back_off(LogIndex(3));
    // Half of an older snapshot had been sent when this one was taken.
    p.snapshot = Some((LogPosition::new(Term(1), LogIndex(3)), 8));
    let sent = with_sender(&log, Some(&snapshot), |s| {
        s.send_snapshot_chunk(PEER, &mut p)
    });
    assert_eq!(sent, [chunk(0, 0..4)]);
    assert_eq!(p.snapshot, Some((snapshot.last, 0)));
}
