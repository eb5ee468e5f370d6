//! `entry_size` is an upper bound of an entry's encoded size for every kind of command, so
//! that the batch byte budget bounds an AppendEntries (see `crate::frame`).

use super::entry_size;
use crate::command::{Command, Entry};
use crate::membership::Membership;
use crate::names::{FileName, LockName};
use crate::protocol::{ClientRequest, EventPosition, Mode, Op, WatchFrom, MAX_PENDING, MAX_VALUE};
use crate::types::{ClientId, FencingToken, LogIndex, NodeId, Seq, Term};
use std::time::Duration;

/// Every op, with each fixed field at its widest encoding and names and payloads of `len`
/// bytes.
fn ops(len: usize) -> Vec<Op> {
    let lock = || LockName::from("l".repeat(len));
    let file = || FileName::from("f".repeat(len));
    let long = Duration::MAX;
    vec![
        Op::Acquire {
            lock: lock(),
            lease: long,
            wait: Some(long),
        },
        Op::AcquireAs {
            lock: lock(),
            lease: long,
            wait: Some(long),
            mode: Mode::Permit { permits: u32::MAX },
        },
        Op::Release {
            lock: lock(),
            token: FencingToken(u64::MAX),
        },
        Op::Cancel {
            lock: lock(),
            seq: Seq(u64::MAX),
        },
        Op::KeepAlive,
        Op::Append {
            lock: lock(),
            token: FencingToken(u64::MAX),
            file: file(),
            data: vec![7; len * 16],
        },
        Op::Read {
            file: file(),
            offset: u64::MAX,
        },
        Op::Status,
        Op::Locks {
            prefix: "p".repeat(len),
            after: Some(lock()),
            limit: u32::MAX,
        },
        Op::Sessions {
            after: Some(ClientId(u128::MAX)),
            limit: u32::MAX,
        },
        Op::Revoke { lock: lock() },
        Op::AddLearner {
            id: NodeId(u64::MAX),
            addr: "a".repeat(len),
        },
        Op::Promote {
            id: NodeId(u64::MAX),
        },
        Op::Remove {
            id: NodeId(u64::MAX),
        },
        Op::Members,
        Op::Proclaim {
            lock: lock(),
            token: FencingToken(u64::MAX),
            value: vec![7; MAX_VALUE],
        },
        Op::WatchLock {
            lock: lock(),
            from: WatchFrom::After(EventPosition {
                index: LogIndex(u64::MAX),
                n: u32::MAX,
            }),
            wait: long,
        },
        Op::TailFile {
            file: file(),
            offset: u64::MAX,
            wait: long,
        },
    ]
}

/// Every command, the client's with each op.
fn commands(len: usize) -> Vec<Command> {
    let lock = || LockName::from("l".repeat(len));
    let mut config = Membership::bootstrap((1..=7).map(NodeId));
    for id in 8..=9 {
        if let Ok(next) = config.with_learner(NodeId(u64::MAX - id), "a".repeat(len)) {
            config = next;
        }
    }
    let mut commands = vec![
        Command::Noop,
        Command::Expire {
            lock: lock(),
            token: FencingToken(u64::MAX),
            renewals: u64::MAX,
        },
        Command::LiftDelay { lock: lock() },
        Command::CancelWait {
            lock: lock(),
            client: ClientId(u128::MAX),
            seq: Seq(u64::MAX),
        },
        Command::ExpireSession {
            client: ClientId(u128::MAX),
        },
        Command::Membership {
            config,
            client: ClientId(u128::MAX),
            seq: Seq(u64::MAX),
        },
    ];
    // Each op with no pending seqs (the old layout) and with as many as a request may name.
    commands.extend(ops(len).into_iter().flat_map(|op| {
        [Vec::new(), vec![Seq(u64::MAX); MAX_PENDING]].map(|pending| {
            Command::Client(ClientRequest {
                client: ClientId(u128::MAX),
                seq: Seq(u64::MAX),
                acked_below: Seq(u64::MAX),
                pending,
                op: op.clone(),
            })
        })
    }));
    commands
}

/// No entry encodes to more than `entry_size` says, whatever its kind, field values and
/// lengths (a length over 127 takes a longer prefix, one over 16 K longer still).
#[test]
fn entry_size_bounds_the_encoding_of_every_command() {
    for len in [0, 1, 200, 20_000] {
        for command in commands(len) {
            let entry = Entry {
                term: Term(u64::MAX),
                index: LogIndex(u64::MAX),
                command,
            };
            let encoded = postcard::to_allocvec(&entry).map_or(usize::MAX, |b| b.len());
            assert!(
                encoded <= entry_size(&entry),
                "{} bytes encoded, {} estimated: {:?}",
                encoded,
                entry_size(&entry),
                entry.command
            );
        }
    }
}

/// The bound counts a proclaim's value and name (it once counted 32 bytes for any proclaim,
/// so that a batch of them could be twenty times the byte budget).
#[test]
fn a_proclaim_counts_its_value_and_name() {
    let proclaim = |value: usize| Entry {
        term: Term(1),
        index: LogIndex(1),
        command: Command::Client(ClientRequest {
            client: ClientId(1),
            seq: Seq(1),
            acked_below: Seq(1),
            pending: Vec::new(),
            op: Op::Proclaim {
                lock: LockName::from("election"),
                token: FencingToken(1),
                value: vec![0; value],
            },
        }),
    };
    assert_eq!(
        entry_size(&proclaim(MAX_VALUE)) - entry_size(&proclaim(0)),
        MAX_VALUE
    );
    assert!(entry_size(&proclaim(MAX_VALUE)) > MAX_VALUE + "election".len());
}
