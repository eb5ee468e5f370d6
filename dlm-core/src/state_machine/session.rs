//! Client sessions and the dedup cache: the state machine remembers the answer to each recent
//! `(client, seq)`, so a retried request gets its first answer and is never applied twice.

use crate::names::LockName;
use crate::protocol::{Rejection, Reply};
use crate::types::Seq;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the session knows about one of its requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Slot {
    /// An acquire queued on this lock; it is answered when granted or cancelled.
    Waiting(LockName),
    /// Answered; a retry gets this answer again.
    Done(Result<Reply, Rejection>),
}

/// One client's session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The client has acknowledged every answer below this seq.
    pub acked_below: Seq,
    /// Requests at or above the watermark that are waiting or answered.
    pub slots: BTreeMap<Seq, Slot>,
    /// Locks this client holds (a handful at most, so a vector beats a set).
    pub held: Vec<LockName>,
}

impl Session {
    /// Raises the watermark and forgets answers below it. Waiting slots stay: a client that
    /// acknowledges a request it has not been answered for is confused, but its queued acquire
    /// must still be answered or cancelled cleanly.
    pub fn advance_watermark(&mut self, acked_below: Seq) {
        if acked_below <= self.acked_below {
            return;
        }
        self.acked_below = acked_below;
        self.slots
            .retain(|seq, slot| *seq >= acked_below || matches!(slot, Slot::Waiting(_)));
    }

    /// Records that this client now holds `lock`.
    pub fn add_held(&mut self, lock: &LockName) {
        if !self.held.contains(lock) {
            self.held.push(lock.clone());
        }
    }

    /// Records that this client no longer holds `lock`.
    pub fn remove_held(&mut self, lock: &LockName) {
        self.held.retain(|l| l != lock);
    }

    /// Whether the session has nothing going on (holds nothing, waits for nothing).
    pub fn is_quiet(&self) -> bool {
        self.held.is_empty() && !self.slots.values().any(|s| matches!(s, Slot::Waiting(_)))
    }
}
