//! What clients send and receive. These types go on the wire (serde + postcard) unchanged.

mod kinds;
mod rejection;
mod reply;
mod watch;

pub use kinds::{LockKind, Mode};
pub use rejection::Rejection;
pub use reply::{NodeStatus, Reply, Role, Withdrawn};
pub use watch::{
    EventPosition, HolderView, LockChange, LockEvent, LockView, WatchFrom, WatchPage, MAX_VALUE,
};

use crate::names::{FileName, LockName};
use crate::types::{ClientId, FencingToken, NodeId, Seq};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A client's request. The pair `(client, seq)` names it: a retry reuses both, so the service can
/// answer it with its first answer instead of applying it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Who asks; random, chosen by the client.
    pub client: ClientId,
    /// This request's number; the first request of a client has seq 1.
    pub seq: Seq,
    /// The client has received answers for every seq below this one except those in
    /// `pending`, so the service may forget them. A fresh client sends 1. Acknowledged seqs
    /// are refused with [`Rejection::SeqBelowWatermark`].
    pub acked_below: Seq,
    /// Seqs below `acked_below` the client still waits on (a queued acquire, typically), so
    /// that one long wait does not hold back the acknowledgement of every later answer. Their
    /// answers are kept, and they are applied if they arrive later, until a request
    /// acknowledges them. Sorted, at most [`MAX_PENDING`]; seqs at or above `acked_below` mean
    /// nothing here. The service's acknowledged set only grows: a seq a request acknowledged
    /// stays acknowledged whatever later requests say.
    pub pending: Vec<Seq>,
    /// What to do.
    pub op: Op,
}

/// Most seqs a request may name in [`ClientRequest::pending`]; a request naming more is
/// refused as [`Rejection::Invalid`].
pub const MAX_PENDING: usize = 64;

impl ClientRequest {
    /// A request acknowledging every seq below `acked_below` (none pending).
    pub fn new(client: ClientId, seq: Seq, acked_below: Seq, op: Op) -> ClientRequest {
        ClientRequest {
            client,
            seq,
            acked_below,
            pending: Vec::new(),
            op,
        }
    }
}

