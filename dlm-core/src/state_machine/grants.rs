//! Grants and their ends: acquire (at once or queued), release, withdrawal of an acquire,
//! expiry of a lease or a session, and the one path by which a lock gets a holder.

use super::apply::Answer;
use super::{Holder, LockState, Outcome, Rules, Sessions, Slot, StateMachine, Waiter};
use crate::config::Limits;
use crate::names::LockName;
use crate::protocol::{Rejection, Reply, Withdrawn};
use crate::types::{ClientId, FencingToken, Seq};
use std::time::Duration;

impl StateMachine {
    /// Undoes acquire `acquire` of `client` (see [`Op::Cancel`]); `cancel` is the seq of the
    /// cancel itself, which only an earlier acquire can precede.
    pub(super) fn withdraw(
        &mut self,
        client: ClientId,
        cancel: Seq,
        lock: &LockName,
        acquire: Seq,
        out: &mut Vec<Outcome>,
    ) -> Withdrawn {
        let Some(session) = self.sessions.get_mut(&client) else {
            return Withdrawn::Nothing;
        };
        match session.slots.get(&acquire) {
            Some(Slot::Waiting(queued)) => {
                let queued = queued.clone();
                if let Some(waiting) = self.remove_waiter(&queued, client, Some(acquire)) {
                    self.answer(client, waiting, Err(Rejection::Cancelled), true, out);
                }
                Withdrawn::Waiting
            }
            Some(Slot::Done(Ok(Reply::Granted { token, .. }))) => {
                let token = *token;
                match self.release(client, lock, token, out) {
                    Ok(_) => Withdrawn::Released { token },
                    Err(_) => Withdrawn::Nothing,
                }
            }
            Some(Slot::Done(_)) => Withdrawn::Nothing,
            None if acquire < session.acked_below || acquire >= cancel => Withdrawn::Nothing,
            None => {
                // Refused in advance: if the acquire arrives after all, the dedup cache answers
                // it, so it can never be granted to a caller that has gone.
                let refused = Slot::Done(Err(Rejection::Cancelled));
                session.slots.insert(acquire, refused);
                Withdrawn::Prevented
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn acquire(
        &mut self,
        client: ClientId,
        seq: Seq,
        lock: &LockName,
        lease: Duration,
        wait: Option<Duration>,
        limits: &Limits,
        out: &mut Vec<Outcome>,
    ) -> Option<Answer> {
        let state = self.locks.entry(lock.clone()).or_default();
        if let Some(holder) = &state.holder {
            if holder.client == client {
                let token = holder.token;
                return Some(Err(Rejection::AlreadyHeld { token }));
            }
        }
        if state.waiter_position(client).is_some() {
            return Some(Err(Rejection::AlreadyWaiting));
        }
        if state.is_idle() {
            let token = grant(
                &mut self.last_token,
                &mut self.sessions,
                state,
                lock,
                client,
                lease,
                out,
            );
            return Some(Ok(Reply::Granted { token, lease }));
        }
        // Not free, so not idle: no empty entry is left behind by the refusals below.
        let wait = match wait {
            None => return Some(Err(Rejection::Busy)),
            Some(wait) if wait.is_zero() => return Some(Err(Rejection::TimedOut)),
            Some(wait) => wait,
        };
        if state.waiters.len() >= limits.max_waiters {
            return Some(Err(Rejection::TooManyWaiters {
                max: limits.max_waiters,
            }));
        }
        state.waiters.push_back(Waiter {
            client,
            seq,
            lease,
            wait,
        });
        out.push(Outcome::Queued {
            lock: lock.clone(),
            client,
            seq,
            wait,
        });
        None
    }

    pub(super) fn release(
        &mut self,
        client: ClientId,
        lock: &LockName,
        token: FencingToken,
        out: &mut Vec<Outcome>,
    ) -> Answer {
        self.check_holder(lock, client, token)?;
        if let Some(state) = self.locks.get_mut(lock) {
            state.holder = None;
        }
        if let Some(session) = self.sessions.get_mut(&client) {
            session.remove_held(lock);
        }
        self.grant_next(lock, out);
        Ok(Reply::Released)
    }

    /// The grant `(client, token)` is the current grant of `lock`.
    pub(super) fn check_holder(
        &self,
        lock: &LockName,
        client: ClientId,
        token: FencingToken,
    ) -> Result<(), Rejection> {
        let revoked = |s: &super::Session| s.was_revoked(lock, token);
        match self.locks.get(lock).and_then(|s| s.holder.as_ref()) {
            Some(h) if h.client == client && h.token == token => Ok(()),
            _ if self.sessions.get(&client).is_some_and(revoked) => {
                Err(Rejection::Revoked { token })
            }
            // A later grant exists: the presented one was lost (expired, or released before).
            Some(h) if token < h.token => Err(Rejection::StaleToken { presented: token }),
            _ => Err(Rejection::NotHolder),
        }
    }

    pub(super) fn expire(
        &mut self,
        lock: &LockName,
        token: FencingToken,
        renewals: Option<u64>,
        rules: &Rules,
        out: &mut Vec<Outcome>,
    ) {
        let Some(state) = self.locks.get_mut(lock) else {
            return;
        };
        let Some(holder) = state
            .holder
            .take_if(|h| h.token == token && renewals.is_none_or(|r| r == h.renewals))
        else {
            return;
        };
        if rules.lock_delay {
            state.delayed = true;
            out.push(Outcome::Delayed { lock: lock.clone() });
        }
        if let Some(session) = self.sessions.get_mut(&holder.client) {
            session.remove_held(lock);
        }
        self.grant_next(lock, out);
    }

    pub(super) fn expire_session(
        &mut self,
        client: ClientId,
        rules: &Rules,
        out: &mut Vec<Outcome>,
    ) {
        let Some(session) = self.sessions.remove(&client) else {
            return;
        };
        for lock in &session.held {
            if let Some(token) = self
                .locks
                .get(lock)
                .and_then(|s| s.holder.as_ref())
                .filter(|h| h.client == client)
                .map(|h| h.token)
            {
                self.expire(lock, token, None, rules, out);
            }
        }
        for slot in session.slots.values() {
            if let Slot::Waiting(lock) = slot {
                self.remove_waiter(lock, client, None);
            }
        }
    }

    /// Takes `client`'s waiter (for `seq`, if given) out of `lock`'s queue; returns its seq.
    pub(super) fn remove_waiter(
        &mut self,
        lock: &LockName,
        client: ClientId,
        seq: Option<Seq>,
    ) -> Option<Seq> {
        let state = self.locks.get_mut(lock)?;
        let at = state
            .waiters
            .iter()
            .position(|w| w.client == client && seq.is_none_or(|s| s == w.seq))?;
        let waiter = state.waiters.remove(at)?;
        if state.is_idle() {
            self.locks.remove(lock);
        }
        Some(waiter.seq)
    }

    /// Grants `lock` to the head of its queue if it is free, and drops it from the table if idle.
    pub(super) fn grant_next(&mut self, lock: &LockName, out: &mut Vec<Outcome>) {
        let Some(state) = self.locks.get_mut(lock) else {
            return;
        };
        if state.holder.is_none() && !state.delayed {
            if let Some(waiter) = state.waiters.pop_front() {
                let lease = waiter.lease;
                let client = waiter.client;
                let (sessions, last_token) = (&mut self.sessions, &mut self.last_token);
                let token = grant(last_token, sessions, state, lock, client, lease, out);
                let granted = Ok(Reply::Granted { token, lease });
                self.answer(waiter.client, waiter.seq, granted, true, out);
                return;
            }
        }
        if state.is_idle() {
            self.locks.remove(lock);
            out.push(Outcome::Freed { lock: lock.clone() });
        }
    }

    /// Renews every grant `client` holds (the leader restarts their leases when it applies the
    /// outcome) and lists them, so the client learns which of its grants still stand.
    pub(super) fn renew(&mut self, client: ClientId, out: &mut Vec<Outcome>) -> Reply {
        out.push(Outcome::Renewed { client });
        let Some(session) = self.sessions.get(&client) else {
            return Reply::KeptAlive {
                held: Vec::new(),
                revoked: Vec::new(),
            };
        };
        // One lookup per lock, and a list of the exact size: the answer stays cached in the
        // session until the client's next request.
        let mut held = Vec::with_capacity(session.held.len());
        for lock in &session.held {
            if let Some(holder) = self.locks.get_mut(lock).and_then(|s| s.holder.as_mut()) {
                holder.renewals += 1;
                held.push((lock.clone(), holder.token));
            }
        }
        Reply::KeptAlive {
            held,
            revoked: session.revoked.clone(),
        }
    }
}

/// Makes `client` the holder of `lock` (whose `state` has none) under the next token: the one way
/// a lock is granted, at once or from the queue. It takes the state machine's parts apart, so
/// that the caller's borrow of the lock's entry serves (no second lookup).
fn grant(
    last_token: &mut FencingToken,
    sessions: &mut Sessions,
    state: &mut LockState,
    lock: &LockName,
    client: ClientId,
    lease: Duration,
    out: &mut Vec<Outcome>,
) -> FencingToken {
    *last_token = last_token.next();
    let token = *last_token;
    state.holder = Some(Holder {
        client,
        token,
        lease,
        renewals: 0,
    });
    if let Some(session) = sessions.get_mut(&client) {
        session.add_held(lock);
        session.forget_revoked(lock);
    }
    out.push(Outcome::Granted {
        lock: lock.clone(),
        token,
        lease,
    });
    token
}
