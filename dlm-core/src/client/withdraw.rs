//! Undoing what a call left behind: withdrawing an abandoned acquire (its seq stays numbered
//! until the cancel is answered), finishing an abandoned release, and holding back a new acquire
//! of the same lock until then.

use super::*;

impl ClientCore {
    /// Whether a withdrawal or give-back of `lock` is under way, which a new acquire of it
    /// must wait for (the service would refuse it as already waiting, or already held).
    pub(super) fn withdrawing(&self, lock: Option<&LockName>) -> bool {
        let Some(lock) = lock else { return false };
        self.requests.values().any(|r| {
            matches!(
                r.purpose,
                Purpose::Abandoned | Purpose::Cancel { .. } | Purpose::GiveBack
            ) && r.lock() == Some(lock)
        })
    }

    /// Takes request `seq` out, undoing what it may have left: an acquire that was sent is
    /// withdrawn (its seq stays numbered until the withdrawal is answered), a release goes on
    /// as a give-back, and whatever waited for a withdrawal of its lock may go ahead.
    pub(super) fn drop_request(&mut self, seq: Seq) {
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        match (r.op.as_acquire(), r.first_sent) {
            (Some(acquire), Some(_)) if matches!(r.purpose, Purpose::Call(_)) => {
                let lock = acquire.lock.clone();
                r.purpose = Purpose::Abandoned;
                r.at = None;
                r.deferred = false;
                r.send_at = Time::MAX;
                r.give_up_at = Time::MAX;
                r.contact_by = Time::MAX;
                let cancel = Op::Cancel {
                    lock: lock.clone(),
                    seq,
                };
                // A withdrawal never gives up: an acquire left queued would be granted to
                // nobody one day (and, unlike a stray grant, no keep-alive answer lists it).
                // It ends when answered, or with the session.
                let purpose = Purpose::Cancel { lock, acquire: seq };
                let cancel = self.number(purpose, cancel, Time::MAX);
                self.send(cancel);
            }
            _ => {
                let removed = self.requests.remove(&seq);
                if let Some(Op::Release { lock, token }) = removed.as_ref().map(|r| &r.op) {
                    // Answered or not, the caller is done with this grant: stop renewing it.
                    // If it is still ours at the service, a keep-alive finds it and gives it
                    // back, or its lease runs out.
                    self.held.remove(lock, *token);
                }
                if let Some(Purpose::Cancel { acquire, .. }) = removed.as_ref().map(|r| &r.purpose)
                {
                    self.requests.remove(acquire);
                }
                if let Some(lock) = removed.as_ref().and_then(|r| r.lock()) {
                    self.release_deferred(lock);
                }
                if removed.is_some_and(|r| matches!(r.purpose, Purpose::KeepAlive { .. })) {
                    self.keepalive_ended();
                }
            }
        }
    }

    /// Lets acquires of `lock` held back for a withdrawal go, once none is left.
    pub(super) fn release_deferred(&mut self, lock: &LockName) {
        if self.withdrawing(Some(lock)) {
            return;
        }
        let ready: Vec<Seq> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deferred && r.lock() == Some(lock))
            .map(|(seq, _)| *seq)
            .collect();
        for seq in ready {
            if let Some(r) = self.requests.get_mut(&seq) {
                r.deferred = false;
            }
            self.send(seq);
        }
    }

    pub(super) fn abandon(&mut self, call: CallId) {
        if let Some((lock, token)) = self.held.take_confirming(call) {
            self.give_back(lock, token);
            return;
        }
        let Some(seq) = self.calls.remove(&call) else {
            return;
        };
        let Some(r) = self.requests.get_mut(&seq) else {
            return;
        };
        if matches!(r.op, Op::Release { .. }) {
            // A release is finished even if nobody waits for it: the lock must not stay held.
            r.purpose = Purpose::GiveBack;
            return;
        }
        self.drop_request(seq);
    }

    /// Releases `lock` by `token` in the background.
    pub(super) fn give_back(&mut self, lock: LockName, token: FencingToken) {
        let give_up_at = self.now + self.cfg.deadline;
        let seq = self.number(Purpose::GiveBack, Op::Release { lock, token }, give_up_at);
        self.send(seq);
    }
}
