//! Exact-effect tests of snapshots (`dlm-core/src/node/snapshot.rs`): the leader's chunked send to
//! a follower behind its log base and its handling of the follower's answers, the follower's
//! handling of each chunk (first, out of order, last, already covered, corrupt, stale), and the
//! snapshot a node takes itself. Each test sets a state, feeds one input and compares the whole
//! list of effects.

mod common;

use common::{
    client_seven_holding, drain_unsynced, elect, noop, noops, peer, pos, req, send, Harness,
};
use dlm_core::message::{AppendOutcome, PeerBody};
use dlm_core::*;
use std::sync::Arc;
use std::time::Duration;

/// Start time of every follower test: well before the first election deadline.
const START: Time = Time::from_millis(10);
/// The state the snapshots of these tests hold: client 7 holds lock "a" (token 1) and appended
/// "xy" to file "f".
fn state() -> StateMachine {
    client_seven_holding(Duration::from_secs(5), Some(b"xy"))
}

/// The serialised [`state`].
fn bytes() -> Vec<u8> {
    state().to_bytes().unwrap()
}

/// The chunk size that cuts [`bytes`] into three chunks (the last possibly shorter).
fn chunk() -> usize {
    let size = bytes().len();
    assert!(size >= 3, "snapshot too small to chunk");
    size.div_ceil(3)
}

/// The snapshot of [`state`] as of entry (1, 3).
fn snapshot() -> Snapshot {
    Snapshot {
        last: pos(1, 3),
        data: bytes(),
    }
}

/// Node 1 of 3 restarted from storage in `term` (no vote), with `snapshot` and a log of Noops at
/// the given (term, index) positions, chunking snapshots into [`chunk`] bytes.
fn restarted(term: u64, snapshot: Option<Snapshot>, log: &[(u64, u64)]) -> Node {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut cfg = Config::new(NodeId(1), ids);
    cfg.snapshot_chunk = chunk();
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(term),
            voted_for: None,
        },
        snapshot,
        entries: log.iter().map(|&(t, i)| noop(t, i)).collect(),
    };
    Node::new(cfg, recovered).unwrap()
}

/// A chunk of [`bytes`] from `offset` to `end`, for the snapshot at `last`.
fn install(last: LogPosition, offset: usize, end: usize) -> PeerBody {
    let data = bytes();
    PeerBody::InstallSnapshot {
        last,
        size: data.len() as u64,
        offset: offset as u64,
        data: data[offset..end].to_vec(),
    }
}

fn snapshot_answer(last: LogPosition, received: usize, done: bool) -> PeerBody {
    PeerBody::SnapshotResponse {
        last,
        received: received as u64,
        done,
    }
}

fn reject(prev_index: u64, hint: u64) -> PeerBody {
    PeerBody::AppendResponse {
        prev_index: LogIndex(prev_index),
        outcome: AppendOutcome::Rejected {
            hint: LogIndex(hint),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// At the leader.

/// Node 1 of 3 restarted from [`snapshot`] (its log base is (1, 3), no entries), elected leader of
/// term 2 by node 2; its Noop (2, 4) went to both followers as a probe after (1, 3). Nothing is
/// reported durable.
fn leader_with_a_snapshot() -> (Node, Time) {
    let mut node = restarted(1, Some(snapshot()), &[]);
    let now = elect(&mut node, 2);
    drain_unsynced(&mut node);
    assert_eq!(node.last_log(), pos(2, 4));
    (node, now)
}

/// The leader of [`leader_with_a_snapshot`] after node 2 rejected the probe down to index 1: it
/// is sending node 2 the snapshot, whose first chunk is out.
fn leader_sending_a_snapshot() -> (Node, Time) {
    let (mut node, now) = leader_with_a_snapshot();
    node.handle(now, peer(2, 2, reject(3, 1)));
    drain_unsynced(&mut node);
    (node, now)
}

/// Guards `let Some(prev_term) = self.log.term_at(prev_index) else { self.send_snapshot_chunk(peer);
/// return false; }` in `send_append`, and `send_snapshot_chunk` from offset 0 (`_ => 0`): a
/// follower whose next index is below the leader's log base gets the snapshot's first chunk
/// (`snapshot_chunk` bytes, with the whole size) instead of entries, and nothing else.
#[test]
fn leader_sends_the_first_chunk_to_a_follower_below_its_log_base() {
    let (mut node, now) = leader_with_a_snapshot();
    node.handle(now, peer(2, 2, reject(3, 1)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, install(pos(1, 3), 0, chunk()))]
    );
}

/// Guards the not-done branch of `on_snapshot_response` (`p.snapshot = Some((last, received));
/// self.send_snapshot_chunk(from);`) and `let end = start.saturating_add(self.cfg.snapshot_chunk)
/// .min(size);`: each answer brings the chunk from the offset the follower reports, and the last
/// chunk stops at the snapshot's end.
#[test]
fn leader_sends_the_next_chunk_from_the_offset_the_follower_reports() {
    let (mut node, now) = leader_sending_a_snapshot();
    let (c, size) = (chunk(), bytes().len());
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 3), c, false)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, install(pos(1, 3), c, 2 * c))]
    );
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 3), 2 * c, false)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, install(pos(1, 3), 2 * c, size))]
    );
    // A follower that lost a chunk says so by reporting less: the leader goes back to it.
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 3), c, false)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, install(pos(1, 3), c, 2 * c))]
    );
}

