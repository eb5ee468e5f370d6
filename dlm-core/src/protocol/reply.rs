//! What a successful request gets back, and what a node says of itself.

use crate::introspection::{LocksPage, MembersInfo, SessionsPage};
use crate::membership::Membership;
use crate::names::LockName;
use crate::types::{ClientId, FencingToken, LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// What a [`Op::Cancel`](super::Op::Cancel) found of the acquire it named, and undid.
    Cancelled(Withdrawn),
    /// Leases renewed: these are the locks the client still holds, with their tokens. A lock the
    /// client believed it held and that is missing here has been lost (its lease expired, or an
    /// operator revoked it: then it is also in `revoked`).
    KeptAlive {
        /// Locks held, with tokens.
        held: Vec<(LockName, FencingToken)>,
        /// Grants of this client that an operator revoked ([`Op::Revoke`](super::Op::Revoke)) and that it has not
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
    /// One page of [`Op::Locks`](super::Op::Locks).
    Locks(LocksPage),
    /// One page of [`Op::Sessions`](super::Op::Sessions).
    Sessions(SessionsPage),
    /// [`Op::Revoke`](super::Op::Revoke) ended this grant.
    Revoked {
        /// Who held it.
        client: ClientId,
        /// The grant's token; appends under it are refused from now on.
        token: FencingToken,
    },
    /// A membership change committed: the configuration it made.
    Reconfigured(Membership),
    /// The answer to [`Op::Members`](super::Op::Members).
    Members(MembersInfo),
    /// The value was proclaimed ([`Op::Proclaim`](super::Op::Proclaim)).
    Proclaimed,
    /// Events of a watched lock ([`Op::WatchLock`](super::Op::WatchLock)).
    Watched(super::WatchPage),
}

/// What became of an acquire that a [`Op::Cancel`](super::Op::Cancel) undid.
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
    /// Where the leader it knows of listens, as its configuration says (empty when unknown),
    /// so that a node joining through any member can find the leader.
    pub leader_addr: String,
}
