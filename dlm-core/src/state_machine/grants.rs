//! Grants and their ends: acquire (at once or queued), release, withdrawal of an acquire,
//! expiry of a lease or a session, and the one path by which a lock gets holders.
//!
//! Every kind of lock goes through the same code: one FIFO queue per name across modes, and
//! [`LockState::admits`] deciding whether the head may join the current holders. A grant that
//! ends grants the queue's head, and the waiters behind it for as long as the holders admit
//! them (the readers after a writer, one waiter per freed permit): never more, so a release
//! wakes no herd.

use super::apply::{record_answer, Answer};
use super::{Holder, LockState, Outcome, Rules, Sessions, Slot, StateMachine, Waiter};
use crate::config::Limits;
use crate::names::LockName;
use crate::protocol::{AcquireParts, Mode, Rejection, Reply, Withdrawn};
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
                let cancelled = Some(Rejection::Cancelled);
                self.remove_waiter(&queued, client, Some(acquire), cancelled, out);
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
            None if session.is_acked(acquire) || acquire >= cancel => Withdrawn::Nothing,
            Some(Slot::Expected) | None => {
                // Refused in advance: if the acquire arrives after all, the dedup cache answers
                // it, so it can never be granted to a caller that has gone.
                let refused = Slot::Done(Err(Rejection::Cancelled));
                session.slots.insert(acquire, refused);
                Withdrawn::Prevented
            }
        }
    }

    /// An acquire: granted at once, refused, or queued (`None`).
    pub(super) fn acquire(
        &mut self,
        client: ClientId,
        seq: Seq,
        acquire: AcquireParts<'_>,
        limits: &Limits,
        out: &mut Vec<Outcome>,
    ) -> Option<Answer> {
        let AcquireParts {
            lock,
            lease,
            wait,
            mode,
        } = acquire;
        // Counted before a grant or a wait, since a wait becomes a grant with no other check;
        // and before the lock's entry is made, so that the refusal leaves none behind. A lock
        // the client already holds or waits for gets the answer that says so instead.
        if locks_of(&self.sessions, client) >= limits.max_locks_per_session {
            let state = self.locks.get(lock);
            let known = state.is_some_and(|s| {
                s.holder_of(client).is_some() || s.waiter_position(client).is_some()
            });
            if !known {
                return Some(Err(Rejection::TooManyLocks {
                    max: limits.max_locks_per_session,
                }));
            }
        }
        let state = self
            .locks
            .entry(lock.clone())
            .or_insert_with(|| LockState::new(mode.kind()));
        // A new entry has the acquire's kind, so none of the refusals below leaves an empty
        // entry behind: each needs a lock that was there already.
        if state.kind != mode.kind() {
            return Some(Err(Rejection::WrongKind { kind: state.kind }));
        }
        if let Some(holder) = state.holder_of(client) {
            return Some(Err(Rejection::AlreadyHeld {
                token: holder.token,
            }));
        }
        if state.waiter_position(client).is_some() {
            return Some(Err(Rejection::AlreadyWaiting));
        }
        if state.grants_at_once(mode) {
            let (sessions, last_token) = (&mut self.sessions, &mut self.last_token);
            let token = grant(last_token, sessions, state, lock, client, lease, mode, out);
            return Some(Ok(Reply::Granted { token, lease }));
        }
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
            mode,
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
        if let Some(holder) = self.take_holder(lock, |h| h.token == token) {
            self.ended(lock, &holder, out);
        }
        self.grant_next(lock, out);
        Ok(Reply::Released)
    }

    /// The grant `(client, token)` is a current grant of `lock`; its mode if so.
    pub(super) fn check_holder(
        &self,
        lock: &LockName,
        client: ClientId,
        token: FencingToken,
    ) -> Result<Mode, Rejection> {
        let state = self.locks.get(lock);
        match state.and_then(|s| s.holder_with(token)) {
            Some(h) if h.client == client => return Ok(h.mode),
            // Another holder's current grant (a fellow reader's, say): not stale, not ours.
            Some(_) => return Err(Rejection::NotHolder),
            None => {}
        }
        let revoked = |s: &super::Session| s.was_revoked(lock, token);
        if self.sessions.get(&client).is_some_and(revoked) {
            return Err(Rejection::Revoked { token });
        }
        match state.and_then(LockState::newest_token) {
            // A later grant exists: the presented one was lost (expired, or released before).
            Some(newest) if token < newest => Err(Rejection::StaleToken { presented: token }),
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
        let current = |h: &Holder| h.token == token && renewals.is_none_or(|r| r == h.renewals);
        let Some(holder) = self.take_holder(lock, current) else {
            return;
        };
        if rules.lock_delay {
            if let Some(state) = self.locks.get_mut(lock) {
                state.delayed = true;
            }
            out.push(Outcome::Delayed { lock: lock.clone() });
        }
        self.ended(lock, &holder, out);
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
            let held = self.locks.get(lock).and_then(|s| s.holder_of(client));
            if let Some(token) = held.map(|h| h.token) {
                self.expire(lock, token, None, rules, out);
            }
        }
        for slot in session.slots.values() {
            if let Slot::Waiting(lock) = slot {
                self.remove_waiter(lock, client, None, None, out);
            }
        }
    }

    /// Takes `client`'s waiter (for `seq`, if given) out of `lock`'s queue, answering it
    /// `refusal` if given; returns its seq. A writer leaving the head of the queue may let the
    /// readers behind it in: they are granted in the same entry, after the leaver's answer (so
    /// answers come out in queue order).
    pub(super) fn remove_waiter(
        &mut self,
        lock: &LockName,
        client: ClientId,
        seq: Option<Seq>,
        refusal: Option<Rejection>,
        out: &mut Vec<Outcome>,
    ) -> Option<Seq> {
        let state = self.locks.get_mut(lock)?;
        let at = state
            .waiters
            .iter()
            .position(|w| w.client == client && seq.is_none_or(|s| s == w.seq))?;
        let waiter = state.waiters.remove(at)?;
        let idle = state.is_idle();
        if let Some(refusal) = refusal {
            self.answer(client, waiter.seq, Err(refusal), true, out);
        }
        if idle {
            // Nothing was held or armed: the lock leaves quietly.
            self.locks.remove(lock);
        } else if at == 0 {
            self.grant_next(lock, out);
        }
        Some(waiter.seq)
    }

    /// Grants `lock` to the head of its queue, and to each waiter after it, for as long as the
    /// holders admit them and the lock is not delayed; drops the lock from the table if idle.
    pub(super) fn grant_next(&mut self, lock: &LockName, out: &mut Vec<Outcome>) {
        let (locks, sessions, last_token) =
            (&mut self.locks, &mut self.sessions, &mut self.last_token);
        let Some(state) = locks.get_mut(lock) else {
            return;
        };
        while !state.delayed && state.waiters.front().is_some_and(|w| state.admits(w.mode)) {
            let Some(waiter) = state.waiters.pop_front() else {
                break;
            };
            let Waiter {
                client,
                seq,
                lease,
                mode,
                ..
            } = waiter;
            let token = grant(last_token, sessions, state, lock, client, lease, mode, out);
            let granted = Ok(Reply::Granted { token, lease });
            record_answer(sessions, client, seq, granted, true, out);
        }
        if state.is_idle() {
            locks.remove(lock);
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
            let Some(state) = self.locks.get_mut(lock) else {
                continue;
            };
            if let Some(holder) = state.holders.iter_mut().find(|h| h.client == client) {
                holder.renewals += 1;
                held.push((lock.clone(), holder.token));
            }
        }
        Reply::KeptAlive {
            held,
            revoked: session.revoked.clone(),
        }
    }

    /// Takes the first holder of `lock` that `which` picks out of its holders.
    pub(super) fn take_holder(
        &mut self,
        lock: &LockName,
        which: impl Fn(&Holder) -> bool,
    ) -> Option<Holder> {
        let holders = &mut self.locks.get_mut(lock)?.holders;
        let at = holders.iter().position(which)?;
        Some(holders.remove(at))
    }

    /// Records the end of `holder`'s grant of `lock` in its session and for the leader's
    /// timers. The caller grants the queue afterwards.
    pub(super) fn ended(&mut self, lock: &LockName, holder: &Holder, out: &mut Vec<Outcome>) {
        if let Some(session) = self.sessions.get_mut(&holder.client) {
            session.remove_held(lock);
        }
        out.push(Outcome::Ended {
            lock: lock.clone(),
            token: holder.token,
        });
    }
}