/// Guards the done branch of `on_snapshot_response` (`p.snapshot = None; p.accept(last.index);
/// self.replicate(from);`): once the follower installed the snapshot the leader goes back to
/// AppendEntries, right after the snapshot's last entry.
#[test]
fn leader_goes_back_to_append_entries_once_the_snapshot_is_installed() {
    let (mut node, now) = leader_sending_a_snapshot();
    node.handle(
        now,
        peer(2, 2, snapshot_answer(pos(1, 3), bytes().len(), true)),
    );
    let append = PeerBody::AppendEntries {
        prev: pos(1, 3),
        entries: vec![noop(2, 4)],
        commit: LogIndex(3),
    };
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 2, append)]);
}

/// Guards `if !matches!(p.snapshot, Some((sending, _)) if sending == last) { return; }`: an
/// answer about another snapshot than the one being sent, or from a follower that is not being
/// sent one, changes nothing and sends nothing.
#[test]
fn leader_ignores_an_answer_about_another_snapshot() {
    let (mut node, now) = leader_sending_a_snapshot();
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 2), 5, false)));
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 2), 5, true)));
    node.handle(now, peer(3, 2, snapshot_answer(pos(1, 3), 5, false)));
    node.handle(now, peer(3, 2, snapshot_answer(pos(1, 3), 5, true)));
    assert_eq!(drain_unsynced(&mut node), vec![]);
    // Node 2 is still being sent the snapshot from where it was.
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 3), 1, false)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, install(pos(1, 3), 1, 1 + chunk()))]
    );
}

/// Guards `if snapshotting { self.send_snapshot_chunk(peer); }` in `broadcast_heartbeat`, with the
/// offset kept in `p.snapshot` (`Some((last, offset)) if last == snapshot.last => offset`): a
/// heartbeat re-sends the chunk the follower is waiting for (the previous one may be lost), while
/// the other follower, still probing, gets its probe again.
#[test]
fn a_heartbeat_resends_the_awaited_chunk() {
    let (mut node, now) = leader_sending_a_snapshot();
    let c = chunk();
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 3), c, false)));
    drain_unsynced(&mut node);
    let heartbeat = now + Duration::from_millis(50);
    node.handle(heartbeat, Input::Tick);
    let probe = PeerBody::AppendEntries {
        prev: pos(1, 3),
        entries: vec![noop(2, 4)],
        commit: LogIndex(3),
    };
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, install(pos(1, 3), c, 2 * c)), send(3, 2, probe)]
    );
}

// ---------------------------------------------------------------------------------------------
// At a follower.

/// Guards the first-chunk path of `on_install_snapshot` (`_ if offset == 0 => Vec::new()`, then
/// `if (buffer.len() as u64) < size { ... answer_snapshot(from, last, received, false) }`): a
/// first chunk is kept and answered with how much is held, nothing is persisted or applied, and
/// the sender is followed as leader.
#[test]
fn follower_keeps_a_first_chunk_and_reports_what_it_holds() {
    let mut node = restarted(2, None, &[]);
    node.handle(START, Input::Tick);
    let c = chunk();
    node.handle(START, peer(2, 2, install(pos(1, 3), 0, c)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 3), c, false))]
    );
    assert_eq!(node.leader(), Some(NodeId(2)));
    assert_eq!(node.applied_index(), LogIndex(0));
    assert_eq!(node.state_machine(), &StateMachine::new());
}

