//! The locks a client holds: each grant's token and the end of its safe window, numbered in the
//! order they were entered so a keep-alive answer speaks only for grants older than it.

use crate::names::LockName;
use crate::types::{FencingToken, Time};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct Grant {
    token: FencingToken,
    safe_until: Time,
    /// Its place in the count of grants entered.
    number: u64,
}

/// The held locks.
#[derive(Clone, Debug, Default)]
pub(super) struct Held {
    locks: BTreeMap<LockName, Grant>,
    /// Grants entered so far.
    entered: u64,
}

impl Held {
    pub(super) fn len(&self) -> usize {
        self.locks.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// Grants entered so far: a keep-alive numbered now speaks for these.
    pub(super) fn grants(&self) -> u64 {
        self.entered
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&LockName, FencingToken, Time)> {
        self.locks.iter().map(|(l, g)| (l, g.token, g.safe_until))
    }

    pub(super) fn contains(&self, lock: &LockName) -> bool {
        self.locks.contains_key(lock)
    }

    pub(super) fn has(&self, lock: &LockName, token: FencingToken) -> bool {
        self.locks.get(lock).is_some_and(|g| g.token == token)
    }

    pub(super) fn insert(&mut self, lock: LockName, token: FencingToken, safe_until: Time) {
        self.entered += 1;
        let number = self.entered;
        self.locks.insert(
            lock,
            Grant {
                token,
                safe_until,
                number,
            },
        );
    }

    pub(super) fn remove(&mut self, lock: &LockName, token: FencingToken) {
        if self.has(lock, token) {
            self.locks.remove(lock);
        }
    }

    /// The earliest end of a safe window (`Time::MAX` if nothing is held).
    pub(super) fn earliest_end(&self) -> Time {
        self.locks
            .values()
            .map(|g| g.safe_until)
            .min()
            .unwrap_or(Time::MAX)
    }

    /// Takes out and returns the grants whose safe window has ended by `now`.
    pub(super) fn expire(&mut self, now: Time) -> Vec<(LockName, FencingToken)> {
        let mut ended = Vec::new();
        self.locks.retain(|lock, g| {
            let alive = now < g.safe_until;
            if !alive {
                ended.push((lock.clone(), g.token));
            }
            alive
        });
        ended
    }

    /// Applies a keep-alive answer that listed `listed`, sent when `grants` grants had been
    /// entered, and renewing to `until`: returns the grants renewed (with their new window end)
    /// and those lost (taken out). Grants entered after it was sent are left alone, since the
    /// answer may predate them.
    #[allow(clippy::type_complexity)]
    pub(super) fn renew(
        &mut self,
        grants: u64,
        listed: &[(LockName, FencingToken)],
        until: Time,
    ) -> (
        Vec<(LockName, FencingToken, Time)>,
        Vec<(LockName, FencingToken)>,
    ) {
        let (mut renewed, mut lost) = (Vec::new(), Vec::new());
        self.locks.retain(|lock, g| {
            if g.number > grants {
                return true;
            }
            if listed.iter().any(|(l, t)| l == lock && *t == g.token) {
                g.safe_until = g.safe_until.max(until);
                renewed.push((lock.clone(), g.token, g.safe_until));
                true
            } else {
                lost.push((lock.clone(), g.token));
                false
            }
        });
        (renewed, lost)
    }

    /// Takes out every grant (its session is gone).
    pub(super) fn clear(&mut self) -> Vec<(LockName, FencingToken)> {
        std::mem::take(&mut self.locks)
            .into_iter()
            .map(|(lock, g)| (lock, g.token))
            .collect()
    }
}
