//! Applying one committed command. Every branch is deterministic and total: a request that
//! cannot be carried out gets a typed refusal, and leaves the state as it was.

use super::{GuardedFile, Holder, Outcome, Rules, Slot, StateMachine, Waiter};
use crate::command::Command;
use crate::config::Limits;
use crate::names::{FileName, LockName};
use crate::protocol::{ClientRequest, ClientResponse, Op, Rejection, Reply, Withdrawn};
use crate::types::{ClientId, FencingToken, Seq};
use std::time::Duration;

type Answer = Result<Reply, Rejection>;

/// Checks a lock or file name against the limits.
pub(crate) fn check_name(len: usize, limits: &Limits) -> Result<(), Rejection> {
    if len == 0 || len > limits.max_name_len {
        return Err(Rejection::BadName {
            max: limits.max_name_len,
        });
    }
    Ok(())
}

/// Checks the parts of a request that do not depend on state. The leader runs this before
/// proposing, so a malformed request never reaches the log; applying runs it again, so the state
/// machine is total on its own.
pub(crate) fn check_request(op: &Op, limits: &Limits) -> Result<(), Rejection> {
    match op {
        Op::Acquire { lock, lease, .. } => {
            check_name(lock.len(), limits)?;
            if *lease < limits.min_lease || *lease > limits.max_lease {
                return Err(Rejection::BadLease {
                    min: limits.min_lease,
                    max: limits.max_lease,
                });
            }
            Ok(())
        }
        Op::Release { lock, .. } | Op::Cancel { lock, .. } => check_name(lock.len(), limits),
        Op::Append {
            lock, file, data, ..
        } => {
            check_name(lock.len(), limits)?;
            check_name(file.len(), limits)?;
            if data.len() > limits.max_append {
                return Err(Rejection::AppendTooLarge {
                    max: limits.max_append,
                });
            }
            Ok(())
        }
        Op::Read { file, .. } => check_name(file.len(), limits),
        Op::KeepAlive => Ok(()),
        Op::Status => Err(Rejection::Invalid(
            "status is not a replicated operation".into(),
        )),
    }
}

impl StateMachine {
    /// Applies one committed command, pushing what happened onto `out`.
    pub fn apply(&mut self, command: &Command, rules: &Rules, out: &mut Vec<Outcome>) {
        match command {
            Command::Noop => {}
            Command::Client(request) => self.apply_request(request, rules, out),
            Command::Expire {
                lock,
                token,
                renewals,
            } => self.expire(lock, *token, Some(*renewals), rules, out),
            Command::LiftDelay { lock } => {
                if let Some(state) = self.locks.get_mut(lock) {
                    state.delayed = false;
                }
                self.grant_next(lock, out);
            }
            Command::CancelWait { lock, client, seq } => {
                if self.remove_waiter(lock, *client, Some(*seq)).is_some() {
                    self.answer(*client, *seq, Err(Rejection::TimedOut), true, out);
                }
            }
            Command::ExpireSession { client } => self.expire_session(*client, rules, out),
        }
    }