/// How many locks `client`'s session holds and waits for (see
/// [`Limits::max_locks_per_session`]).
fn locks_of(sessions: &Sessions, client: ClientId) -> usize {
    sessions.get(&client).map_or(0, |session| {
        let waiting = session.slots.values();
        let waiting = waiting.filter(|slot| matches!(slot, Slot::Waiting(_)));
        session.held.len() + waiting.count()
    })
}

/// Makes `client` a holder of `lock` (whose `state` admits it) under the next token: the one
/// way a lock is granted, at once or from the queue. It takes the state machine's parts apart,
/// so that the caller's borrow of the lock's entry serves (no second lookup).
#[allow(clippy::too_many_arguments)]
fn grant(
    last_token: &mut FencingToken,
    sessions: &mut Sessions,
    state: &mut LockState,
    lock: &LockName,
    client: ClientId,
    lease: Duration,
    mode: Mode,
    out: &mut Vec<Outcome>,
) -> FencingToken {
    *last_token = last_token.next();
    let token = *last_token;
    if state.holders.capacity() == 0 {
        // Most locks have one holder at a time: room for one, not the four a first push makes.
        state.holders.reserve_exact(1);
    }
    state.holders.push(Holder {
        client,
        token,
        lease,
        renewals: 0,
        mode,
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
