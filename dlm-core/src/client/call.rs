//! What a caller asks of the client core, what it gets back, and the core's record of each
//! request it has numbered.

use super::error::NodeCause;
use crate::introspection::{LocksPage, MembersInfo, SessionsPage};
use crate::membership::Membership;
use crate::names::{FileName, LockName};
use crate::protocol::{Mode, NodeStatus, Op, WatchFrom, WatchPage};
use crate::types::{ClientId, FencingToken, NodeId, Seq, Time};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A caller's name for one call; chosen by the caller, unique among its calls in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallId(pub u64);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {}", self.0)
    }
}

/// How long an acquire may queue at the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: a try-lock.
    Try,
    /// At most this long; the whole call is bounded by it too.
    For(Duration),
    /// Without limit (while a leader can be reached).
    Forever,
}

/// One call a caller can make.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOp {
    /// Take `lock` in `mode` under the configured lease.
    Acquire {
        /// The lock.
        lock: LockName,
        /// How long to queue.
        wait: Wait,
        /// Which grant: [`Mode::Exclusive`] for a plain lock, a reader's or writer's grant of
        /// a shared lock, or a semaphore's permit.
        mode: Mode,
    },
    /// Give back the grant `token` of `lock`. Abandoning this call does not stop it.
    Release {
        /// The lock.
        lock: LockName,
        /// The grant's token.
        token: FencingToken,
    },
    /// Append `data` to `file` under the grant `token` of `lock`.
    Append {
        /// The lock guarding the file.
        lock: LockName,
        /// The grant's token.
        token: FencingToken,
        /// The file.
        file: FileName,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Read one chunk of `file` from `offset`.
    Read {
        /// The file.
        file: FileName,
        /// Where to start.
        offset: u64,
    },
    /// Ask `node` about itself.
    Status {
        /// The node.
        node: NodeId,
    },
    /// One page of the locks whose names start with `prefix`, after `after` (see
    /// [`Op::Locks`]). Admin only where the cluster authenticates.
    Locks {
        /// Only names that start with this.
        prefix: String,
        /// Continue after this name.
        after: Option<LockName>,
        /// At most this many.
        limit: u32,
    },
    /// One page of the client sessions after `after` (see [`Op::Sessions`]). Admin only
    /// where the cluster authenticates.
    Sessions {
        /// Continue after this client.
        after: Option<ClientId>,
        /// At most this many.
        limit: u32,
    },
    /// Force-release `lock` (see [`Op::Revoke`]). Admin only where the cluster authenticates.
    Revoke {
        /// The lock.
        lock: LockName,
    },
    /// A membership change, or the configuration in force. Admin only where the cluster
    /// authenticates.
    Membership(MembershipCall),
    /// Show `value` to `lock`'s observers under the grant `token` (see [`Op::Proclaim`]).
    Proclaim {
        /// The lock.
        lock: LockName,
        /// The caller's grant.
        token: FencingToken,
        /// What to show.
        value: Vec<u8>,
    },
    /// `lock`'s events from `from`, waiting at the leader at most `wait` when there are none
    /// (see [`Op::WatchLock`]). Keep `wait` below [`super::ClientConfig::attempt_timeout`], or
    /// the client takes the silence for a lost attempt.
    WatchLock {
        /// The lock.
        lock: LockName,
        /// Where to start.
        from: WatchFrom,
        /// How long the leader may hold the answer.
        wait: Duration,
    },
    /// `file`'s bytes from `offset`, waiting at the leader at most `wait` for some (see
    /// [`Op::TailFile`]).
    TailFile {
        /// The file.
        file: FileName,
        /// The first byte wanted.
        offset: u64,
        /// How long the leader may hold the answer.
        wait: Duration,
    },
}

/// The membership calls (see [`Op::AddLearner`], [`Op::Promote`], [`Op::Remove`],
/// [`Op::Members`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MembershipCall {
    /// Add `id`, reachable at `addr`, as a learner.
    AddLearner {
        /// The new member.
        id: NodeId,
        /// Where the transports reach it.
        addr: String,
    },
    /// Make learner `id` a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Take `id` out of the configuration.
    Remove {
        /// The member.
        id: NodeId,
    },
    /// The configuration in force, and how far each member has caught up.
    Members,
}

impl MembershipCall {
    /// The protocol operation that makes this call.
    pub(super) fn into_op(self) -> Op {
        match self {
            MembershipCall::AddLearner { id, addr } => Op::AddLearner { id, addr },
            MembershipCall::Promote { id } => Op::Promote { id },
            MembershipCall::Remove { id } => Op::Remove { id },
            MembershipCall::Members => Op::Members,
        }
    }
}

/// A call's successful outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Done {
    /// The lock is held under `token`, certainly until `safe_until` unless renewed.
    Granted {
        /// The lock.
        lock: LockName,
        /// The grant's fencing token.
        token: FencingToken,
        /// Until when the grant is certainly in force (see [`super::DriftBound`]).
        safe_until: Time,
    },
    /// Released.
    Released,
    /// Appended at `offset`.
    Appended {
        /// Where the data starts in the file.
        offset: u64,
    },
    /// A chunk of a file, and the file's length.
    Data {
        /// The bytes read.
        data: Vec<u8>,
        /// The file's length when read.
        len: u64,
    },
    /// A node's view of itself.
    Status(NodeStatus),
    /// A page of locks.
    Locks(LocksPage),
    /// A page of sessions.
    Sessions(SessionsPage),
    /// The revoked grant.
    Revoked {
        /// Who held it.
        client: ClientId,
        /// Its token, now refused.
        token: FencingToken,
    },
    /// The configuration a membership change made, once applied.
    Reconfigured(Membership),
    /// The configuration in force, from the leader.
    Members(MembersInfo),
    /// The value was proclaimed.
    Proclaimed,
    /// Events of a watched lock.
    Watched(WatchPage),
}

