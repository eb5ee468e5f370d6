//! Exact-effect tests of receiving a snapshot in chunks.

use super::*;
use crate::message::PeerMessage;
use crate::node::Effect;

const ME: NodeId = NodeId(2);
const LEADER: NodeId = NodeId(1);
const TERM: Term = Term(6);

fn snap() -> LogPosition {
    LogPosition::new(Term(5), LogIndex(40))
}

fn answer(received: u64, done: bool) -> Effect {
    Effect::Send(PeerMessage {
        from: ME,
        to: LEADER,
        term: TERM,
        body: PeerBody::SnapshotResponse {
            last: snap(),
            received,
            done,
        },
    })
}

/// Feeds one chunk from `from` in `term` to a follower that has committed up to 30, and
/// returns the completed snapshot, if any, and the effects.
fn chunk(
    incoming: &mut Option<IncomingSnapshot>,
    (from, term): (NodeId, Term),
    offset: u64,
    data: &[u8],
) -> (Option<Vec<u8>>, Vec<Effect>) {
    let cfg = Config::new(ME, [LEADER, ME, NodeId(3)]);
    let mut out = Output::default();
    let whole = SnapshotReceiver {
        cfg: &cfg,
        term,
        commit: LogIndex(30),
        incoming,
        out: &mut out,
    }
    .receive(from, snap(), 6, offset, data);
    (whole, std::iter::from_fn(|| out.pop()).collect())
}

const NOW: (NodeId, Term) = (LEADER, TERM);

#[test]
fn chunks_in_order_make_the_snapshot() {
    let mut incoming = None;
    assert_eq!(
        chunk(&mut incoming, NOW, 0, b"abc"),
        (None, vec![answer(3, false)])
    );
    assert_eq!(
        chunk(&mut incoming, NOW, 3, b"def"),
        (Some(b"abcdef".to_vec()), vec![])
    );
    assert!(incoming.is_none());
}

#[test]
fn a_chunk_out_of_place_is_answered_with_what_is_held() {
    let mut incoming = None;
    chunk(&mut incoming, NOW, 0, b"abc");
    // A repeated first chunk restarts nothing; a gap is not filled.
    assert_eq!(
        chunk(&mut incoming, NOW, 0, b"abc"),
        (None, vec![answer(3, false)])
    );
    assert_eq!(
        chunk(&mut incoming, NOW, 5, b"f"),
        (None, vec![answer(3, false)])
    );
    assert_eq!(
        chunk(&mut incoming, NOW, 3, b"def").0,
        Some(b"abcdef".to_vec())
    );
}

#[test]
fn a_transfer_cannot_start_in_the_middle() {
    let mut incoming = None;
    assert_eq!(
        chunk(&mut incoming, NOW, 3, b"def"),
        (None, vec![answer(0, false)])
    );
    assert!(incoming.is_none());
}

#[test]
fn another_leaders_chunks_are_never_mixed_in() {
    let mut incoming = None;
    chunk(&mut incoming, NOW, 0, b"abc");
    // The next leader (a new term) continues at offset 3: it must start over instead.
    let next_leader = (NodeId(3), Term(7));
    let (whole, effects) = chunk(&mut incoming, next_leader, 3, b"DEF");
    assert_eq!(whole, None);
    assert_eq!(effects.len(), 1);
    assert!(incoming.is_none(), "the old transfer is dropped");
}

#[test]
fn a_snapshot_at_or_below_the_commit_index_is_done_at_once() {
    let cfg = Config::new(ME, [LEADER, ME, NodeId(3)]);
    let mut out = Output::default();
    let mut incoming = Some(((LEADER, TERM), snap(), 6, b"abc".to_vec()));
    let whole = SnapshotReceiver {
        cfg: &cfg,
        term: TERM,
        commit: LogIndex(40),
        incoming: &mut incoming,
        out: &mut out,
    }
    .receive(LEADER, snap(), 6, 3, b"def");
    assert_eq!(whole, None);
    assert_eq!(out.pop(), Some(answer(6, true)));
    assert!(incoming.is_none());
}
