//! Every wire type survives postcard unchanged, and bytes that are not a message decode to an
//! error, never a panic. The `*_kind` matches have no wildcard, so a new variant that is not
//! listed here stops this file from compiling.

use dlm_core::message::{AppendOutcome, PeerBody, PeerMessage};
use dlm_core::*;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::Duration;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) -> Vec<u8> {
    let bytes = postcard::to_allocvec(value).unwrap();
    let back: T = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(&back, value);
    // Every strict prefix is an error, never a panic (nor, for a non-empty message, a value).
    for cut in 0..bytes.len() {
        let _ = postcard::from_bytes::<T>(&bytes[..cut]);
    }
    bytes
}

fn ops() -> Vec<Op> {
    vec![
        Op::Acquire {
            lock: "lock/α".into(),
            lease: Duration::from_millis(1500),
            wait: Some(Duration::MAX),
        },
        Op::Acquire {
            lock: "l".into(),
            lease: Duration::from_secs(1),
            wait: None,
        },
        Op::Release {
            lock: "l".into(),
            token: FencingToken(u64::MAX),
        },
        Op::Cancel {
            lock: "l".into(),
            seq: Seq(3),
        },
        Op::KeepAlive,
        Op::Append {
            lock: "l".into(),
            token: FencingToken(7),
            file: "f".into(),
            data: vec![0, 1, 255],
        },
        Op::Read {
            file: "f".into(),
            offset: 1 << 40,
        },
        Op::Status,
        Op::Locks {
            prefix: "jobs/".into(),
            after: Some("jobs/7".into()),
            limit: 500,
        },
        Op::Sessions {
            after: Some(ClientId(9)),
            limit: 1,
        },
        Op::Revoke { lock: "l".into() },
        Op::AddLearner {
            id: NodeId(4),
            addr: "10.0.0.4:7400".into(),
        },
        Op::Promote { id: NodeId(4) },
        Op::Remove {
            id: NodeId(u64::MAX),
        },
        Op::Members,
        Op::AcquireAs {
            lock: "rw".into(),
            lease: Duration::from_secs(1),
            wait: Some(Duration::from_secs(2)),
            mode: Mode::Read,
        },
        Op::AcquireAs {
            lock: "rw".into(),
            lease: Duration::from_secs(1),
            wait: None,
            mode: Mode::Write,
        },
        Op::AcquireAs {
            lock: "sem".into(),
            lease: Duration::from_secs(1),
            wait: None,
            mode: Mode::Permit { permits: u32::MAX },
        },
        Op::AcquireAs {
            lock: "x".into(),
            lease: Duration::from_secs(1),
            wait: None,
            mode: Mode::Exclusive,
        },
        Op::Proclaim {
            lock: "election".into(),
            token: FencingToken(4),
            value: b"10.0.0.1:80".to_vec(),
        },
        Op::WatchLock {
            lock: "l".into(),
            from: WatchFrom::Now,
            wait: Duration::from_millis(500),
        },
        Op::WatchLock {
            lock: "l".into(),
            from: WatchFrom::After(EventPosition {
                index: LogIndex(9),
                n: 2,
            }),
            wait: Duration::MAX,
        },
        Op::TailFile {
            file: "f".into(),
            offset: 12,
            wait: Duration::from_secs(1),
        },
    ]
}

fn three_and_a_learner() -> Membership {
    Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)])
        .with_learner(NodeId(4), "h:4".into())
        .unwrap()
}

fn op_kind(op: &Op) -> u8 {
    match op {
        Op::Acquire { .. } => 0,
        Op::Release { .. } => 1,
        Op::Cancel { .. } => 2,
        Op::KeepAlive => 3,
        Op::Append { .. } => 4,
        Op::Read { .. } => 5,
        Op::Status => 6,
        Op::Locks { .. } => 7,
        Op::Sessions { .. } => 8,
        Op::Revoke { .. } => 9,
        Op::AddLearner { .. } => 10,
        Op::Promote { .. } => 11,
        Op::Remove { .. } => 12,
        Op::Members => 13,
        Op::AcquireAs { .. } => 14,
        Op::Proclaim { .. } => 15,
        Op::WatchLock { .. } => 16,
        Op::TailFile { .. } => 17,
    }
}