/// Guards `if offset != buffer.len() as u64 { ... answer_snapshot(from, last, received, false) }`:
/// a chunk that does not start where the held bytes end is dropped, the bytes held are kept, and
/// the answer says how many there are, so the leader resends from there.
#[test]
fn follower_drops_a_chunk_at_the_wrong_offset_and_keeps_what_it_holds() {
    let mut node = restarted(2, None, &[]);
    node.handle(START, Input::Tick);
    let c = chunk();
    node.handle(START, peer(2, 2, install(pos(1, 3), 0, c)));
    drain_unsynced(&mut node);
    node.handle(START, peer(2, 2, install(pos(1, 3), 2 * c, bytes().len())));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 3), c, false))]
    );
    // The held bytes were kept: the chunk that follows them is taken.
    node.handle(START, peer(2, 2, install(pos(1, 3), c, 2 * c)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 3), 2 * c, false))]
    );
}

/// Guards `_ => { self.answer_snapshot(from, last, 0, false); return; }`: a chunk past offset 0 of
/// a transfer this follower has not started is answered "nothing held", so the leader restarts
/// from the beginning.
#[test]
fn follower_answers_zero_to_a_later_chunk_of_a_transfer_it_never_started() {
    let mut node = restarted(2, None, &[]);
    node.handle(START, Input::Tick);
    let c = chunk();
    node.handle(START, peer(2, 2, install(pos(1, 3), c, 2 * c)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 3), 0, false))]
    );
}

/// Guards the install path of `on_install_snapshot` when the log does not hold the snapshot's
/// last entry (`self.log.reset(last)`, `replaces_log: !keeps_tail`): the last chunk persists the
/// snapshot replacing the whole log, tells the driver the state was restored, and answers done
/// with the whole size, after the persist.
#[test]
fn follower_installs_on_the_last_chunk_replacing_its_log() {
    let mut node = restarted(2, None, &[(1, 1)]);
    node.handle(START, Input::Tick);
    let (c, size) = (chunk(), bytes().len());
    node.handle(START, peer(2, 2, install(pos(1, 3), 0, c)));
    node.handle(START, peer(2, 2, install(pos(1, 3), c, 2 * c)));
    drain_unsynced(&mut node);
    node.handle(START, peer(2, 2, install(pos(1, 3), 2 * c, size)));
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        effects,
        vec![
            Effect::Persist(Persist::Snapshot {
                snapshot: Arc::new(snapshot()),
                replaces_log: true,
            }),
            Effect::Applied(Applied::Restored),
            send(2, 2, snapshot_answer(pos(1, 3), size, true)),
        ]
    );
    assert!(effects[2].waits_for_persist());
    assert_eq!(node.state_machine(), &state());
    assert_eq!(node.last_log(), pos(1, 3));
    assert_eq!(
        (node.commit_index(), node.applied_index()),
        (LogIndex(3), LogIndex(3))
    );
}

/// Guards `if keeps_tail { self.log.compact(last.index); }` (and `replaces_log: !keeps_tail`): a
/// follower whose log holds the snapshot's last entry keeps the entries after it, and the
/// snapshot it persists does not replace its stored log.
#[test]
fn follower_installs_a_snapshot_it_holds_the_last_entry_of_keeping_its_tail() {
    let mut node = restarted(2, None, &[(1, 1), (1, 2), (1, 3), (2, 4)]);
    node.handle(START, Input::Tick);
    let size = bytes().len();
    node.handle(START, peer(2, 2, install(pos(1, 3), 0, size)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![
            Effect::Persist(Persist::Snapshot {
                snapshot: Arc::new(snapshot()),
                replaces_log: false,
            }),
            Effect::Applied(Applied::Restored),
            send(2, 2, snapshot_answer(pos(1, 3), size, true)),
        ]
    );
    assert_eq!(node.last_log(), pos(2, 4));
    assert_eq!(node.entry(LogIndex(4)), Some(&noop(2, 4)));
    assert_eq!(node.applied_index(), LogIndex(3));
}

/// Guards `if last.index <= self.commit { ... self.answer_snapshot(from, last, size, true); return;
/// }`: a snapshot at or below the follower's commit index is answered done at once, whatever the
/// chunk, and installs nothing.
#[test]
fn follower_answers_done_at_once_to_a_snapshot_at_or_below_its_commit() {
    let mut node = restarted(2, Some(snapshot()), &[]);
    node.handle(START, Input::Tick);
    let (c, size) = (chunk(), bytes().len());
    node.handle(START, peer(2, 2, install(pos(1, 3), 0, c)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 3), size, true))]
    );
    node.handle(START, peer(2, 2, install(pos(1, 2), c, 2 * c)));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 2), size, true))]
    );
    assert_eq!(node.last_log(), pos(1, 3));
}

