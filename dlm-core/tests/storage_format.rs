//! A guard on what the data directory holds. Entries, the hard state and snapshots are
//! postcard-encoded without field tags, so any change to their types changes what old bytes
//! mean. This test encodes one value of each kind, with every command and a state machine
//! holding every kind of state, and compares a checksum of the bytes with the one recorded
//! for the current `STORAGE_FORMAT`. When it fails, the encoding changed: raise
//! `STORAGE_FORMAT` (dlm-core/src/runtime/storage/format.rs), so that directories of the old
//! format are refused by name instead of misread, and record the new checksum here.
#![cfg(feature = "tokio")]

use dlm_core::runtime::STORAGE_FORMAT;
use dlm_core::*;
use std::time::Duration;

/// The checksum of the sample encodings, for each storage format (1: before membership
/// changes; its samples had no `Command::Membership`).
/// 3: lock kinds; its samples add shared and semaphore acquires. 4: elections (its samples
/// add a proclaimed value), in preallocated log segments with commit records
/// (`runtime_storage_crash.rs`, `storage_format_upgrade.rs`). 5: requests naming pending seqs
/// (`Command::Client` with `ClientRequest::pending`, encoded as a variant of its own after the
/// others; every format-4 encoding is unchanged, and its sample adds one).
const FINGERPRINTS: &[(u32, u32)] = &[
    (1, 0xa55b6d42),
    (2, 0x3ae14050),
    (3, 0x3e71c707),
    (4, 0x415cbde1),
    (5, 0x85383eed),
];

fn request(client: u128, seq: u64, op: Op) -> Command {
    Command::Client(ClientRequest {
        client: ClientId(client),
        seq: Seq(seq),
        acked_below: Seq(seq),
        pending: Vec::new(),
        op,
    })
}

fn acquire(lock: &str, wait: Option<u64>) -> Op {
    Op::Acquire {
        lock: LockName::from(lock),
        lease: Duration::from_secs(10),
        wait: wait.map(Duration::from_secs),
    }
}

fn acquire_as(lock: &str, wait: Option<u64>, mode: Mode) -> Op {
    Op::AcquireAs {
        lock: LockName::from(lock),
        lease: Duration::from_secs(10),
        wait: wait.map(Duration::from_secs),
        mode,
    }
}

/// One of every command, as the log holds them.
fn commands() -> Vec<Command> {
    vec![
        Command::Noop,
        request(1, 1, acquire("a", None)),
        request(2, 1, acquire("a", Some(30))),
        request(3, 1, acquire("b", Some(30))),
        request(4, 1, acquire_as("r", Some(30), Mode::Read)),
        request(5, 1, acquire_as("r", Some(30), Mode::Write)),
        request(6, 1, acquire_as("r", Some(30), Mode::Read)),
        request(7, 1, acquire_as("s", None, Mode::Permit { permits: 2 })),
        request(
            1,
            2,
            Op::Append {
                lock: LockName::from("a"),
                token: FencingToken(1),
                file: FileName::from("a.log"),
                data: b"hello".to_vec(),
            },
        ),
        request(1, 3, Op::KeepAlive),
        request(
            1,
            4,
            Op::Proclaim {
                lock: LockName::from("a"),
                token: FencingToken(1),
                value: b"leader-1".to_vec(),
            },
        ),
        request(
            9,
            1,
            Op::Revoke {
                lock: LockName::from("a"),
            },
        ),
        request(
            3,
            2,
            Op::Cancel {
                lock: LockName::from("b"),
                seq: Seq(1),
            },
        ),
        request(
            2,
            2,
            Op::Release {
                lock: LockName::from("a"),
                token: FencingToken(2),
            },
        ),
        Command::Expire {
            lock: LockName::from("b"),
            token: FencingToken(3),
            renewals: 0,
        },
        Command::LiftDelay {
            lock: LockName::from("b"),
        },
        Command::CancelWait {
            lock: LockName::from("b"),
            client: ClientId(3),
            seq: Seq(1),
        },
        Command::ExpireSession {
            client: ClientId(3),
        },
        Command::Membership {
            config: Membership::bootstrap([NodeId(1), NodeId(2), NodeId(3)])
                .with_learner(NodeId(4), "node4:7001".into())
                .unwrap(),
            client: ClientId(9),
            seq: Seq(2),
        },
        Command::Client(ClientRequest {
            client: ClientId(2),
            seq: Seq(3),
            acked_below: Seq(3),
            pending: vec![Seq(1)],
            op: Op::KeepAlive,
        }),
    ]
}

#[test]
fn the_persisted_encoding_is_the_one_recorded_for_this_storage_format() {
    let rules = Rules {
        limits: Limits::default(),
        lock_delay: true,
    };
    let mut sm = StateMachine::new();
    let mut out: Vec<Outcome> = Vec::new();
    let mut bytes = Vec::new();
    for (i, command) in commands().into_iter().enumerate() {
        sm.apply(&command, &rules, &mut out);
        let entry = Entry {
            term: Term(2),
            index: LogIndex(i as u64 + 1),
            command,
        };
        bytes.extend(postcard::to_allocvec(&entry).unwrap());
        // The state after each command: sessions, queues, holders, files, revokes, delays.
        bytes.extend(sm.to_bytes().unwrap());
    }
    let hard = HardState {
        term: Term(7),
        voted_for: Some(NodeId(2)),
    };
    bytes.extend(postcard::to_allocvec(&hard).unwrap());
    let snapshot = Snapshot {
        last: LogPosition {
            term: Term(2),
            index: LogIndex(13),
        },
        data: sm.to_bytes().unwrap(),
    };
    bytes.extend(postcard::to_allocvec(&snapshot).unwrap());

    let fingerprint = crc32fast::hash(&bytes);
    let recorded = FINGERPRINTS
        .iter()
        .find(|(format, _)| *format == STORAGE_FORMAT)
        .map(|(_, f)| *f);
    assert_eq!(
        recorded,
        Some(fingerprint),
        "the persisted encoding changed (checksum {fingerprint:#010x}): raise STORAGE_FORMAT \
         from {STORAGE_FORMAT} and record the checksum for the new format here"
    );
}