/// The operations a client can ask for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Take `lock` exclusively under a lease of `lease`. With `wait: None` this is a try-lock that
    /// answers [`Rejection::Busy`] at once; with `Some(d)` the request queues (FIFO) for at most
    /// `d` and then answers [`Rejection::TimedOut`]. `Duration::MAX` waits forever.
    Acquire {
        /// The lock.
        lock: LockName,
        /// How long the grant lasts without a keep-alive.
        lease: Duration,
        /// How long to queue; `None` for a try-lock.
        wait: Option<Duration>,
    },
    /// Give `lock` back; the head of its queue gets it at once.
    Release {
        /// The lock.
        lock: LockName,
        /// The token of the grant being released.
        token: FencingToken,
    },
    /// Undo this client's acquire `seq` of `lock`, whatever became of it, so that an acquire
    /// the client gave up on leaves nothing behind. The answer, [`Reply::Cancelled`], says
    /// what was found:
    /// - still queued: it leaves the queue (and is answered [`Rejection::Cancelled`]);
    /// - granted and still held under that grant: the lock is released, and the next waiter
    ///   granted, in the same entry;
    /// - not seen yet (the cancel overtook it): it is answered [`Rejection::Cancelled`] now, so
    ///   if it arrives later it is answered from the dedup cache and never applied;
    /// - answered otherwise, or granted and since lost: nothing to do.
    ///
    /// Naming the acquire by its seq keeps a late cancel from touching a newer acquire or grant.
    Cancel {
        /// The lock.
        lock: LockName,
        /// The seq of the acquire to withdraw.
        seq: Seq,
    },
    /// Renew the lease of every lock this client holds. Answered only once it is committed, so a
    /// deposed leader can never extend a lease.
    KeepAlive,
    /// Append `data` to `file`, provided the client holds `lock` with exactly `token`. A file is
    /// bound to the lock named by its first append.
    Append {
        /// The lock that guards the file.
        lock: LockName,
        /// The fencing token of the client's grant.
        token: FencingToken,
        /// The file.
        file: FileName,
        /// The bytes to append.
        data: Vec<u8>,
    },
    /// Read `file` from `offset` (at most the configured read chunk; read again for more).
    /// Linearizable, without a log entry or a sync (read-index): the leader answers from its
    /// state machine once a majority has confirmed its term in a round started after the read
    /// arrived, and it has applied everything committed when the read arrived. A read from a
    /// client whose session the leader does not know yet (typically its very first request)
    /// goes through the log instead, so that the session is opened.
    Read {
        /// The file.
        file: FileName,
        /// Where to start.
        offset: u64,
    },
    /// Ask the receiving node about itself (role, term, leader, commit index). Answered at once by
    /// any node, not through the log.
    Status,
    /// List the locks whose names start with `prefix` and sort after `after`, in name order, at
    /// most `limit` of them (and never more than [`crate::introspection::MAX_PAGE`] or about
    /// [`crate::introspection::PAGE_BYTES`]): holder, token, lease left, waiters. Linearizable
    /// like [`Op::Read`] (read-index), never in the log and opens no session. Admin only when
    /// the transport authenticates ([`Op::is_admin`]).
    Locks {
        /// Only names that start with this (empty: all).
        prefix: String,
        /// Continue after this name (the `next` of the previous page).
        after: Option<LockName>,
        /// At most this many.
        limit: u32,
    },
    /// List client sessions in id order after `after`, at most `limit` (bounded as
    /// [`Op::Locks`]): what each holds and waits for, and how long it has been idle. Linearizable
    /// like [`Op::Read`]; admin only when the transport authenticates.
    Sessions {
        /// Continue after this client (the `next` of the previous page).
        after: Option<ClientId>,
        /// At most this many.
        limit: u32,
    },
    /// Force-release `lock` whatever its holder (an operator's tool). Goes through the log: the
    /// grant ends, the head of the queue is granted under a newer token at once, and the revoked
    /// holder's later appends, releases and keep-alives are told [`Rejection::Revoked`] /
    /// `Reply::KeptAlive::revoked`. A lock nobody holds is refused with [`Rejection::NotHeld`].
    /// Admin only when the transport authenticates. The new grant does not wait for the old
    /// holder's lease, so the old holder's `safe_until` is no promise any more: until it hears
    /// of the revoke, only the fencing token keeps it out of the guarded resources.
    Revoke {
        /// The lock.
        lock: LockName,
    },
    /// Add node `id`, reachable at `addr`, as a learner: it receives the log and snapshots but
    /// neither votes nor counts towards a commit. Answered [`Reply::Reconfigured`] once the new
    /// configuration commits. Refused ([`Rejection::Membership`]) while another change is
    /// uncommitted, before the leader has committed an entry of its term, or if `id` is
    /// already a member at another address. Not cached: asked again once in force (same id,
    /// same address), it is answered with the configuration after a read-index round, so a
    /// join whose answer was lost can retry. Admin only when the transport authenticates.
    AddLearner {
        /// The new node.
        id: NodeId,
        /// Its address, for the transports.
        addr: String,
    },
    /// Make learner `id` a voter; refused unless its log is within
    /// [`crate::Config::promote_max_lag`] entries of the leader's (and as
    /// [`Op::AddLearner`]). Admin only when the transport authenticates.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Remove member `id` (voter or learner); the last voter cannot be removed. A leader that
    /// removes itself hands over and steps down once the change commits. Admin only when the
    /// transport authenticates.
    Remove {
        /// The member.
        id: NodeId,
    },
    /// The configuration as the leader has it (the latest appended), whether it has
    /// committed, and how far each member's log matches. Linearizable like [`Op::Locks`];
    /// admin only when the transport authenticates.
    Members,
    /// Take `lock` in `mode`: a reader's or writer's grant of a read-write lock, or one permit
    /// of a semaphore (see [`Mode`]); `Mode::Exclusive` is [`Op::Acquire`]. Queues, times out,
    /// is cancelled, renewed and revoked as [`Op::Acquire`] is, in the same FIFO queue: a
    /// waiting writer holds back the readers behind it, and the readers at the head of the
    /// queue are granted together, in one entry, as soon as no writer holds the lock. Every
    /// grant has its own lease and token. Refused with [`Rejection::WrongKind`] if the name
    /// exists as another kind (or a semaphore of another size).
    AcquireAs {
        /// The lock.
        lock: LockName,
        /// How long the grant lasts without a keep-alive.
        lease: Duration,
        /// How long to queue; `None` for a try-lock.
        wait: Option<Duration>,
        /// Which grant is wanted.
        mode: Mode,
    },
    /// Sets the value an election's leader shows its observers: `value` (at most
    /// [`MAX_VALUE`] bytes) for the grant `token` of `lock`, which the client must hold. Kept
    /// while that grant lasts; watchers of the lock see [`LockChange::Proclaimed`].
    Proclaim {
        /// The lock the election is about.
        lock: LockName,
        /// The client's grant.
        token: FencingToken,
        /// What to show.
        value: Vec<u8>,
    },
    /// The events of `lock` from `from` on (see [`WatchPage`]). Answered by the leader from its
    /// window of recent events, not through the log and without a session; when nothing is
    /// new, the answer waits until an event comes or `wait` passes (capped by the node), so a
    /// watcher long-polls. Refused [`Rejection::TooManyWatches`] when the node already holds
    /// as many waiting watches as it allows.
    WatchLock {
        /// The lock.
        lock: LockName,
        /// Where to start.
        from: WatchFrom,
        /// How long the answer may wait for an event.
        wait: Duration,
    },
    /// `file`'s bytes from `offset` on (a `tail -f`), answered [`Reply::Data`] as soon as the
    /// file is longer than `offset`, else after `wait` with no bytes. Like
    /// [`Op::WatchLock`], answered by the leader without the log.
    TailFile {
        /// The file.
        file: FileName,
        /// The first byte wanted.
        offset: u64,
        /// How long the answer may wait for bytes.
        wait: Duration,
    },
}

