//! What goes into the replicated log. Everything that must survive a leader change is a command;
//! time-based decisions (expiry, wait time-outs) are made by the leader and proposed as commands,
//! because the state machine has no clock.

use crate::membership::Membership;
use crate::names::LockName;
use crate::protocol::ClientRequest;
use crate::types::{ClientId, FencingToken, LogIndex, LogPosition, Seq, Term};
use serde::{Deserialize, Serialize, Serializer};

#[path = "command_encoding.rs"]
mod encoding;

/// A command of the replicated state machine.
///
/// Encoded as it was before [`ClientRequest::pending`] existed whenever a request names no
/// pending seqs, so that logs written earlier read the same; a request that names some is
/// encoded as a variant of its own after the others (see `command_encoding.rs`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "encoding::Stored")]
pub enum Command {
    /// The first entry of every term: lets a new leader commit entries of earlier terms.
    Noop,
    /// A client's request, applied at most once per `(client, seq)`.
    Client(ClientRequest),
    /// The lease of `lock`'s grant `token` ran out on the leader.
    Expire {
        /// The lock.
        lock: LockName,
        /// The grant that expired; a later grant is left alone.
        token: FencingToken,
        /// The grant's renewal count the leader saw; a later renewal keeps the lock.
        renewals: u64,
    },
    /// The lock-delay after an expiry has passed; the lock may be granted again.
    LiftDelay {
        /// The lock.
        lock: LockName,
    },
    /// A queued acquire waited as long as it was allowed.
    CancelWait {
        /// The lock.
        lock: LockName,
        /// The waiting client.
        client: ClientId,
        /// The waiting request.
        seq: Seq,
    },
    /// A client session was idle for too long: its locks are released, its waits withdrawn.
    ExpireSession {
        /// The client.
        client: ClientId,
    },
    /// The cluster's configuration from this entry on. It takes effect on each node when
    /// appended, not when committed (single-server changes, see `ARCHITECTURE.md`); applying it
    /// records it in the replicated state (and so in snapshots) and answers the operator's
    /// request `(client, seq)` that asked for it.
    Membership {
        /// The new configuration.
        config: Membership,
        /// Who asked.
        client: ClientId,
        /// Which request asked.
        seq: Seq,
    },
}

impl Serialize for Command {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        encoding::StoredRef::from(self).serialize(serializer)
    }
}

/// An entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: Term,
    /// Its position.
    pub index: LogIndex,
    /// What to apply.
    pub command: Command,
}

impl Entry {
    /// The entry's position.
    pub fn position(&self) -> LogPosition {
        LogPosition::new(self.term, self.index)
    }
}