    fn apply_request(&mut self, request: &ClientRequest, rules: &Rules, out: &mut Vec<Outcome>) {
        let ClientRequest {
            client,
            seq,
            acked_below,
            op,
        } = request;
        let (client, seq) = (*client, *seq);
        let cached = op.is_cached();
        let limits = &rules.limits;

        if !self.sessions.contains_key(&client) {
            // A client that has acknowledged answers had a session; if it is gone, it expired,
            // and replaying the client's requests against a fresh one could apply them twice.
            let refusal = if *acked_below > Seq(1) {
                Some(Rejection::SessionExpired)
            } else if self.sessions.len() >= limits.max_sessions {
                Some(Rejection::TooManySessions {
                    max: limits.max_sessions,
                })
            } else {
                None
            };
            if let Some(refusal) = refusal {
                out.push(reply(client, seq, Err(refusal)));
                return;
            }
            self.sessions.insert(client, Default::default());
        }
        let Some(session) = self.sessions.get_mut(&client) else {
            return;
        };
        session.advance_watermark(*acked_below);
        if seq < session.acked_below {
            out.push(reply(client, seq, Err(Rejection::SeqBelowWatermark)));
            return;
        }
        out.push(Outcome::Touched { client });
        if cached {
            match session.slots.get(&seq) {
                Some(Slot::Done(answer)) => {
                    out.push(reply(client, seq, answer.clone()));
                    return;
                }
                // Still queued: the retry is re-attached by the leader, never enqueued twice.
                Some(Slot::Waiting(_)) => return,
                None => {}
            }
            if session.slots.len() >= limits.max_unacked {
                let refusal = Rejection::TooManyUnacked {
                    max: limits.max_unacked,
                };
                out.push(reply(client, seq, Err(refusal)));
                return;
            }
        }

        let answer = match check_request(op, limits) {
            Err(refusal) => Some(Err(refusal)),
            Ok(()) => self.execute(client, seq, op, rules, out),
        };
        match answer {
            Some(answer) => self.answer(client, seq, answer, cached, out),
            None => {
                if let (Some(session), Op::Acquire { lock, .. }) =
                    (self.sessions.get_mut(&client), op)
                {
                    session.slots.insert(seq, Slot::Waiting(lock.clone()));
                }
            }
        }
    }

    /// Carries out a validated operation. `None` means the acquire was queued.
    fn execute(
        &mut self,
        client: ClientId,
        seq: Seq,
        op: &Op,
        rules: &Rules,
        out: &mut Vec<Outcome>,
    ) -> Option<Answer> {
        let limits = &rules.limits;
        Some(match op {
            Op::Acquire { lock, lease, wait } => {
                return self.acquire(client, seq, lock, *lease, *wait, limits, out)
            }
            Op::Release { lock, token } => self.release(client, lock, *token, out),
            Op::Cancel { lock, seq: acquire } => Ok(Reply::Cancelled(
                self.withdraw(client, seq, lock, *acquire, out),
            )),
            Op::KeepAlive => {
                let held = self.sessions.get(&client).map_or_else(Vec::new, |s| {
                    s.held
                        .iter()
                        .filter_map(|lock| {
                            let holder = self.locks.get(lock)?.holder.as_ref()?;
                            Some((lock.clone(), holder.token))
                        })
                        .collect()
                });
                if let Some(session) = self.sessions.get(&client) {
                    for lock in &session.held {
                        if let Some(holder) =
                            self.locks.get_mut(lock).and_then(|s| s.holder.as_mut())
                        {
                            holder.renewals += 1;
                        }
                    }
                }
                out.push(Outcome::Renewed { client });
                Ok(Reply::KeptAlive { held })
            }
            Op::Append {
                lock,
                token,
                file,
                data,
            } => self.append(client, lock, *token, file, data, limits, out),
            Op::Read { file, offset } => self.read(file, *offset, limits),
            Op::Status => Err(Rejection::Invalid("status is not replicated".into())),
        })
    }