/// The parts of an acquire, whichever op carries it ([`Op::as_acquire`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcquireParts<'a> {
    /// The lock.
    pub lock: &'a LockName,
    /// The lease asked for.
    pub lease: Duration,
    /// How long it may queue; `None` for a try-lock.
    pub wait: Option<Duration>,
    /// The grant wanted.
    pub mode: Mode,
}

impl Op {
    /// The acquire this op is, if it is one ([`Op::Acquire`] or [`Op::AcquireAs`]), so that
    /// the rules about acquires are written once for both.
    pub fn as_acquire(&self) -> Option<AcquireParts<'_>> {
        match self {
            Op::Acquire { lock, lease, wait } => Some(AcquireParts {
                lock,
                lease: *lease,
                wait: *wait,
                mode: Mode::Exclusive,
            }),
            Op::AcquireAs {
                lock,
                lease,
                wait,
                mode,
            } => Some(AcquireParts {
                lock,
                lease: *lease,
                wait: *wait,
                mode: *mode,
            }),
            _ => None,
        }
    }

    /// An acquire of `lock` in `mode`: [`Op::Acquire`] for [`Mode::Exclusive`] (the op every
    /// version understands), [`Op::AcquireAs`] for the others.
    pub fn acquire(lock: LockName, lease: Duration, wait: Option<Duration>, mode: Mode) -> Op {
        match mode {
            Mode::Exclusive => Op::Acquire { lock, lease, wait },
            mode => Op::AcquireAs {
                lock,
                lease,
                wait,
                mode,
            },
        }
    }

    /// Whether answers to this op are kept in the dedup cache. Reads and status are idempotent and
    /// their answers can be large, so they are simply executed again on a retry.
    pub fn is_cached(&self) -> bool {
        !matches!(
            self,
            Op::Read { .. }
                | Op::Status
                | Op::Locks { .. }
                | Op::Sessions { .. }
                | Op::Members
                | Op::AddLearner { .. }
                | Op::Promote { .. }
                | Op::Remove { .. }
                | Op::WatchLock { .. }
                | Op::TailFile { .. }
        )
    }

    /// Whether this op waits at the leader for something to report rather than for the log
    /// ([`Op::WatchLock`], [`Op::TailFile`]).
    pub fn is_watch(&self) -> bool {
        matches!(self, Op::WatchLock { .. } | Op::TailFile { .. })
    }

    /// Whether this op is for operators: an authenticating transport carries it only from a
    /// connection that proved the admin secret, and answers any other with
    /// [`Rejection::NotAuthorized`].
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Op::Locks { .. }
                | Op::Sessions { .. }
                | Op::Revoke { .. }
                | Op::AddLearner { .. }
                | Op::Promote { .. }
                | Op::Remove { .. }
                | Op::Members
        )
    }

    /// Whether this op changes the cluster's configuration (one server at a time).
    pub fn is_membership_change(&self) -> bool {
        matches!(
            self,
            Op::AddLearner { .. } | Op::Promote { .. } | Op::Remove { .. }
        )
    }

    /// Whether this op is answered from the leader's state machine by read-index, without a log
    /// entry. Introspection never needs a session; a file read does (see [`Op::Read`]).
    pub fn is_query(&self) -> bool {
        matches!(self, Op::Locks { .. } | Op::Sessions { .. } | Op::Members)
    }
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    /// Whose request this answers.
    pub client: ClientId,
    /// Which request this answers.
    pub seq: Seq,
    /// The outcome.
    pub result: Result<Reply, Rejection>,
}
