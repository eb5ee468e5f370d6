//! [`LockGuard`]: a held lock, its fencing token and how long it is certainly held.

use super::Client;
use crate::client::{CallOp, LossReason};
use crate::names::LockName;
use crate::runtime::transport::ClientTransport;
use crate::types::FencingToken;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the client's actor and a guard share about one grant.
pub(super) struct HeldLock {
    pub(super) token: FencingToken,
    safe_until: Mutex<Instant>,
    lost: watch::Sender<Option<LossReason>>,
}

impl HeldLock {
    pub(super) fn new(token: FencingToken, safe_until: Instant) -> HeldLock {
        HeldLock {
            token,
            safe_until: Mutex::new(safe_until),
            lost: watch::Sender::new(None),
        }
    }

    fn safe_until(&self) -> Instant {
        *self
            .safe_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn confirm(&self, until: Instant) {
        let mut s = self
            .safe_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *s = (*s).max(until);
    }

    pub(super) fn mark_lost(&self, reason: LossReason) {
        self.lost.send_replace(Some(reason));
    }
}

/// A held lock. It carries the fencing token to present to any resource the lock protects.
///
/// While it is held the client renews its lease every third of a lease. Dropping a guard without
/// [`Client::release`] releases the lock in the background (the client's task carries on with
/// it even if every handle is gone).
pub struct LockGuard<T: ClientTransport> {
    client: Client<T>,
    name: LockName,
    pub(super) held: Arc<HeldLock>,
    armed: bool,
}

impl<T: ClientTransport> fmt::Debug for LockGuard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.name)
            .field("token", &self.held.token)
            .field("lost", &self.is_lost())
            .finish_non_exhaustive()
    }
}

impl<T: ClientTransport> LockGuard<T> {
    /// The client that holds it.
    pub(super) fn client(&self) -> &Client<T> {
        &self.client
    }

    pub(super) fn new(client: Client<T>, name: LockName, held: Arc<HeldLock>) -> Self {
        LockGuard {
            client,
            name,
            held,
            armed: true,
        }
    }

    /// The lock's name.
    pub fn name(&self) -> &LockName {
        &self.name
    }

    /// The fencing token of this grant.
    pub fn token(&self) -> FencingToken {
        self.held.token
    }

    /// Until when the lock is certainly still ours: the send time of the last confirmed
    /// acquire or keep-alive, plus the lease discounted by [`crate::client::DriftBound`]. An
    /// operator's revoke ([`crate::Op::Revoke`]) is the exception: it takes the lock at once,
    /// and this guard learns of it at its next keep-alive answer ([`LockGuard::lost`]).
    pub fn safe_until(&self) -> std::time::Instant {
        self.held.safe_until().into_std()
    }

    /// Whether the lock is known to be lost.
    pub fn is_lost(&self) -> bool {
        self.loss().is_some()
    }

    /// Why the lock is lost, or `None` while it is still certainly held. Past its safe window
    /// with no news from the service, that is [`LossReason::LeaseRanOut`].
    pub fn loss(&self) -> Option<LossReason> {
        let told = *self.held.lost.borrow();
        told.or_else(|| {
            (Instant::now() >= self.held.safe_until()).then_some(LossReason::LeaseRanOut)
        })
    }

    /// Resolves once the lock is lost, with the reason: a keep-alive answer no longer lists
    /// it or says an operator revoked it, its session expired, or the lease ran out without a
    /// confirmation.
    pub async fn lost(&self) -> LossReason {
        let mut rx = self.held.lost.subscribe();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            let until = self.held.safe_until();
            if Instant::now() >= until {
                return LossReason::LeaseRanOut;
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return LossReason::LeaseRanOut;
                    }
                }
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Takes the guard apart for [`Client::release`], which releases it itself.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl<T: ClientTransport> Drop for LockGuard<T> {
    fn drop(&mut self) {
        if self.armed {
            let op = CallOp::Release {
                lock: self.name.clone(),
                token: self.held.token,
            };
            self.client.fire_and_forget(op);
        }
    }
}