    /// Undoes acquire `acquire` of `client` (see [`Op::Cancel`]); `cancel` is the seq of the
    /// cancel itself, which only an earlier acquire can precede.
    fn withdraw(
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
    fn acquire(
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
        if state.is_free() {
            self.last_token = FencingToken(self.last_token.0 + 1);
            let token = self.last_token;
            state.holder = Some(Holder {
                client,
                token,
                lease,
                renewals: 0,
            });
            if let Some(session) = self.sessions.get_mut(&client) {
                session.add_held(lock);
            }
            out.push(Outcome::Granted {
                lock: lock.clone(),
                token,
                lease,
            });
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

    fn release(
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

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        client: ClientId,
        lock: &LockName,
        token: FencingToken,
        file: &FileName,
        data: &[u8],
        limits: &Limits,
        out: &mut Vec<Outcome>,
    ) -> Answer {
        self.check_holder(lock, client, token)?;
        if let Some(existing) = self.files.get(file) {
            if existing.guard != *lock {
                return Err(Rejection::WrongLock {
                    guard: existing.guard.clone(),
                });
            }
            if existing.last_token > token {
                return Err(Rejection::StaleToken { presented: token });
            }
            if existing.data.len() as u64 + data.len() as u64 > limits.max_file {
                return Err(Rejection::FileTooLarge {
                    max: limits.max_file,
                });
            }
        } else if data.len() as u64 > limits.max_file {
            return Err(Rejection::FileTooLarge {
                max: limits.max_file,
            });
        }
        let entry = self
            .files
            .entry(file.clone())
            .or_insert_with(|| GuardedFile {
                guard: lock.clone(),
                last_token: token,
                data: Vec::new(),
            });
        let offset = entry.data.len() as u64;
        entry.data.extend_from_slice(data);
        entry.last_token = token;
        out.push(Outcome::Appended {
            file: file.clone(),
            offset,
            data: data.to_vec(),
        });
        Ok(Reply::Appended { offset })
    }

    pub(crate) fn read(&self, file: &FileName, offset: u64, limits: &Limits) -> Answer {
        let Some(existing) = self.files.get(file) else {
            return Err(Rejection::NoSuchFile);
        };
        let len = existing.data.len() as u64;
        let start = offset.min(len) as usize;
        let end = start
            .saturating_add(limits.max_read)
            .min(existing.data.len());
        Ok(Reply::Data {
            data: existing.data[start..end].to_vec(),
            len,
        })
    }

    /// The grant `(client, token)` is the current grant of `lock`.
    fn check_holder(
        &self,
        lock: &LockName,
        client: ClientId,
        token: FencingToken,
    ) -> Result<(), Rejection> {
        match self.locks.get(lock).and_then(|s| s.holder.as_ref()) {
            Some(h) if h.client == client && h.token == token => Ok(()),
            // A later grant exists: the presented one was lost (expired, or released before).
            Some(h) if token < h.token => Err(Rejection::StaleToken { presented: token }),
            _ => Err(Rejection::NotHolder),
        }
    }

    fn expire(
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

    fn expire_session(&mut self, client: ClientId, rules: &Rules, out: &mut Vec<Outcome>) {
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
    fn remove_waiter(
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
    fn grant_next(&mut self, lock: &LockName, out: &mut Vec<Outcome>) {
        let Some(state) = self.locks.get_mut(lock) else {
            return;
        };
        if state.holder.is_none() && !state.delayed {
            if let Some(waiter) = state.waiters.pop_front() {
                self.last_token = FencingToken(self.last_token.0 + 1);
                let token = self.last_token;
                let lease = waiter.lease;
                state.holder = Some(Holder {
                    client: waiter.client,
                    token,
                    lease,
                    renewals: 0,
                });
                out.push(Outcome::Granted {
                    lock: lock.clone(),
                    token,
                    lease,
                });
                if let Some(session) = self.sessions.get_mut(&waiter.client) {
                    session.add_held(lock);
                }
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

    /// Records the answer to `(client, seq)` in its session (when cached) and reports it.
    fn answer(
        &mut self,
        client: ClientId,
        seq: Seq,
        answer: Answer,
        cached: bool,
        out: &mut Vec<Outcome>,
    ) {
        if cached {
            if let Some(session) = self.sessions.get_mut(&client) {
                session.slots.insert(seq, Slot::Done(answer.clone()));
            }
        }
        out.push(reply(client, seq, answer));
    }
}

fn reply(client: ClientId, seq: Seq, result: Answer) -> Outcome {
    Outcome::Reply(ClientResponse {
        client,
        seq,
        result,
    })
}
