//! What a node asks its driver to do, and what a driver hands a node when it starts.

use crate::command::Entry;
use crate::message::PeerMessage;
use crate::names::FileName;
use crate::protocol::ClientResponse;
use crate::types::{ConnId, LogPosition, NodeId, Term};
use serde::{Deserialize, Serialize};

/// The state a node must find again after a crash before it may speak: its term and its vote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// Whom it voted for in that term.
    pub voted_for: Option<NodeId>,
}

/// A serialised state machine and the last log entry it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last entry applied to the state in `data`.
    pub last: LogPosition,
    /// The state machine, postcard-encoded.
    pub data: Vec<u8>,
}

/// Something to make durable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Replace the hard state.
    HardState(HardState),
    /// Write these entries: first remove every stored entry at or after the first one's index
    /// (a conflicting suffix), then append them in order.
    Entries(Vec<Entry>),
    /// Store this snapshot. Stored entries it covers may be deleted. With `replaces_log`, it was
    /// received from the leader and every stored entry must go (the log starts after it).
    Snapshot {
        /// The snapshot.
        snapshot: std::sync::Arc<Snapshot>,
        /// Discard the whole stored log.
        replaces_log: bool,
    },
}

impl Persist {
    /// Where the stored log ends once this persist is durable, if it moves that end: the last
    /// of its entries, or a snapshot that replaces the log. The driver reports the last such
    /// position of each sync back as [`Input::Persisted`].
    pub fn log_position(&self) -> Option<LogPosition> {
        match self {
            Persist::Entries(entries) => entries.last().map(Entry::position),
            Persist::Snapshot {
                snapshot,
                replaces_log: true,
            } => Some(snapshot.last),
            Persist::Snapshot { .. } | Persist::HardState(_) => None,
        }
    }
}

/// What was applied, for drivers that mirror guarded files to disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// `data` was appended to `file` at `offset`.
    Appended {
        /// The file.
        file: FileName,
        /// Where the bytes start.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The whole state machine was replaced from a snapshot: rebuild every mirrored file from
    /// [`crate::Node::state_machine`].
    Restored,
}

/// An effect for the driver to execute.
///
/// **Contract.**
/// - Persists are made durable in the order they are polled; a driver may merge any run of
///   them into one sync (group commit), and may keep syncing while it goes on polling.
/// - An effect for which [`Effect::waits_for_persist`] is true (an acknowledgement, a vote, a
///   snapshot answer: a promise about this node's storage) is executed only once every persist
///   polled before it is durable.
/// - Every other effect may be executed at once, while earlier persists are still syncing.
/// - Once a sync is durable, the driver reports the last [`Persist::log_position`] it covered
///   as [`Input::Persisted`]. A leader counts its own copy of an entry only from that report,
///   so the commits, replies and file changes that depend on it wait for it by themselves.
///
/// A synchronous driver that makes each persist durable on the spot and reports it at once
/// meets the contract trivially.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Effect {
    /// Make this durable.
    Persist(Persist),
    /// Send a message to a peer (best effort: losing it is fine).
    Send(PeerMessage),
    /// Answer a client connection (best effort: the client retries).
    Reply {
        /// The connection that asked.
        conn: ConnId,
        /// The answer.
        response: ClientResponse,
    },
    /// A committed command changed a guarded file.
    Applied(Applied),
}

impl Effect {
    /// Whether this effect promises something about this node's storage, and so may only be
    /// executed once every persist polled before it is durable (see [`Effect`]).
    pub fn waits_for_persist(&self) -> bool {
        match self {
            Effect::Send(msg) => msg.body.promises_storage(),
            Effect::Persist(_) | Effect::Reply { .. } | Effect::Applied(_) => false,
        }
    }
}

/// What a driver recovered from storage, to start a node from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The term and vote.
    pub hard_state: HardState,
    /// The latest snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log entries after the snapshot, in order.
    pub entries: Vec<Entry>,
}

/// Inputs to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A message from a peer.
    Peer(PeerMessage),
    /// A request from a client, on connection `conn`.
    Client {
        /// Where to send the answer.
        conn: ConnId,
        /// The request.
        request: crate::protocol::ClientRequest,
    },
    /// Time has passed; run whatever timers are due. Spurious ticks are harmless.
    Tick,
    /// Every persist up to the one whose [`Persist::log_position`] is this is durable. A
    /// report that no longer matches the log (the entry was replaced meanwhile) counts for
    /// nothing, so a late report is harmless.
    Persisted(LogPosition),
    /// The driver is about to stop this node: if it leads, it hands leadership to the most
    /// caught-up member that answers, so the cluster need not wait an election time-out. Keep
    /// driving the node until it is no longer leader or an election time-out has passed.
    HandOver,
}
