//! Per-lock state: one holder at most and a FIFO queue of waiters. A lock with no holder, no
//! waiters and no lock-delay is removed, so an idle lock costs nothing.

use crate::names::LockName;
use crate::types::{ClientId, FencingToken, Seq};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::DetHasher;

/// The current grant of a lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Who holds it.
    pub client: ClientId,
    /// The grant's fencing token.
    pub token: FencingToken,
    /// The lease the grant runs under (deadlines are the leader's volatile state).
    pub lease: Duration,
    /// How many keep-alives have renewed this grant. An `Expire` names the count it saw, so a
    /// renewal committed between the proposal and the apply cancels the expiry instead of
    /// taking away a lock whose renewal was already confirmed to the client.
    pub renewals: u64,
}

/// A queued acquire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    /// Who waits.
    pub client: ClientId,
    /// The acquire request that waits; it is answered when granted.
    pub seq: Seq,
    /// Lease to grant with.
    pub lease: Duration,
    /// How long it may wait (the leader arms a timer from this).
    pub wait: Duration,
}

/// One lock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// The holder, if any.
    pub holder: Option<Holder>,
    /// Waiters in arrival order.
    pub waiters: VecDeque<Waiter>,
    /// In lock-delay after an expiry: nobody may be granted until `LiftDelay`.
    pub delayed: bool,
}

impl LockState {
    /// Nothing is held, queued or delayed: a new acquire is granted at once, and until then the
    /// lock can leave the table.
    pub fn is_idle(&self) -> bool {
        self.holder.is_none() && self.waiters.is_empty() && !self.delayed
    }

    /// Position of `client` in the queue.
    pub fn waiter_position(&self, client: ClientId) -> Option<usize> {
        self.waiters.iter().position(|w| w.client == client)
    }
}

/// All locks that are held, queued for, or delayed.
pub type LockTable = HashMap<LockName, LockState, DetHasher>;