fn results() -> Vec<Result<Reply, Rejection>> {
    let d = Duration::from_millis(250);
    vec![
        Ok(Reply::Granted {
            token: FencingToken(3),
            lease: d,
        }),
        Ok(Reply::Released),
        Ok(Reply::Cancelled(Withdrawn::Waiting)),
        Ok(Reply::Cancelled(Withdrawn::Released {
            token: FencingToken(7),
        })),
        Ok(Reply::Cancelled(Withdrawn::Prevented)),
        Ok(Reply::Cancelled(Withdrawn::Nothing)),
        Ok(Reply::KeptAlive {
            held: vec![("a".into(), FencingToken(1)), ("b".into(), FencingToken(2))],
            revoked: vec![("c".into(), FencingToken(3))],
        }),
        Ok(Reply::Appended { offset: 99 }),
        Ok(Reply::Data {
            data: b"xyz".to_vec(),
            len: 3,
        }),
        Ok(Reply::Status(NodeStatus {
            id: NodeId(2),
            role: Role::PreCandidate,
            term: Term(4),
            leader: Some(NodeId(1)),
            commit: LogIndex(10),
            applied: LogIndex(9),
            last_index: LogIndex(12),
            leader_addr: "10.0.0.1:7001".into(),
        })),
        Ok(Reply::Locks(LocksPage {
            locks: vec![LockInfo {
                lock: "a".into(),
                kind: LockKind::Semaphore { permits: 3 },
                holders: vec![
                    HolderInfo {
                        client: ClientId(1),
                        mode: Mode::Permit { permits: 3 },
                        token: FencingToken(4),
                        lease: d,
                        lease_left: Some(d / 2),
                    },
                    HolderInfo {
                        client: ClientId(5),
                        mode: Mode::Permit { permits: 3 },
                        token: FencingToken(6),
                        lease: d,
                        lease_left: None,
                    },
                ],
                holding: 2,
                waiters: vec![ClientId(2)],
                waiting: 3,
                delayed: false,
            }],
            next: Some("a".into()),
        })),
        Ok(Reply::Sessions(SessionsPage {
            sessions: vec![SessionInfo {
                client: ClientId(1),
                held: vec!["a".into()],
                holding: 1,
                waiting_for: vec!["b".into()],
                waiting: 1,
                idle: None,
            }],
            next: None,
        })),
        Ok(Reply::Revoked {
            client: ClientId(5),
            token: FencingToken(6),
        }),
        Err(Rejection::Busy),
        Err(Rejection::TimedOut),
        Err(Rejection::Cancelled),
        Err(Rejection::NotHolder),
        Err(Rejection::StaleToken {
            presented: FencingToken(1),
        }),
        Err(Rejection::AlreadyHeld {
            token: FencingToken(2),
        }),
        Err(Rejection::AlreadyWaiting),
        Err(Rejection::NotLeader { hint: None }),
        Err(Rejection::NotLeader {
            hint: Some(NodeId(3)),
        }),
        Err(Rejection::WrongLock { guard: "g".into() }),
        Err(Rejection::NoSuchFile),
        Err(Rejection::BadName { max: 256 }),
        Err(Rejection::BadLease { min: d, max: d * 4 }),
        Err(Rejection::AppendTooLarge { max: 1 }),
        Err(Rejection::FileTooLarge { max: 2 }),
        Err(Rejection::TooManyWaiters { max: 3 }),
        Err(Rejection::TooManySessions { max: 4 }),
        Err(Rejection::TooManyUnacked { max: 5 }),
        Err(Rejection::SessionExpired),
        Err(Rejection::SeqBelowWatermark),
        Err(Rejection::Invalid("why".into())),
        Err(Rejection::Revoked {
            token: FencingToken(8),
        }),
        Err(Rejection::NotHeld),
        Err(Rejection::WrongKind {
            kind: LockKind::Shared,
        }),
        Err(Rejection::WrongKind {
            kind: LockKind::Semaphore { permits: 2 },
        }),
        Err(Rejection::NotExclusive),
        Err(Rejection::ValueTooLarge { max: MAX_VALUE }),
        Err(Rejection::TooManyWatches { max: 3 }),
        Ok(Reply::Proclaimed),
        Ok(Reply::Watched(WatchPage {
            state: Some(LockView {
                holders: vec![HolderView {
                    client: ClientId(2).tag(),
                    token: FencingToken(8),
                    mode: Mode::Write,
                }],
                waiting: 3,
                proclaimed: Some((FencingToken(8), b"v".to_vec())),
            }),
            state_at: EventPosition::end_of(LogIndex(4)),
            compacted: true,
            events: vec![
                LockEvent {
                    at: EventPosition {
                        index: LogIndex(5),
                        n: 0,
                    },
                    change: LockChange::Released {
                        token: FencingToken(8),
                    },
                },
                LockEvent {
                    at: EventPosition {
                        index: LogIndex(5),
                        n: 1,
                    },
                    change: LockChange::Granted {
                        client: ClientId(3).tag(),
                        token: FencingToken(9),
                        mode: Mode::Read,
                    },
                },
                LockEvent {
                    at: EventPosition {
                        index: LogIndex(6),
                        n: 0,
                    },
                    change: LockChange::Expired {
                        token: FencingToken(9),
                    },
                },
                LockEvent {
                    at: EventPosition {
                        index: LogIndex(7),
                        n: 0,
                    },
                    change: LockChange::Revoked {
                        token: FencingToken(10),
                    },
                },
                LockEvent {
                    at: EventPosition {
                        index: LogIndex(8),
                        n: 0,
                    },
                    change: LockChange::Proclaimed {
                        token: FencingToken(11),
                        value: vec![1, 2],
                    },
                },
                LockEvent {
                    at: EventPosition {
                        index: LogIndex(8),
                        n: 1,
                    },
                    change: LockChange::Queue { waiting: 0 },
                },
            ],
            resume: EventPosition::end_of(LogIndex(8)),
        })),
        Err(Rejection::NotAuthorized("who".into())),
        Ok(Reply::Reconfigured(three_and_a_learner())),
        Ok(Reply::Members(MembersInfo {
            leader: NodeId(1),
            config: three_and_a_learner(),
            index: LogIndex(12),
            committed: false,
            last_index: LogIndex(14),
            matched: vec![(NodeId(2), LogIndex(14)), (NodeId(4), LogIndex(3))],
        })),
        Err(Rejection::Membership(
            MembershipRejection::ChangeInProgress {
                index: LogIndex(12),
            },
        )),
        Err(Rejection::Membership(MembershipRejection::NotCaughtUp {
            id: NodeId(4),
            matched: LogIndex(3),
            last: LogIndex(2000),
            max_lag: 1000,
        })),
    ]
}