/// The lock `op` is about, for the ops that are about one lock's grant (acquire, release,
/// cancel; an append names its lock only to be checked against it).
pub(super) fn op_lock(op: &Op) -> Option<&LockName> {
    match op {
        Op::Release { lock, .. } | Op::Cancel { lock, .. } => Some(lock),
        _ => op.as_acquire().map(|a| a.lock),
    }
}

/// Why the core is sending a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A caller's call.
    Call(CallId),
    /// An acquire its caller gave up on, kept numbered until its cancel is answered.
    Abandoned,
    /// Undoing the abandoned acquire `acquire` of `lock`.
    Cancel {
        /// The lock.
        lock: LockName,
        /// The acquire's seq.
        acquire: Seq,
    },
    /// Renewing every held lease; grants numbered up to `grants` were entered before it.
    KeepAlive {
        /// `Core::grants` when it was numbered.
        grants: u64,
    },
    /// Giving back a grant no caller has (an abandoned release, a stray grant).
    GiveBack,
    /// Asking a node whether it still leads, for the waiting acquires sent to it.
    Probe(NodeId),
}

/// One numbered request the core is seeing through.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) purpose: Purpose,
    pub(super) op: Op,
    pub(super) session: ClientId,
    pub(super) seq: Seq,
    /// When it was first sent under its current seq: leases are counted from here.
    pub(super) first_sent: Option<Time>,
    /// Sent to this node last, awaiting its answer until `silent_at`.
    pub(super) at: Option<NodeId>,
    /// When the current attempt counts as unanswered.
    pub(super) silent_at: Time,
    /// When to send the next attempt (`Time::MAX` while one is out).
    pub(super) send_at: Time,
    /// Attempts that failed, for the back-off.
    pub(super) failures: u32,
    /// Attempts the known leader left unanswered in a row.
    pub(super) silences: u32,
    /// Hint hops followed in a row, bounded so two confused nodes cannot bounce it forever.
    pub(super) hops: usize,
    /// When the call gives up as a whole (its wait, or the deadline of a non-waiting call).
    pub(super) give_up_at: Time,
    /// When it gives up for lack of word from a leader.
    pub(super) contact_by: Time,
    /// Whether a leader has answered it, or been named to it, at all.
    pub(super) reached: bool,
    /// The last thing seen of each node.
    pub(super) causes: BTreeMap<NodeId, NodeCause>,
    /// Whether it was already re-sent in a fresh session once.
    pub(super) renewed: bool,
    /// Whether a stray grant of its lock was already given back for it.
    pub(super) gave_back: bool,
    /// Held back until a withdrawal or give-back of the same lock finishes.
    pub(super) deferred: bool,
    /// Sent to this node only (a status call), not to the leader.
    pub(super) pinned: Option<NodeId>,
    /// Sent no more, but its answer is still welcome until it gives up (a keep-alive a fresher
    /// one replaced).
    pub(super) retired: bool,
    /// For a waiting acquire: when to ask its node whether it still leads.
    pub(super) probe_at: Time,
    /// The node `probe_at` is for.
    pub(super) probed: Option<NodeId>,
}

impl Request {
    pub(super) fn new(
        purpose: Purpose,
        op: Op,
        session: ClientId,
        seq: Seq,
        give_up_at: Time,
    ) -> Request {
        Request {
            purpose,
            op,
            session,
            seq,
            first_sent: None,
            at: None,
            silent_at: Time::MAX,
            send_at: Time::MAX,
            failures: 0,
            silences: 0,
            hops: 0,
            give_up_at,
            contact_by: Time::MAX,
            reached: false,
            causes: BTreeMap::new(),
            renewed: false,
            gave_back: false,
            deferred: false,
            pinned: None,
            retired: false,
            probe_at: Time::MAX,
            probed: None,
        }
    }

    /// Gives it a new seq: a request never applied under its old one, sent again as new (so
    /// its lease is counted from its next send).
    pub(super) fn renumber(&mut self, seq: Seq) {
        self.seq = seq;
        self.first_sent = None;
        self.at = None;
        self.hops = 0;
        self.send_at = Time::ZERO;
    }

    /// A leader answered it or was named to it: for a waiting acquire, the service has it.
    pub(super) fn touch_leader(&mut self, now: Time, deadline: Duration) {
        self.reached = true;
        if self.contact_by != Time::MAX {
            self.contact_by = now + deadline;
        }
    }

    pub(super) fn waits(&self) -> bool {
        self.op.as_acquire().is_some_and(|a| a.wait.is_some())
    }

    pub(super) fn call(&self) -> Option<CallId> {
        match self.purpose {
            Purpose::Call(call) => Some(call),
            _ => None,
        }
    }

    /// The lock its op is about (acquire, release, cancel).
    pub(super) fn lock(&self) -> Option<&LockName> {
        op_lock(&self.op)
    }

    /// The earliest time the core must look at it again.
    pub(super) fn wake_at(&self) -> Time {
        let attempt = if self.deferred || self.retired {
            Time::MAX
        } else if self.at.is_some() {
            self.silent_at
        } else {
            self.send_at
        };
        let probe = if self.at.is_some() {
            self.probe_at
        } else {
            Time::MAX
        };
        attempt.min(self.give_up_at).min(self.contact_by).min(probe)
    }
}
