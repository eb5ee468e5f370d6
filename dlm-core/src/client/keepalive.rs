//! Keeping leases alive: the schedule, a fresh keep-alive replacing a slow one, what an answer
//! renews or loses, and grants confirmed by a keep-alive after a long wait.

use super::*;

impl ClientCore {
    pub(super) fn run_keepalive(&mut self) {
        if self.held.is_empty() {
            self.keepalive_at = Time::MAX;
            return;
        }
        if self.now < self.keepalive_due() {
            return;
        }
        self.keepalive_at = self.now + self.cfg.lease / 3;
        if !self.keepalive_running() {
            self.start_keepalive();
        }
    }

    /// Whether a keep-alive is being sent (not one only waited on).
    fn keepalive_running(&self) -> bool {
        self.requests
            .values()
            .any(|r| matches!(r.purpose, Purpose::KeepAlive { .. }) && !r.retired)
    }

    /// When the next keep-alive is due: a third of a lease after the last, or once less than
    /// half a lease is left of the shortest safe window, whichever comes first, so that a
    /// window that started short (a grant answered late) still leaves time for lost
    /// keep-alives to be retried before it ends.
    pub(super) fn keepalive_due(&self) -> Time {
        if self.keepalive_running() {
            return self.keepalive_at;
        }
        self.keepalive_at.min(self.held.renew_by())
    }

    /// Sends a keep-alive now (it speaks for every grant entered so far) and returns its seq.
    pub(super) fn start_keepalive(&mut self) -> Seq {
        let purpose = Purpose::KeepAlive {
            grants: self.held.grants(),
        };
        let give_up_at = self.now + self.cfg.deadline;
        let seq = self.number(purpose, Op::KeepAlive, give_up_at);
        self.send(seq);
        seq
    }

    /// A keep-alive first sent at `sent`, when `grants` grants had been entered, listed `listed`
    /// as held and `revoked` as taken away by an operator.
    pub(super) fn kept_alive(
        &mut self,
        sent: Time,
        grants: u64,
        listed: &[(LockName, FencingToken)],
        revoked: &[(LockName, FencingToken)],
    ) {
        for (lock, token) in listed {
            if !self.tracks(lock, *token) {
                // A grant nobody waits for any more: give it back rather than renew it.
                self.give_back(lock.clone(), *token);
            }
        }
        let renewal = self
            .held
            .renew(grants, listed, sent, self.now, &self.cfg.drift);
        for (lock, token, safe_until) in renewal.renewed {
            self.out.push_back(ClientOutput::Renewed {
                lock,
                token,
                safe_until,
            });
        }
        for (lock, token) in renewal.lost {
            let reason = if revoked.iter().any(|(l, t)| *l == lock && *t == token) {
                LossReason::Revoked
            } else {
                LossReason::NotListed
            };
            self.out.push_back(ClientOutput::Lost {
                lock,
                token,
                reason,
            });
        }
        for (call, lock, token, safe_until) in renewal.confirmed {
            let done = Done::Granted {
                lock,
                token,
                safe_until,
            };
            self.done(call, Ok(done));
        }
        for (call, lock, token, listed) in renewal.unconfirmed {
            if listed {
                // Still ours at the service, but confirmed too late to be safe.
                self.give_back(lock, token);
            }
            self.done(call, Err(ClientError::GrantExpired));
        }
    }

    /// A keep-alive ended; if none is left in flight, grants still waiting for a
    /// confirmation will not get one: their calls fail, and the grants are given back.
    pub(super) fn keepalive_ended(&mut self) {
        let in_flight = self
            .requests
            .values()
            .any(|r| matches!(r.purpose, Purpose::KeepAlive { .. }));
        if in_flight {
            return;
        }
        for (call, lock, token) in self.held.take_all_confirming() {
            self.give_back(lock, token);
            self.done(call, Err(ClientError::GrantExpired));
        }
    }

    /// Whether the grant `token` of `lock` is one the core knows of: held, being acquired,
    /// withdrawn or released.
    pub(super) fn tracks(&self, lock: &LockName, token: FencingToken) -> bool {
        self.held.has(lock, token)
            || self.requests.values().any(|r| match &r.op {
                Op::Cancel { lock: l, .. } => l == lock,
                Op::Release { lock: l, token: t } => l == lock && *t == token,
                op => op.as_acquire().is_some_and(|a| a.lock == lock),
            })
    }
}