fn result_kind(r: &Result<Reply, Rejection>) -> u8 {
    match r {
        Ok(reply) => match reply {
            Reply::Granted { .. } => 0,
            Reply::Released => 1,
            Reply::Cancelled(_) => 2,
            Reply::KeptAlive { .. } => 3,
            Reply::Appended { .. } => 4,
            Reply::Data { .. } => 5,
            Reply::Status(_) => 6,
            Reply::Locks(_) => 7,
            Reply::Sessions(_) => 8,
            Reply::Revoked { .. } => 9,
            Reply::Reconfigured(_) => 33,
            Reply::Members(_) => 34,
            Reply::Proclaimed => 40,
            Reply::Watched(_) => 41,
        },
        Err(rejection) => match rejection {
            Rejection::Busy => 10,
            Rejection::TimedOut => 11,
            Rejection::Cancelled => 12,
            Rejection::NotHolder => 13,
            Rejection::StaleToken { .. } => 14,
            Rejection::AlreadyHeld { .. } => 15,
            Rejection::AlreadyWaiting => 16,
            Rejection::NotLeader { .. } => 17,
            Rejection::WrongLock { .. } => 18,
            Rejection::NoSuchFile => 19,
            Rejection::BadName { .. } => 20,
            Rejection::BadLease { .. } => 21,
            Rejection::AppendTooLarge { .. } => 22,
            Rejection::FileTooLarge { .. } => 23,
            Rejection::TooManyWaiters { .. } => 24,
            Rejection::TooManySessions { .. } => 25,
            Rejection::TooManyUnacked { .. } => 26,
            Rejection::SessionExpired => 27,
            Rejection::SeqBelowWatermark => 28,
            Rejection::Invalid(_) => 29,
            Rejection::Revoked { .. } => 30,
            Rejection::NotHeld => 31,
            Rejection::NotAuthorized(_) => 32,
            Rejection::Membership(_) => 35,
            Rejection::WrongKind { .. } => 36,
            Rejection::NotExclusive => 37,
            Rejection::ValueTooLarge { .. } => 38,
            Rejection::TooManyWatches { .. } => 39,
            // Rejection is non-exhaustive for users; a new kind must be added above and to
            // the samples.
            other => panic!("a rejection this test does not know: {other:?}"),
        },
    }
}

