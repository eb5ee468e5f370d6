//! Watches: a lock's history as a stream of events, and the values an election's leader
//! proclaims.
//!
//! Every node derives the same events from the same committed entries, so an event has one
//! position in the cluster ([`EventPosition`]: the entry's index and the event's place in it),
//! whichever node reports it. A watcher keeps the position of the last event it saw and asks
//! for what comes after it; asked again of another leader after a reconnect, it gets exactly
//! the events it has not seen. A node keeps a bounded window of recent events: a watcher whose
//! position fell out of it is answered with the lock's current state and `compacted` set,
//! never with a silent gap.

use super::Mode;
use crate::types::{ClientTag, FencingToken, LogIndex};
use serde::{Deserialize, Serialize};

/// Most bytes an election's proclaimed value may have: it is kept in the replicated state and
/// in every node's event window, so it is meant for an address or an id, not a payload.
pub const MAX_VALUE: usize = 4096;

/// Where an event sits in the cluster's history: the log entry that made it, and its place
/// among that entry's events. Positions only grow along a lock's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventPosition {
    /// The entry.
    pub index: LogIndex,
    /// The event's place among the entry's events; `u32::MAX` stands for "after all of them".
    pub n: u32,
}

impl EventPosition {
    /// The position after every event of entry `index`.
    pub const fn end_of(index: LogIndex) -> EventPosition {
        EventPosition { index, n: u32::MAX }
    }

    /// Whether this is the end of its entry (no event of the entry is after it).
    pub const fn is_end(self) -> bool {
        self.n == u32::MAX
    }
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchFrom {
    /// From the lock's current state: the first answer carries it, with the position to go on
    /// from.
    Now,
    /// From the event after this position (the `resume` of the previous answer).
    After(EventPosition),
}

/// One change of a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockChange {
    /// A grant: `client` holds the lock under `token` in `mode`.
    Granted {
        /// The new holder, by tag: a watcher must not learn the id that would let it act as
        /// the holder.
        client: ClientTag,
        /// Its grant's token.
        token: FencingToken,
        /// The mode it holds the lock in.
        mode: Mode,
    },
    /// The holder of `token` released it (or withdrew an acquire that had been granted).
    Released {
        /// The grant that ended.
        token: FencingToken,
    },
    /// The grant `token` ran out (its lease, or its client's session).
    Expired {
        /// The grant that ended.
        token: FencingToken,
    },
    /// An operator revoked the grant `token`.
    Revoked {
        /// The grant that ended.
        token: FencingToken,
    },
    /// The holder of `token` proclaimed `value` (an election's leader saying who it is).
    Proclaimed {
        /// The grant that proclaimed.
        token: FencingToken,
        /// What it proclaimed.
        value: Vec<u8>,
    },
    /// The number of acquires queued for the lock changed.
    Queue {
        /// How many wait now.
        waiting: u32,
    },
}

/// One event of a watched lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockEvent {
    /// Where it happened.
    pub at: EventPosition,
    /// What happened.
    pub change: LockChange,
}

/// One current grant of a lock, as a watch reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderView {
    /// The holder, by tag (see [`ClientTag`]).
    pub client: ClientTag,
    /// Its grant's token.
    pub token: FencingToken,
    /// The mode it holds the lock in.
    pub mode: Mode,
}

/// A lock's state at one position of its history (nothing held and nothing queued for a lock
/// that is not in the table).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockView {
    /// The current grants, oldest first.
    pub holders: Vec<HolderView>,
    /// How many acquires wait.
    pub waiting: u32,
    /// The value the current holder of this token proclaimed, if it did.
    pub proclaimed: Option<(FencingToken, Vec<u8>)>,
}

/// An answer to [`Op::WatchLock`](super::Op::WatchLock).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchPage {
    /// The lock's state at `state_at`: for a watch that starts now, or whose position fell out
    /// of the node's window of events (then `compacted` is set). The events follow it.
    pub state: Option<LockView>,
    /// Where `state` was taken (meaningful only with `state`).
    pub state_at: EventPosition,
    /// Whether `state` replaces events the node no longer keeps.
    pub compacted: bool,
    /// The events after the watcher's position (or after `state_at`), in order, at most one
    /// page of them; empty when none came within the watch's wait.
    pub events: Vec<LockEvent>,
    /// The position to ask from next time: everything up to it has been reported.
    pub resume: EventPosition,
}
