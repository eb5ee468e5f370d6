//! Reading snapshots written before lock kinds (storage formats 1 and 2).
//!
//! Those snapshots are bare postcard encodings of the state machine, whose locks had one
//! optional holder and waiters without a mode; format 1 also lacked the configuration. Since
//! format 3 a snapshot starts with [`MAGIC`], which no older encoding can start with, so the
//! decoder knows which layout it reads instead of guessing from whether one decodes.

use super::lock_table::LockTable;
use super::{DetHasher, GuardedFile, Holder, LockState, Sessions, StateMachine, Waiter};
use crate::membership::Membership;
use crate::names::{FileName, LockName};
use crate::protocol::{LockKind, Mode};
use crate::types::{ClientId, FencingToken, Seq};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The start of every snapshot since storage format 3: ten bytes that cannot begin an older
/// one, which begins with the lock table's length as a varint (a tenth byte of a `u64` varint
/// is at most 1), then the layout's number: 4 since election values.
pub(super) const MAGIC: [u8; 11] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4,
];

/// The prefix of layout 3: lock kinds, no election values.
pub(super) const MAGIC_3: [u8; 11] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3,
];

/// The state as layout 3 serialised it: today's without the proclaimed values.
#[derive(Serialize, Deserialize)]
pub(super) struct Format3 {
    pub locks: LockTable,
    pub sessions: Sessions,
    pub files: Files,
    pub last_token: FencingToken,
    pub membership: Option<Membership>,
}

/// Reads a snapshot of layout 3 (after its prefix): nothing was proclaimed then.
pub(super) fn decode_layout3(bytes: &[u8]) -> Result<StateMachine, postcard::Error> {
    let old: Format3 = postcard::from_bytes(bytes)?;
    Ok(StateMachine {
        locks: old.locks,
        sessions: old.sessions,
        files: old.files,
        last_token: old.last_token,
        membership: old.membership,
        proclaimed: HashMap::default(),
    })
}

/// A lock before kinds: exclusive, one holder at most.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct OldLock {
    pub holder: Option<OldHolder>,
    pub waiters: VecDeque<OldWaiter>,
    pub delayed: bool,
}

/// A holder before kinds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct OldHolder {
    pub client: ClientId,
    pub token: FencingToken,
    pub lease: Duration,
    pub renewals: u64,
}

/// A waiter before kinds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct OldWaiter {
    pub client: ClientId,
    pub seq: Seq,
    pub lease: Duration,
    pub wait: Duration,
}

type OldLocks = HashMap<LockName, OldLock, DetHasher>;
type Files = HashMap<FileName, GuardedFile, DetHasher>;

/// The state as format 2 serialised it.
#[derive(Serialize, Deserialize)]
pub(super) struct Format2 {
    pub locks: OldLocks,
    pub sessions: Sessions,
    pub files: Files,
    pub last_token: FencingToken,
    pub membership: Option<Membership>,
}

/// The state as format 1 serialised it: format 2 without the configuration. A format-1
/// snapshot ends where this does, so format 2's layout fails on it (one byte short).
#[derive(Serialize, Deserialize)]
pub(super) struct Format1 {
    pub locks: OldLocks,
    pub sessions: Sessions,
    pub files: Files,
    pub last_token: FencingToken,
}

/// Reads a snapshot of format 2, or else of format 1.
pub(super) fn decode(bytes: &[u8]) -> Result<StateMachine, postcard::Error> {
    let old = postcard::from_bytes::<Format2>(bytes).or_else(|error| {
        postcard::from_bytes::<Format1>(bytes)
            .map(|f| Format2 {
                locks: f.locks,
                sessions: f.sessions,
                files: f.files,
                last_token: f.last_token,
                membership: None,
            })
            .map_err(|_| error)
    })?;
    Ok(StateMachine {
        locks: convert(old.locks),
        sessions: old.sessions,
        files: old.files,
        last_token: old.last_token,
        membership: old.membership,
        proclaimed: HashMap::default(),
    })
}

/// Every old lock was exclusive.
fn convert(old: OldLocks) -> LockTable {
    old.into_iter()
        .map(|(name, lock)| {
            let state = LockState {
                kind: LockKind::Exclusive,
                holders: lock
                    .holder
                    .into_iter()
                    .map(|h| Holder {
                        client: h.client,
                        token: h.token,
                        lease: h.lease,
                        renewals: h.renewals,
                        mode: Mode::Exclusive,
                    })
                    .collect(),
                waiters: lock
                    .waiters
                    .into_iter()
                    .map(|w| Waiter {
                        client: w.client,
                        seq: w.seq,
                        lease: w.lease,
                        wait: w.wait,
                        mode: Mode::Exclusive,
                    })
                    .collect(),
                delayed: lock.delayed,
            };
            (name, state)
        })
        .collect()
}

/// The old layout of an exclusive state (for tests that write old snapshots).
#[cfg(test)]
pub(super) fn old_locks(locks: &LockTable) -> OldLocks {
    locks
        .iter()
        .map(|(name, state)| {
            let lock = OldLock {
                holder: state.holder().map(|h| OldHolder {
                    client: h.client,
                    token: h.token,
                    lease: h.lease,
                    renewals: h.renewals,
                }),
                waiters: state
                    .waiters
                    .iter()
                    .map(|w| OldWaiter {
                        client: w.client,
                        seq: w.seq,
                        lease: w.lease,
                        wait: w.wait,
                    })
                    .collect(),
                delayed: state.delayed,
            };
            (name.clone(), lock)
        })
        .collect()
}