/// Guards `let Ok(sm) = StateMachine::from_bytes(&buffer) else { self.answer_snapshot(from, last,
/// 0, false); return; }`: a complete transfer that does not decode is not installed, and the
/// answer asks for it again from the beginning.
#[test]
fn follower_refuses_a_snapshot_that_does_not_decode() {
    let mut node = restarted(2, None, &[]);
    node.handle(START, Input::Tick);
    let garbage = PeerBody::InstallSnapshot {
        last: pos(1, 3),
        size: 4,
        offset: 0,
        data: vec![0xff; 4],
    };
    node.handle(START, peer(2, 2, garbage));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 2, snapshot_answer(pos(1, 3), 0, false))]
    );
    assert_eq!(node.applied_index(), LogIndex(0));
}

/// Guards `PeerBody::InstallSnapshot { last, .. } => ... received: 0, done: false` in
/// `answer_stale`: a chunk from an older term is answered in this node's term (so its stale
/// sender steps down), and nothing is kept.
#[test]
fn follower_answers_a_chunk_of_an_older_term_in_its_own_term() {
    let mut node = restarted(3, None, &[]);
    node.handle(START, Input::Tick);
    node.handle(START, peer(2, 2, install(pos(1, 3), 0, bytes().len())));
    assert_eq!(
        drain_unsynced(&mut node),
        vec![send(2, 3, snapshot_answer(pos(1, 3), 0, false))]
    );
    assert_eq!((node.leader(), node.applied_index()), (None, LogIndex(0)));
}

// ---------------------------------------------------------------------------------------------
// Taking one.

/// Guards `maybe_snapshot`: once `snapshot_every` entries are applied since the last snapshot,
/// the node persists one of its state as of the last applied entry (not replacing the log), right
/// after the effects of that apply.
#[test]
fn a_snapshot_is_taken_after_snapshot_every_applied_entries() {
    let mut cfg = Config::single(NodeId(1));
    cfg.snapshot_every = 2;
    let mut h = Harness::leader(cfg);
    // The Noop (index 1) is applied: one entry since no snapshot.
    assert_eq!(h.node.applied_index(), LogIndex(1));
    assert!(h.snapshot.is_none());
    let request = req(7, 1, Op::KeepAlive);
    let effects = h.request(3, request.clone());
    let last = pos(1, 2);
    assert_eq!(
        effects,
        vec![
            Effect::Persist(Persist::Entries(vec![Entry {
                term: Term(1),
                index: LogIndex(2),
                command: Command::Client(request),
            }])),
            Effect::Reply {
                conn: ConnId(3),
                response: ClientResponse {
                    client: ClientId(7),
                    seq: Seq(1),
                    result: Ok(Reply::KeptAlive {
                        held: Vec::new(),
                        revoked: Vec::new()
                    }),
                },
            },
            Effect::Persist(Persist::Snapshot {
                snapshot: Arc::new(Snapshot {
                    last,
                    data: h.node.state_machine().to_bytes().unwrap(),
                }),
                replaces_log: false,
            }),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// AppendEntries that reach back before the follower's snapshot

/// An AppendEntries from leader 2 in term 2 after `prev`, carrying `entries`, committing 5.
fn append_from_2(prev: LogPosition, entries: &[(u64, u64)]) -> Input {
    let body = PeerBody::AppendEntries {
        prev,
        entries: noops(entries),
        commit: LogIndex(5),
    };
    peer(2, 2, body)
}

fn accepted_by_1(prev_index: u64, match_index: u64) -> Effect {
    let body = PeerBody::AppendResponse {
        prev_index: LogIndex(prev_index),
        outcome: AppendOutcome::Accepted {
            match_index: LogIndex(match_index),
        },
    };
    send(2, 2, body)
}

/// Guards the skip of entries the snapshot covers (`skip = base - prev`, and the branch taken
/// when some entries remain after it): entries up to the snapshot's last index (3) are dropped
/// as already matching, the rest appended after it, and the answer speaks of the snapshot's
/// index.
#[test]
fn follower_skips_the_entries_its_snapshot_covers_and_appends_the_rest() {
    let mut node = restarted(2, Some(snapshot()), &[]);
    node.handle(START, Input::Tick);
    node.handle(
        START,
        append_from_2(pos(1, 1), &[(1, 2), (1, 3), (2, 4), (2, 5)]),
    );
    let effects = drain_unsynced(&mut node);
    assert_eq!(
        effects,
        vec![
            Effect::Persist(Persist::Entries(noops(&[(2, 4), (2, 5)]))),
            accepted_by_1(3, 5),
        ],
        "{effects:#?}"
    );
    assert_eq!(node.last_log(), pos(2, 5));
}

/// Guards `skip > entries.len()`: an AppendEntries whose every entry the snapshot covers is
/// accepted at once up to its last entry, answered about its own `prev`.
#[test]
fn follower_accepts_at_once_entries_all_below_its_snapshot() {
    let mut node = restarted(2, Some(snapshot()), &[]);
    node.handle(START, Input::Tick);
    node.handle(START, append_from_2(pos(1, 1), &[(1, 2)]));
    assert_eq!(drain_unsynced(&mut node), vec![accepted_by_1(1, 2)]);
    assert_eq!(node.last_log(), pos(1, 3));
}

/// Guards the boundary of `skip > entries.len()`: entries that end exactly at the snapshot's
/// last index leave nothing to append; the answer then goes through the ordinary path, about
/// the snapshot's index.
#[test]
fn follower_answers_entries_ending_at_its_snapshot_from_the_snapshot() {
    let mut node = restarted(2, Some(snapshot()), &[]);
    node.handle(START, Input::Tick);
    node.handle(START, append_from_2(pos(1, 1), &[(1, 2), (1, 3)]));
    assert_eq!(drain_unsynced(&mut node), vec![accepted_by_1(3, 3)]);
}

/// Guards `prev.index < base.index` (not `<=`): a `prev` at the snapshot's own index is checked
/// like any other, so one with another term there is refused.
#[test]
fn follower_checks_a_prev_at_its_snapshot_index_like_any_other() {
    let mut node = restarted(2, Some(snapshot()), &[]);
    node.handle(START, Input::Tick);
    node.handle(START, append_from_2(pos(2, 3), &[(2, 4)]));
    let effects = drain_unsynced(&mut node);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Send(m)] if matches!(m.body, PeerBody::AppendResponse { outcome: AppendOutcome::Rejected { .. }, .. })
        ),
        "{effects:#?}"
    );
    assert_eq!(node.last_log(), pos(1, 3));
}