fn commands() -> Vec<Command> {
    let mut commands = vec![
        Command::Noop,
        Command::Expire {
            lock: "a".into(),
            token: FencingToken(5),
            renewals: 2,
        },
        Command::LiftDelay { lock: "a".into() },
        Command::CancelWait {
            lock: "a".into(),
            client: ClientId(u128::MAX),
            seq: Seq(9),
        },
        Command::ExpireSession {
            client: ClientId(1 << 100),
        },
        Command::Membership {
            config: three_and_a_learner(),
            client: ClientId(7),
            seq: Seq(2),
        },
    ];
    commands.extend(ops().into_iter().enumerate().map(|(i, op)| {
        Command::Client(ClientRequest {
            client: ClientId(i as u128),
            seq: Seq(i as u64 + 1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op,
        })
    }));
    commands
}

fn command_kind(c: &Command) -> u8 {
    match c {
        Command::Noop => 0,
        Command::Client(_) => 1,
        Command::Expire { .. } => 2,
        Command::LiftDelay { .. } => 3,
        Command::CancelWait { .. } => 4,
        Command::ExpireSession { .. } => 5,
        Command::Membership { .. } => 6,
    }
}

fn entries() -> Vec<Entry> {
    commands()
        .into_iter()
        .enumerate()
        .map(|(i, command)| Entry {
            term: Term(3),
            index: LogIndex(i as u64 + 1),
            command,
        })
        .collect()
}

fn bodies() -> Vec<PeerBody> {
    let last = LogPosition::new(Term(2), LogIndex(40));
    vec![
        PeerBody::AppendEntries {
            prev: last,
            entries: entries(),
            commit: LogIndex(39),
        },
        PeerBody::AppendEntries {
            prev: last,
            entries: vec![],
            commit: LogIndex(0),
        },
        PeerBody::AppendResponse {
            prev_index: LogIndex(40),
            outcome: AppendOutcome::Accepted {
                match_index: LogIndex(41),
            },
        },
        PeerBody::AppendResponse {
            prev_index: LogIndex(40),
            outcome: AppendOutcome::Rejected { hint: LogIndex(7) },
        },
        PeerBody::RequestVote {
            pre: true,
            last,
            transfer: false,
        },
        PeerBody::VoteResponse {
            pre: false,
            granted: true,
        },
        PeerBody::InstallSnapshot {
            last,
            size: 10,
            offset: 4,
            data: vec![9; 6],
        },
        PeerBody::SnapshotResponse {
            last,
            received: 10,
            done: true,
        },
        PeerBody::TimeoutNow,
        PeerBody::ReadIndex { round: u64::MAX },
        PeerBody::ReadIndexAck { round: 7 },
    ]
}

fn body_kind(b: &PeerBody) -> u8 {
    match b {
        PeerBody::AppendEntries { .. } => 0,
        PeerBody::AppendResponse { .. } => 1,
        PeerBody::RequestVote { .. } => 2,
        PeerBody::VoteResponse { .. } => 3,
        PeerBody::InstallSnapshot { .. } => 4,
        PeerBody::SnapshotResponse { .. } => 5,
        PeerBody::TimeoutNow => 6,
        PeerBody::ReadIndex { .. } => 7,
        PeerBody::ReadIndexAck { .. } => 8,
    }
}

fn all_kinds<T>(values: &[T], kind: impl Fn(&T) -> u8) -> BTreeSet<u8> {
    values.iter().map(kind).collect()
}

#[test]
fn every_client_request_round_trips() {
    let ops = ops();
    assert_eq!(all_kinds(&ops, op_kind).len(), 18);
    for (i, op) in ops.into_iter().enumerate() {
        round_trip(&ClientRequest {
            client: ClientId(0xdead_beef << 64 | i as u128),
            seq: Seq(u64::MAX - i as u64),
            acked_below: Seq(i as u64),
            pending: Vec::new(),
            op,
        });
    }
}

#[test]
fn every_client_response_round_trips() {
    let results = results();
    assert_eq!(all_kinds(&results, result_kind).len(), 42);
    for (i, result) in results.into_iter().enumerate() {
        round_trip(&ClientResponse {
            client: ClientId(i as u128),
            seq: Seq(i as u64),
            result,
        });
    }
}

#[test]
fn every_entry_and_peer_message_round_trips() {
    assert_eq!(all_kinds(&commands(), command_kind).len(), 7);
    for entry in entries() {
        round_trip(&entry);
    }
    let bodies = bodies();
    assert_eq!(all_kinds(&bodies, body_kind).len(), 9);
    for body in bodies {
        round_trip(&PeerMessage {
            from: NodeId(1),
            to: NodeId(u64::MAX),
            term: Term(5),
            body,
        });
    }
}

#[test]
fn snapshot_and_hard_state_round_trip() {
    round_trip(&Snapshot {
        last: LogPosition::new(Term(1), LogIndex(2)),
        data: vec![1, 2, 3],
    });
    round_trip(&HardState {
        term: Term(3),
        voted_for: Some(NodeId(2)),
    });
}

#[test]
fn truncated_messages_are_errors() {
    let request = ClientRequest {
        client: ClientId(1),
        seq: Seq(1),
        acked_below: Seq(1),
        pending: Vec::new(),
        op: ops().swap_remove(5),
    };
    let bytes = round_trip(&request);
    for cut in 0..bytes.len() {
        assert!(
            postcard::from_bytes::<ClientRequest>(&bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    // An unknown variant tag is an error too.
    let mut bad = postcard::to_allocvec(&Command::Noop).unwrap();
    bad[0] = 200;
    assert!(postcard::from_bytes::<Command>(&bad).is_err());
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = postcard::from_bytes::<ClientRequest>(&bytes);
        let _ = postcard::from_bytes::<ClientResponse>(&bytes);
        let _ = postcard::from_bytes::<PeerMessage>(&bytes);
        let _ = postcard::from_bytes::<Entry>(&bytes);
        let _ = StateMachine::from_bytes(&bytes);
    }

    #[test]
    fn flipped_bytes_never_panic(pick in 0usize..1000, flip in 1u8..=255) {
        let msg = PeerMessage {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: bodies().swap_remove(0),
        };
        let mut bytes = postcard::to_allocvec(&msg).unwrap();
        let at = pick % bytes.len();
        bytes[at] ^= flip;
        if let Ok(decoded) = postcard::from_bytes::<PeerMessage>(&bytes) {
            prop_assert_ne!(decoded, msg);
        }
    }
}

/// A client command without pending seqs is encoded exactly as before they existed (its four
/// fields), so that logs written before read the same; one with pending seqs round-trips whole
/// as a variant of its own, after the others.
#[test]
fn a_client_command_names_pending_seqs_only_when_it_has_some() {
    let plain = ClientRequest::new(ClientId(0), Seq(5), Seq(4), Op::KeepAlive);
    let encoded = round_trip(&Command::Client(plain.clone()));
    // The old layout by hand: the variant's index (1), then client, seq, acked_below and op.
    let mut old = vec![1u8];
    old.extend(postcard::to_allocvec(&ClientId(0)).unwrap());
    old.extend(postcard::to_allocvec(&Seq(5)).unwrap());
    old.extend(postcard::to_allocvec(&Seq(4)).unwrap());
    old.extend(postcard::to_allocvec(&Op::KeepAlive).unwrap());
    assert_eq!(encoded, old);

    let mut with = plain;
    with.pending = vec![Seq(1), Seq(3)];
    let encoded = round_trip(&Command::Client(with));
    assert_eq!(
        encoded[0], 7,
        "after Noop, Client, Expire, LiftDelay, CancelWait, ExpireSession, Membership"
    );
}
