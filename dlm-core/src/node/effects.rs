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

/// An effect for the driver to execute, in the order they are polled.
///
/// **Contract:** a [`Effect::Persist`] must be durable before any effect polled after it is
/// executed. Effects polled before it may be executed before or while it is made durable. A
/// driver may merge a run of persists into one sync (group commit).
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
}