/// Guards `first > floor` in `first_index_of_term`: the hint of a rejection walks back through
/// the conflicting term only as far as the first entry after the snapshot, even when the
/// snapshot's last entry has that term too.
#[test]
fn follower_hints_no_lower_than_the_first_entry_after_its_snapshot() {
    let mut node = restarted(2, Some(snapshot()), &[(1, 4), (1, 5)]);
    node.handle(START, Input::Tick);
    node.handle(START, append_from_2(pos(2, 5), &[(2, 6)]));
    let body = PeerBody::AppendResponse {
        prev_index: LogIndex(5),
        outcome: AppendOutcome::Rejected { hint: LogIndex(4) },
    };
    assert_eq!(drain_unsynced(&mut node), vec![send(2, 2, body)]);
}

/// Guards the guard of the offset kept in `send_snapshot_chunk` (`Some((last, offset)) if last
/// == snapshot.last`): once the leader has taken a newer snapshot, a follower part-way through
/// the old one starts the new one from its first byte (its offset in the old one means nothing
/// in the new one).
#[test]
fn a_newer_snapshot_is_sent_from_its_first_byte() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut cfg = Config::new(NodeId(1), ids);
    cfg.snapshot_chunk = chunk();
    cfg.snapshot_every = 1;
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(1),
            voted_for: None,
        },
        snapshot: Some(snapshot()),
        entries: Vec::new(),
    };
    let mut node = Node::new(cfg, recovered).unwrap();
    let now = elect(&mut node, 2);
    drain_unsynced(&mut node);
    // Node 2 is part-way through the snapshot at (1, 3).
    let c = chunk();
    node.handle(now, peer(2, 2, reject(3, 1)));
    node.handle(now, peer(2, 2, snapshot_answer(pos(1, 3), c, false)));
    drain_unsynced(&mut node);
    // The Noop (2, 4) commits (the leader's copy and node 3's), applies, and one applied entry
    // since the last snapshot is enough for a new one.
    node.handle(now, Input::Persisted(pos(2, 4)));
    let accepted = PeerBody::AppendResponse {
        prev_index: LogIndex(3),
        outcome: AppendOutcome::Accepted {
            match_index: LogIndex(4),
        },
    };
    node.handle(now, peer(3, 2, accepted));
    drain_unsynced(&mut node);
    assert_eq!(node.commit_index(), LogIndex(4));
    // The next heartbeat re-sends node 2 a chunk: of the new snapshot, from byte 0.
    node.handle(now + Duration::from_millis(50), Input::Tick);
    let to_2: Vec<(LogPosition, u64)> = drain_unsynced(&mut node)
        .into_iter()
        .filter_map(|e| match e {
            Effect::Send(m) if m.to == NodeId(2) => match m.body {
                PeerBody::InstallSnapshot { last, offset, .. } => Some((last, offset)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(to_2, vec![(pos(2, 4), 0)]);
}
