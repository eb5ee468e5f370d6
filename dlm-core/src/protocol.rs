//! What clients send and receive. These types go on the wire (serde + postcard) unchanged.

use crate::introspection::{LocksPage, MembersInfo, SessionsPage};
use crate::membership::{Membership, MembershipRejection};
use crate::names::{FileName, LockName};
use crate::types::{ClientId, FencingToken, LogIndex, NodeId, Seq, Term};
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
    /// The client has received answers for every seq below this one, so the service may forget
    /// them. A fresh client sends 1. Seqs below it are refused with [`Rejection::SeqBelowWatermark`].
    pub acked_below: Seq,
    /// What to do.
    pub op: Op,
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
    /// already a member. Not cached: a retry after success is refused as already a member.
    /// Admin only when the transport authenticates.
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
}

impl Op {
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
        )
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

/// A successful outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The lock is yours, under this token, for `lease` from when the grant was applied.
    Granted {
        /// The fencing token of this grant.
        token: FencingToken,
        /// The lease the grant runs under.
        lease: Duration,
    },
    /// The lock was released.
    Released,
    /// What a [`Op::Cancel`] found of the acquire it named, and undid.
    Cancelled(Withdrawn),
    /// Leases renewed: these are the locks the client still holds, with their tokens. A lock the
    /// client believed it held and that is missing here has been lost (its lease expired, or an
    /// operator revoked it: then it is also in `revoked`).
    KeptAlive {
        /// Locks held, with tokens.
        held: Vec<(LockName, FencingToken)>,
        /// Grants of this client that an operator revoked ([`Op::Revoke`]) and that it has not
        /// taken again since (the last few per session).
        revoked: Vec<(LockName, FencingToken)>,
    },
    /// The append was applied at byte `offset` of the file.
    Appended {
        /// Where the data starts in the file.
        offset: u64,
    },
    /// File contents from the requested offset, and the file's total length.
    Data {
        /// The bytes read.
        data: Vec<u8>,
        /// The file's length when it was read.
        len: u64,
    },
    /// A node's view of itself.
    Status(NodeStatus),
    /// One page of [`Op::Locks`].
    Locks(LocksPage),
    /// One page of [`Op::Sessions`].
    Sessions(SessionsPage),
    /// [`Op::Revoke`] ended this grant.
    Revoked {
        /// Who held it.
        client: ClientId,
        /// The grant's token; appends under it are refused from now on.
        token: FencingToken,
    },
    /// A membership change committed: the configuration it made.
    Reconfigured(Membership),
    /// The answer to [`Op::Members`].
    Members(MembersInfo),
}

/// What became of an acquire that a [`Op::Cancel`] undid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Withdrawn {
    /// It was queued and left the queue.
    Waiting,
    /// It had been granted with this token and was still held: the lock was released.
    Released {
        /// The token of the grant given back.
        token: FencingToken,
    },
    /// It had not arrived: it is refused in advance, so it can never be applied.
    Prevented,
    /// It had been answered without a grant, or its grant was already gone: nothing was held.
    Nothing,
}

/// A node's role in the consensus protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking peers whether an election could succeed, without disturbing anyone yet.
    PreCandidate,
    /// Standing for election in a new term.
    Candidate,
    /// Leads the cluster: the only node that answers client requests.
    Leader,
}

/// What `Op::Status` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node that answered.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of, if any.
    pub leader: Option<NodeId>,
    /// Highest log index known committed.
    pub commit: LogIndex,
    /// Highest log index applied to its state machine.
    pub applied: LogIndex,
    /// Its last log index.
    pub last_index: LogIndex,
}

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
    /// The acquire was withdrawn by the client ([`Op::Cancel`]): while it was queued, or in
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
    /// The client has too many requests answered but not acknowledged (raise `acked_below`).
    #[error("more than {max} unacknowledged requests in one session")]
    TooManyUnacked {
        /// The limit.
        max: usize,
    },
    /// The client's session expired (it was idle too long): its locks are gone and its earlier
    /// requests are forgotten. Start again with a new client id.
    #[error("session expired")]
    SessionExpired,
    /// The request's seq is below the watermark the client itself sent: it was answered before.
    #[error("seq below the acknowledged watermark")]
    SeqBelowWatermark,
    /// The operation cannot be carried out (for example `Status` placed in the log).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// An operator revoked this grant ([`Op::Revoke`]): the lock is no longer the client's.
    #[error("grant {token} was revoked by an operator")]
    Revoked {
        /// The revoked grant's token.
        token: FencingToken,
    },
    /// [`Op::Revoke`] of a lock nobody holds (never taken, released, expired or only waited for).
    #[error("lock is not held by anyone")]
    NotHeld,
    /// An admin operation ([`Op::is_admin`]) from a connection that did not prove the admin
    /// secret; why, in words.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// A membership change ([`Op::is_membership_change`]) was refused; why.
    #[error("membership change refused: {0}")]
    Membership(MembershipRejection),
}

impl Rejection {
    /// Whether a client should retry the same request elsewhere or later (the refusal says
    /// nothing about the request itself).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Rejection::NotLeader { .. })
    }
}
