//! What operators see: the answers to [`crate::Op::Locks`] and [`crate::Op::Sessions`].
//!
//! Answers come in pages so that a table of a million locks never makes one giant frame: a page
//! has at most [`MAX_PAGE`] rows, stops once its names add up to about [`PAGE_BYTES`], and lists
//! at most [`MAX_LISTED`] waiters or locks per row (with the full count beside). Its `next` is
//! the `after` of the following page; `None` means this was the last.

use crate::membership::Membership;
use crate::names::LockName;
use crate::protocol::{LockKind, Mode};
use crate::types::{ClientId, FencingToken, LogIndex, NodeId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Most rows in one page, whatever limit was asked for.
pub const MAX_PAGE: u32 = 500;
/// A page stops growing once its rows' names add up to this many bytes (a page always has at
/// least one row if any is left), so that an answer stays far below any frame limit.
pub const PAGE_BYTES: usize = 256 * 1024;
/// Most waiters (of a lock) or locks (of a session) listed in one row.
pub const MAX_LISTED: usize = 8;

/// One lock that is held, queued for, or in lock-delay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The lock.
    pub lock: LockName,
    /// What kind of lock it is.
    pub kind: LockKind,
    /// Its current grants, oldest first (at most [`MAX_LISTED`] of them; `holding` counts
    /// them all): one at most for an exclusive lock or a writer.
    pub holders: Vec<HolderInfo>,
    /// How many grants it has in all.
    pub holding: u64,
    /// The first [`MAX_LISTED`] waiters, in queue order.
    pub waiters: Vec<ClientId>,
    /// How many wait in all.
    pub waiting: u64,
    /// In lock-delay after an expiry: nobody is granted it until the delay is lifted.
    pub delayed: bool,
}

impl LockInfo {
    /// The oldest current grant (the only one of an exclusive lock), if any.
    pub fn holder(&self) -> Option<&HolderInfo> {
        self.holders.first()
    }
}

/// A lock's current grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderInfo {
    /// Who holds it.
    pub client: ClientId,
    /// The mode it was granted in.
    pub mode: Mode,
    /// The grant's fencing token.
    pub token: FencingToken,
    /// The lease the grant runs under.
    pub lease: Duration,
    /// How long the lease has left on the answering leader's clock (it may have started it
    /// afresh when it took over); `None` if it has no timer for the grant.
    pub lease_left: Option<Duration>,
}

/// A page of [`LockInfo`], in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocksPage {
    /// The locks.
    pub locks: Vec<LockInfo>,
    /// Ask again with this as `after` for more; `None`: there are no more.
    pub next: Option<LockName>,
}

/// One client session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The client.
    pub client: ClientId,
    /// The first [`MAX_LISTED`] locks it holds.
    pub held: Vec<LockName>,
    /// How many it holds in all.
    pub holding: u64,
    /// The first [`MAX_LISTED`] locks it is queued for.
    pub waiting_for: Vec<LockName>,
    /// How many acquires it has queued in all.
    pub waiting: u64,
    /// How long since the answering leader last heard from it; `None` if it never has.
    pub idle: Option<Duration>,
}

/// A page of [`SessionInfo`], in client id order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsPage {
    /// The sessions.
    pub sessions: Vec<SessionInfo>,
    /// Ask again with this as `after` for more; `None`: there are no more.
    pub next: Option<ClientId>,
}

/// The answer to [`crate::Op::Members`]: the leader's configuration and its followers' progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersInfo {
    /// The leader that answered.
    pub leader: NodeId,
    /// The latest configuration in its log (the one in force).
    pub config: Membership,
    /// The index of that configuration's entry; 0 for the configuration the cluster started
    /// with.
    pub index: LogIndex,
    /// Whether that entry has committed (if not, no other change is accepted yet).
    pub committed: bool,
    /// The leader's last log index.
    pub last_index: LogIndex,
    /// How far each other member's log is known to match the leader's, in id order (a member
    /// just removed is listed until the leader's first heartbeat after the removal commits).
    pub matched: Vec<(NodeId, LogIndex)>,
}
