//! Per-lock state: its kind, its holders and one FIFO queue of waiters across modes. A lock with
//! no holder, no waiters and no lock-delay is removed, so an idle lock costs nothing (and its
//! kind is forgotten with it).

use crate::names::LockName;
use crate::protocol::{LockKind, Mode};
use crate::types::{ClientId, FencingToken, Seq};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use super::DetHasher;

/// One grant of a lock.
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
    /// The mode it was granted in.
    pub mode: Mode,
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
    /// The mode it asks for.
    pub mode: Mode,
}

/// One lock.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// What kind of lock the name is while it exists (fixed by the acquire that created it).
    pub kind: LockKind,
    /// The current grants, oldest first: at most one for an exclusive lock or a writer, any
    /// number of readers, at most `permits` for a semaphore.
    pub holders: Vec<Holder>,
    /// Waiters in arrival order, whatever their mode.
    pub waiters: VecDeque<Waiter>,
    /// In lock-delay after an expiry: nobody may be granted until `LiftDelay`.
    pub delayed: bool,
}

impl LockState {
    /// A lock of `kind` with nothing held or queued.
    pub fn new(kind: LockKind) -> LockState {
        LockState {
            kind,
            ..LockState::default()
        }
    }

    /// Nothing is held, queued or delayed: a new acquire is granted at once, and until then the
    /// lock can leave the table.
    pub fn is_idle(&self) -> bool {
        self.holders.is_empty() && self.waiters.is_empty() && !self.delayed
    }

    /// Position of `client` in the queue.
    pub fn waiter_position(&self, client: ClientId) -> Option<usize> {
        self.waiters.iter().position(|w| w.client == client)
    }

    /// The oldest current grant (the only one of an exclusive lock), if any.
    pub fn holder(&self) -> Option<&Holder> {
        self.holders.first()
    }

    /// The grant `client` holds, if any (a client holds a lock at most once).
    pub fn holder_of(&self, client: ClientId) -> Option<&Holder> {
        self.holders.iter().find(|h| h.client == client)
    }

    /// The grant with `token`, if it is current.
    pub fn holder_with(&self, token: FencingToken) -> Option<&Holder> {
        self.holders.iter().find(|h| h.token == token)
    }

    /// The newest current grant's token.
    pub fn newest_token(&self) -> Option<FencingToken> {
        self.holders.iter().map(|h| h.token).max()
    }

    /// Whether a grant in `mode` may join the current holders now, ignoring the queue and the
    /// delay: a writer or an exclusive grant only alone, a reader beside other readers, a
    /// permit while fewer than `permits` are out.
    pub fn admits(&self, mode: Mode) -> bool {
        match mode {
            Mode::Exclusive | Mode::Write => self.holders.is_empty(),
            Mode::Read => self.holders.iter().all(|h| h.mode == Mode::Read),
            Mode::Permit { permits } => self.holders.len() < permits as usize,
        }
    }

    /// Whether an acquire in `mode` is granted at once: nothing is queued ahead of it (a
    /// waiting writer holds back every later reader), no delay, and the holders admit it.
    pub fn grants_at_once(&self, mode: Mode) -> bool {
        self.waiters.is_empty() && !self.delayed && self.admits(mode)
    }
}

/// All locks that are held, queued for, or delayed.
pub type LockTable = HashMap<LockName, LockState, DetHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(token: u64, mode: Mode) -> Holder {
        Holder {
            client: ClientId(token as u128),
            token: FencingToken(token),
            lease: Duration::from_secs(1),
            renewals: 0,
            mode,
        }
    }

    #[test]
    fn readers_share_writers_and_exclusive_grants_are_alone_permits_count() {
        let mut state = LockState::new(LockKind::Shared);
        assert!(state.admits(Mode::Read) && state.admits(Mode::Write));
        state.holders.push(holder(1, Mode::Read));
        assert!(state.admits(Mode::Read));
        assert!(!state.admits(Mode::Write));
        state.holders = vec![holder(2, Mode::Write)];
        assert!(!state.admits(Mode::Read));
        assert!(!state.admits(Mode::Write));

        let mut sem = LockState::new(LockKind::Semaphore { permits: 2 });
        let permit = Mode::Permit { permits: 2 };
        sem.holders.push(holder(1, permit));
        assert!(sem.admits(permit));
        sem.holders.push(holder(2, permit));
        assert!(!sem.admits(permit));

        let mut ex = LockState::new(LockKind::Exclusive);
        assert!(ex.admits(Mode::Exclusive));
        ex.holders.push(holder(1, Mode::Exclusive));
        assert!(!ex.admits(Mode::Exclusive));
    }

    #[test]
    fn a_queue_or_a_delay_holds_back_an_acquire_the_holders_would_admit() {
        let mut state = LockState::new(LockKind::Shared);
        state.holders.push(holder(1, Mode::Read));
        assert!(state.grants_at_once(Mode::Read));
        state.waiters.push_back(Waiter {
            client: ClientId(9),
            seq: Seq(1),
            lease: Duration::from_secs(1),
            wait: Duration::from_secs(1),
            mode: Mode::Write,
        });
        assert!(!state.grants_at_once(Mode::Read));
        state.waiters.clear();
        state.delayed = true;
        assert!(!state.grants_at_once(Mode::Read));
    }
}
