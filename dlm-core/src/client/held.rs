//! The locks a client holds: each grant's token and the end of its safe window, numbered in the
//! order they were entered so a keep-alive answer speaks only for grants older than it.

use super::call::CallId;
use super::config::DriftBound;
use crate::names::LockName;
use crate::types::{FencingToken, Time};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Clone, Debug)]
struct Grant {
    token: FencingToken,
    lease: Duration,
    safe_until: Time,
    /// Its place in the count of grants entered.
    number: u64,
    /// Granted after a wait that ate its safe window: the call waits for a keep-alive to
    /// confirm it before it is handed out, until the time given.
    confirming: Option<(CallId, Time)>,
}

/// What a keep-alive answer did to the held grants.
#[derive(Debug, Default)]
pub(super) struct Renewal {
    /// Renewed grants and their new safe window end.
    pub(super) renewed: Vec<(LockName, FencingToken, Time)>,
    /// Grants the answer did not list, now taken out.
    pub(super) lost: Vec<(LockName, FencingToken)>,
    /// Grants whose calls waited for this confirmation, and their safe window end.
    pub(super) confirmed: Vec<(CallId, LockName, FencingToken, Time)>,
    /// Grants whose calls waited for a confirmation that did not come, or came too late to
    /// be safe, now taken out; true if the answer still listed it (so it is still ours).
    pub(super) unconfirmed: Vec<(CallId, LockName, FencingToken, bool)>,
}

/// The held locks.
#[derive(Clone, Debug, Default)]
pub(super) struct Held {
    locks: BTreeMap<LockName, Grant>,
    /// Grants entered so far.
    entered: u64,
}

impl Held {
    pub(super) fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }

    /// Grants entered so far: a keep-alive numbered now speaks for these.
    pub(super) fn grants(&self) -> u64 {
        self.entered
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (&LockName, FencingToken, Time)> {
        self.locks
            .iter()
            .filter(|(_, g)| g.confirming.is_none())
            .map(|(l, g)| (l, g.token, g.safe_until))
    }

    pub(super) fn contains(&self, lock: &LockName) -> bool {
        self.locks.contains_key(lock)
    }

    pub(super) fn has(&self, lock: &LockName, token: FencingToken) -> bool {
        self.locks.get(lock).is_some_and(|g| g.token == token)
    }

    /// Enters a grant; with `confirming`, its call waits (until the time given) for a
    /// keep-alive to confirm it.
    pub(super) fn insert(
        &mut self,
        lock: LockName,
        token: FencingToken,
        lease: Duration,
        safe_until: Time,
        confirming: Option<(CallId, Time)>,
    ) {
        self.entered += 1;
        let number = self.entered;
        let grant = Grant {
            token,
            lease,
            safe_until,
            number,
            confirming,
        };
        self.locks.insert(lock, grant);
    }

    /// Takes out the grant call `call` waits to see confirmed.
    pub(super) fn take_confirming(&mut self, call: CallId) -> Option<(LockName, FencingToken)> {
        let lock = self
            .locks
            .iter()
            .find(|(_, g)| g.confirming.is_some_and(|(c, _)| c == call))
            .map(|(l, _)| l.clone())?;
        self.locks.remove(&lock).map(|g| (lock, g.token))
    }

    /// Whether call `call` waits for its grant to be confirmed.
    pub(super) fn is_confirming(&self, call: CallId) -> bool {
        self.locks
            .values()
            .any(|g| g.confirming.is_some_and(|(c, _)| c == call))
    }

    /// Takes out every grant still waiting for a confirmation.
    pub(super) fn take_all_confirming(&mut self) -> Vec<(CallId, LockName, FencingToken)> {
        let mut out = Vec::new();
        self.locks.retain(|lock, g| match g.confirming {
            Some((call, _)) => {
                out.push((call, lock.clone(), g.token));
                false
            }
            None => true,
        });
        out
    }

    pub(super) fn remove(&mut self, lock: &LockName, token: FencingToken) {
        if self.has(lock, token) {
            self.locks.remove(lock);
        }
    }

    /// The earliest end of a safe window or of a wait for confirmation (`Time::MAX` if
    /// nothing is held).
    pub(super) fn earliest_end(&self) -> Time {
        self.locks
            .values()
            .map(|g| g.confirming.map_or(g.safe_until, |(_, by)| by))
            .min()
            .unwrap_or(Time::MAX)
    }

    /// When some grant has less than half its lease left of its safe window (`Time::MAX` if
    /// none is held): renewing by then leaves time to retry a lost keep-alive.
    pub(super) fn renew_by(&self) -> Time {
        self.locks
            .values()
            .filter(|g| g.confirming.is_none())
            .map(|g| {
                let half = u64::try_from((g.lease / 2).as_nanos()).unwrap_or(u64::MAX);
                Time::from_nanos(g.safe_until.as_nanos().saturating_sub(half))
            })
            .min()
            .unwrap_or(Time::MAX)
    }

    /// Takes out the grants whose safe window has ended by `now`, and those whose wait for
    /// a confirmation has.
    #[allow(clippy::type_complexity)]
    pub(super) fn expire(
        &mut self,
        now: Time,
    ) -> (
        Vec<(LockName, FencingToken)>,
        Vec<(CallId, LockName, FencingToken)>,
    ) {
        let (mut lost, mut unconfirmed) = (Vec::new(), Vec::new());
        self.locks.retain(|lock, g| match g.confirming {
            Some((call, by)) if now >= by => {
                unconfirmed.push((call, lock.clone(), g.token));
                false
            }
            Some(_) => true,
            None if now >= g.safe_until => {
                lost.push((lock.clone(), g.token));
                false
            }
            None => true,
        });
        (lost, unconfirmed)
    }

    /// Applies a keep-alive answer that listed `listed`, first sent at `sent` when `grants`
    /// grants had been entered. Grants entered after it was sent are left alone, since the
    /// answer may predate them.
    pub(super) fn renew(
        &mut self,
        grants: u64,
        listed: &[(LockName, FencingToken)],
        sent: Time,
        now: Time,
        drift: &DriftBound,
    ) -> Renewal {
        let mut out = Renewal::default();
        self.locks.retain(|lock, g| {
            if g.number > grants {
                return true;
            }
            let still = listed.iter().any(|(l, t)| l == lock && *t == g.token);
            let safe_until = g.safe_until.max(drift.safe_until(sent, g.lease));
            match (still, g.confirming.take()) {
                (true, Some((call, _))) if safe_until <= now => {
                    out.unconfirmed.push((call, lock.clone(), g.token, true));
                    false
                }
                (true, confirming) => {
                    g.safe_until = safe_until;
                    let entry = (lock.clone(), g.token, g.safe_until);
                    match confirming {
                        Some((call, _)) => {
                            out.confirmed.push((call, entry.0, entry.1, entry.2));
                        }
                        None => out.renewed.push(entry),
                    }
                    true
                }
                (false, Some((call, _))) => {
                    out.unconfirmed.push((call, lock.clone(), g.token, false));
                    false
                }
                (false, None) => {
                    out.lost.push((lock.clone(), g.token));
                    false
                }
            }
        });
        out
    }

    /// Takes out every grant (its session is gone), with the call of any still unconfirmed.
    pub(super) fn clear(&mut self) -> Vec<(LockName, FencingToken, Option<CallId>)> {
        std::mem::take(&mut self.locks)
            .into_iter()
            .map(|(lock, g)| (lock, g.token, g.confirming.map(|(call, _)| call)))
            .collect()
    }
}
