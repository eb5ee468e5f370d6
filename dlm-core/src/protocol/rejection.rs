//! Why a request was refused: one typed reason per refusal.

use super::LockKind;
use crate::membership::MembershipRejection;
use crate::names::LockName;
use crate::types::{FencingToken, NodeId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why a request was refused. Every refusal is typed, so a client can act on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Try-lock on a lock that is held or has waiters.
    #[error("lock is busy")]
    Busy,
    /// The acquire waited as long as it was allowed to.
    #[error("timed out waiting for the lock")]
    TimedOut,
    /// The acquire was withdrawn by the client ([`Op::Cancel`](super::Op::Cancel)): while it was queued, or in
    /// advance, before it arrived.
    #[error("acquire cancelled")]
    Cancelled,
    /// The client does not hold the lock (it expired, or was never granted).
    #[error("client does not hold the lock")]
    NotHolder,
    /// The token is older than the lock's current grant: the lock was lost and given to someone else.
    #[error("stale fencing token {presented}")]
    StaleToken {
        /// The token the request carried.
        presented: FencingToken,
    },
    /// The client already holds this lock (locks are not re-entrant).
    #[error("client already holds the lock with token {token}")]
    AlreadyHeld {
        /// The token of the existing grant.
        token: FencingToken,
    },
    /// The client is already queued for this lock under another request.
    #[error("client is already waiting for this lock")]
    AlreadyWaiting,
    /// This node is not the leader; try `hint` if known.
    #[error("not the leader (hint: {hint:?})")]
    NotLeader {
        /// The leader this node knows of.
        hint: Option<NodeId>,
    },
    /// The file is bound to another lock.
    #[error("file is guarded by lock {guard}")]
    WrongLock {
        /// The lock the file is bound to.
        guard: LockName,
    },
    /// The file has never been written.
    #[error("no such file")]
    NoSuchFile,
    /// A lock or file name is empty or longer than the limit.
    #[error("name is empty or longer than {max} bytes")]
    BadName {
        /// The limit.
        max: usize,
    },
    /// The requested lease is outside the configured range.
    #[error("lease must be between {min:?} and {max:?}")]
    BadLease {
        /// Shortest lease accepted.
        min: Duration,
        /// Longest lease accepted.
        max: Duration,
    },
    /// The append is larger than the limit.
    #[error("append larger than {max} bytes")]
    AppendTooLarge {
        /// The limit.
        max: usize,
    },
    /// The append would make the file larger than the limit.
    #[error("file would exceed {max} bytes")]
    FileTooLarge {
        /// The limit.
        max: u64,
    },
    /// The lock's queue is full.
    #[error("more than {max} waiters on one lock")]
    TooManyWaiters {
        /// The limit.
        max: usize,
    },
    /// The service holds as many client sessions as it may.
    #[error("more than {max} client sessions")]
    TooManySessions {
        /// The limit.
        max: usize,
    },
    /// The client's session holds as many answers the client has not acknowledged as it may
    /// (`Limits::max_unacked`): the client must acknowledge some (raise `acked_below`, naming
    /// the seqs it still waits on in `pending`) before the service takes a new request.
    #[error("more than {max} unacknowledged requests in one session")]
    TooManyUnacked {
        /// The limit.
        max: usize,
    },
    /// The client's session expired (it was idle too long): its locks are gone and its earlier
    /// requests are forgotten. Start again with a new client id.
    #[error("session expired")]
    SessionExpired,
    /// The request's seq was acknowledged by the client itself (below a watermark it sent and
    /// not named pending): it was answered before, or it is a request the client moved on from.
    #[error("seq below the acknowledged watermark")]
    SeqBelowWatermark,
    /// The operation cannot be carried out (for example `Status` placed in the log).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An operator revoked this grant ([`Op::Revoke`](super::Op::Revoke)): the lock is no longer the client's.
    #[error("grant {token} was revoked by an operator")]
    Revoked {
        /// The revoked grant's token.
        token: FencingToken,
    },
    /// [`Op::Revoke`](super::Op::Revoke) of a lock nobody holds (never taken, released, expired or only waited for).
    #[error("lock is not held by anyone")]
    NotHeld,
    /// An admin operation ([`Op::is_admin`](super::Op::is_admin)) from a connection that did not prove the admin
    /// secret; why, in words.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// A membership change ([`Op::is_membership_change`](super::Op::is_membership_change)) was refused; why.
    #[error("membership change refused: {0}")]
    Membership(MembershipRejection),
    /// The acquire's mode does not fit the kind the lock has while it exists (a read of an
    /// exclusive lock, a permit of a semaphore of another size...): `kind` is what it is.
    #[error("lock is {kind}")]
    WrongKind {
        /// The lock's kind.
        kind: LockKind,
    },
    /// An append under a grant that does not exclude other holders (a reader's grant or a
    /// semaphore permit): only an exclusive or writer's grant guards a file.
    #[error("appending needs an exclusive grant")]
    NotExclusive,
    /// A proclaimed value longer than `max` bytes.
    #[error("value too large: at most {max} bytes")]
    ValueTooLarge {
        /// The most a value may have.
        max: usize,
    },
    /// The leader already holds as many waiting watches (and tails) as it allows; try later
    /// or elsewhere.
    #[error("too many watches waiting at this node (at most {max})")]
    TooManyWatches {
        /// The most it holds.
        max: usize,
    },
    /// The client's session already holds or waits for as many locks as one session may
    /// ([`crate::Limits::max_locks_per_session`]): release some (or let a wait end) first.
    /// The bound keeps every answer that lists a session's locks (a keep-alive's) within
    /// [`crate::frame::MAX_MESSAGE`].
    #[error("more than {max} locks held or waited for by one session")]
    TooManyLocks {
        /// The limit.
        max: usize,
    },
}

impl Rejection {
    /// Whether a client should retry the same request elsewhere or later (the refusal says
    /// nothing about the request itself).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Rejection::NotLeader { .. })
    }
}
