//! [`LockGuard`] and the keep-alive task that renews the leases of every held lock.

use super::{lock_state, Client};
use crate::names::LockName;
use crate::protocol::{Op, Reply};
use crate::runtime::transport::ClientTransport;
use crate::types::{ClientId, FencingToken, Seq};
use std::sync::{Mutex, PoisonError};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the client and the guard share about one held lock.
pub(super) struct Held {
    token: FencingToken,
    /// Its place in the client's count of grants (see `State::grants`).
    grant: u64,
    safe_until: Mutex<Instant>,
    lost: watch::Sender<bool>,
}

impl Held {
    pub(super) fn new(token: FencingToken, safe_until: Instant, grant: u64) -> Held {
        Held {
            token,
            grant,
            safe_until: Mutex::new(safe_until),
            lost: watch::Sender::new(false),
        }
    }

    fn safe_until(&self) -> Instant {
        *self
            .safe_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn confirm(&self, until: Instant) {
        let mut s = self
            .safe_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *s = (*s).max(until);
    }

    pub(super) fn mark_lost(&self) {
        self.lost.send_replace(true);
    }
}

/// A held lock. It carries the fencing token to present to any resource the lock protects.
///
/// While any guard of a client is alive, a background task renews the leases every third of a
/// lease. Dropping a guard without [`Client::release`] releases the lock in the background (if a
/// tokio runtime is still running; otherwise the lease simply runs out).
pub struct LockGuard<T: ClientTransport> {
    client: Client<T>,
    name: LockName,
    pub(super) held: std::sync::Arc<Held>,
    armed: bool,
}

impl<T: ClientTransport> LockGuard<T> {
    pub(super) fn new(client: Client<T>, name: LockName, held: std::sync::Arc<Held>) -> Self {
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
    /// acquire or keep-alive, plus the lease, minus the drift bound.
    pub fn safe_until(&self) -> std::time::Instant {
        self.held.safe_until().into_std()
    }

    /// Whether the lock is known to be lost.
    pub fn is_lost(&self) -> bool {
        *self.held.lost.borrow() || Instant::now() >= self.held.safe_until()
    }

    /// Resolves once the lock is lost: a keep-alive answer no longer lists it, or the lease ran
    /// out without a confirmation.
    pub async fn lost(&self) {
        let mut rx = self.held.lost.subscribe();
        loop {
            if *rx.borrow_and_update() {
                return;
            }
            let until = self.held.safe_until();
            if Instant::now() >= until {
                self.held.mark_lost();
                return;
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl<T: ClientTransport> Drop for LockGuard<T> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.client.forget(&self.name, &self.held);
            return;
        };
        let client = self.client.clone();
        let (lock, held) = (self.name.clone(), self.held.clone());
        // Forgotten only once answered, as in `Client::release`.
        handle.spawn(async move {
            if let Err(e) = client.release_op(lock.clone(), held.token).await {
                tracing::debug!(%lock, error = %e, "background release failed");
            }
            client.forget(&lock, &held);
        });
    }
}

/// Withdraws a waiting acquire whose future was dropped, or gave up, before it was answered.
pub(super) struct PendingAcquire<T: ClientTransport> {
    pub(super) client: Client<T>,
    pub(super) lock: Option<LockName>,
    /// The session and seq the acquire was last sent under (see `Client::call_tracked`).
    pub(super) sent_as: Mutex<Option<(ClientId, Seq)>>,
}

impl<T: ClientTransport> Drop for PendingAcquire<T> {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        let sent_as = *self.sent_as.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((session, seq)) = sent_as else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        // A new acquire of the lock waits for this withdrawal (see `Client::cancelled`).
        let (done, watch_done) = watch::channel(());
        lock_state(&client.inner.state)
            .cancelling
            .insert(lock.clone(), watch_done);
        handle.spawn(async move {
            // In a newer session the acquire is gone with the old one.
            if client.id() == session {
                let _ = client
                    .call(
                        Op::Cancel {
                            lock: lock.clone(),
                            seq,
                        },
                        None,
                    )
                    .await;
            }
            let mut st = lock_state(&client.inner.state);
            if st
                .cancelling
                .get(&lock)
                .is_some_and(|rx| rx.same_channel(&done.subscribe()))
            {
                st.cancelling.remove(&lock);
            }
            drop(st);
            drop(done);
        });
    }
}

impl<T: ClientTransport> Client<T> {
    fn release_in_background(&self, lock: LockName, token: FencingToken) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.clone();
        handle.spawn(async move {
            let _ = client.release_op(lock, token).await;
        });
    }

    /// Starts the keep-alive task unless it runs already.
    pub(super) fn ensure_keepalive(&self) {
        {
            let mut st = lock_state(&self.inner.state);
            if st.keepalive_running || st.held.is_empty() {
                return;
            }
            st.keepalive_running = true;
        }
        let client = self.clone();
        tokio::spawn(async move {
            let period = client.inner.cfg.lease / 3;
            loop {
                tokio::time::sleep(period).await;
                {
                    let mut st = lock_state(&client.inner.state);
                    if st.held.is_empty() {
                        st.keepalive_running = false;
                        return;
                    }
                }
                client.keep_alive_once().await;
            }
        });
    }

    /// One keep-alive round: renews every lease, and marks lost what the answer no longer
    /// lists or what ran out unconfirmed.
    pub(super) async fn keep_alive_once(&self) {
        let cfg = &self.inner.cfg;
        let sent = Instant::now();
        let grants_before = lock_state(&self.inner.state).grants;
        let answer = self.call(Op::KeepAlive, None).await;
        let until = self.safe_until(sent, cfg.lease);
        let mut st = lock_state(&self.inner.state);
        if let Ok(Reply::KeptAlive { held }) = &answer {
            // A grant nobody waits for any more (its acquire was abandoned): give it back
            // rather than keep renewing it. One whose acquire is still in flight is not
            // abandoned, and a duplicate release is harmless: it names the grant's token.
            for (name, token) in held {
                if !st.held.contains_key(name) && !st.acquiring.contains_key(name) {
                    self.release_in_background(name.clone(), *token);
                }
            }
            st.held.retain(|name, h| {
                if h.grant > grants_before {
                    // Granted after the keep-alive was sent: the answer may predate it.
                    return true;
                }
                let still = held.iter().any(|(n, t)| n == name && *t == h.token);
                if still {
                    h.confirm(until);
                } else {
                    tracing::info!(lock = %name, token = %h.token, "lock lost");
                    h.mark_lost();
                }
                still
            });
        }
        let now = Instant::now();
        st.held.retain(|name, h| {
            let alive = now < h.safe_until();
            if !alive {
                tracing::info!(lock = %name, "lease ran out unconfirmed");
                h.mark_lost();
            }
            alive
        });
    }
}
