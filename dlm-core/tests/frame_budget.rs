//! Messages the core builds for legal inputs fit the TCP transport's frame
//! (`dlm_transport_tcp::DEFAULT_MAX_FRAME`, 4 MiB of postcard payload, which is
//! `dlm_core::MAX_MESSAGE`). The TCP transport logs and drops a reply or peer message over the
//! limit, so a message that cannot fit is one that never arrives, however often it is
//! retried.

mod common;

use common::*;
use dlm_core::message::{AppendOutcome, PeerBody, PeerMessage};
use dlm_core::*;
use std::time::Duration;

/// `dlm_transport_tcp::DEFAULT_MAX_FRAME` (dlm-core cannot depend on the TCP crate; the
/// facade's tests check that the two agree).
const TCP_MAX_FRAME: usize = MAX_MESSAGE;

fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    postcard::to_allocvec(value).map_or(usize::MAX, |bytes| bytes.len())
}

fn long_name(i: usize) -> LockName {
    // The longest name the default limits allow.
    LockName::from(format!("{i:0>256}").as_str())
}

fn apply(sm: &mut StateMachine, client: u128, seq: u64, op: Op) -> Vec<Outcome> {
    let command = Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        // Everything before is acknowledged: the session's cache stays within max_unacked.
        acked_below: Seq(seq),
        pending: Vec::new(),
        op,
    });
    let rules = Rules {
        limits: Limits::default(),
        lock_delay: false,
    };
    let mut out = Vec::new();
    sm.apply(&command, &rules, &mut out);
    out
}

/// A keep-alive's answer lists every lock the session holds (`state_machine/grants.rs`,
/// `renew`), so the locks one session may hold are bounded
/// (`Limits::max_locks_per_session`): an acquire past the bound is refused
/// `Rejection::TooManyLocks`, and the answer for a session holding as many locks as it may,
/// with names as long as they may be, fits the frame. Unbounded, 16,500 locks of 256-byte
/// names made a 4.3 MB answer that the transport dropped: the client, never answered,
/// reported every lock lost while the service went on renewing them.
#[test]
fn a_keepalive_answer_for_a_session_holding_many_locks_fits_a_tcp_frame() {
    let mut sm = StateMachine::new();
    let client = 7;
    let max = Limits::default().max_locks_per_session;
    let mut refused = None;
    for i in 0..16_500 {
        let op = Op::acquire(long_name(i), Duration::from_secs(60), None, Mode::Exclusive);
        let out = apply(&mut sm, client, i as u64 + 1, op);
        let granted = out.iter().any(|o| matches!(o, Outcome::Granted { .. }));
        if !granted {
            refused = Some((i, out));
            break;
        }
    }
    let (at, out) = refused.expect("some acquire of 16,500 is refused");
    assert_eq!(at, max, "the acquire refused is the one past the bound");
    assert!(
        out.iter().any(|o| matches!(
            o,
            Outcome::Reply(ClientResponse {
                result: Err(Rejection::TooManyLocks { max: m }),
                ..
            }) if *m == max
        )),
        "refused with TooManyLocks: {out:?}"
    );
    let out = apply(&mut sm, client, at as u64 + 2, Op::KeepAlive);
    let response = out
        .iter()
        .find_map(|o| match o {
            Outcome::Reply(response) => Some(response.clone()),
            _ => None,
        })
        .expect("the keep-alive is answered");
    let Ok(Reply::KeptAlive { held, .. }) = &response.result else {
        panic!("a keep-alive answer: {response:?}");
    };
    assert_eq!(held.len(), max);
    let len = encoded_len(&response);
    eprintln!("a keep-alive answer for {max} locks of 256-byte names: {len} bytes");
    assert!(
        len <= TCP_MAX_FRAME,
        "a keep-alive answer of {len} bytes for {max} held locks exceeds the TCP frame \
         limit of {TCP_MAX_FRAME}: the transport drops it"
    );
}

/// A batch of entries is bounded by `max_batch_bytes`, counting each entry by an upper bound
/// of its encoding (`log::entry_size`), whatever its kind: a follower 2,000 proclaims of the
/// largest value behind is sent AppendEntries that fit the frame. When proclaims counted 32
/// bytes whatever their value and name, it was sent all 2,000 in one AppendEntries (up to
/// `max_batch_entries`, 4096), 8.7 MB: the transport dropped it, the leader sent the same batch again, and the
/// follower never caught up (the cluster stops committing if it needs that follower).
#[test]
fn an_append_entries_to_a_lagging_follower_fits_a_tcp_frame() {
    let (mut node, now) = leader_of_three();
    let proclaims = 2_000u64;
    for i in 0..proclaims {
        // Each from its own new session: the leader proposes it (the grant is checked when the
        // entry applies, which does not matter here).
        let request = ClientRequest {
            client: ClientId(1_000 + u128::from(i)),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Proclaim {
                lock: long_name(i as usize),
                token: FencingToken(1),
                value: vec![b'v'; MAX_VALUE],
            },
        };
        node.handle(
            now,
            Input::Client {
                conn: ConnId(1),
                request,
            },
        );
    }
    let mut sent = drain_unsynced(&mut node);
    // Node 3 answers that it has nothing: the leader sends it everything from the start.
    let rejected = PeerBody::AppendResponse {
        prev_index: LogIndex(0),
        outcome: AppendOutcome::Rejected { hint: LogIndex(1) },
    };
    node.handle(now, peer(3, 1, rejected));
    sent.extend(drain_unsynced(&mut node));
    node.handle(now + Duration::from_secs(1), Input::Tick);
    sent.extend(drain_unsynced(&mut node));
    let biggest = sent
        .iter()
        .filter_map(|e| match e {
            Effect::Send(msg) => Some(msg),
            _ => None,
        })
        .map(|msg: &PeerMessage| {
            let entries = match &msg.body {
                PeerBody::AppendEntries { entries, .. } => entries.len(),
                _ => 0,
            };
            (encoded_len(msg), entries)
        })
        .max()
        .expect("the leader sends something");
    eprintln!(
        "the largest AppendEntries to a follower 2,000 proclaims behind: {} bytes, {} entries",
        biggest.0, biggest.1
    );
    assert!(
        biggest.0 <= TCP_MAX_FRAME,
        "the leader built an AppendEntries of {} bytes ({} entries of legal proclaims), over \
         the TCP frame limit of {TCP_MAX_FRAME}: the transport drops it, every time",
        biggest.0,
        biggest.1
    );
}
