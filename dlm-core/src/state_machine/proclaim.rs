//! Election values: what the holder of a lock proclaims to the lock's observers.
//!
//! A value belongs to one grant: it is shown only while the grant that proclaimed it is
//! current, and it goes when the lock leaves the table. Only a grant that excludes every other
//! holder may proclaim, so a lock shows at most one value.

use super::apply::Answer;
use super::{Outcome, StateMachine};
use crate::names::LockName;
use crate::protocol::{Rejection, Reply, MAX_VALUE};
use crate::types::{ClientId, FencingToken};

impl StateMachine {
    /// Proclaims `value` for the grant `token` of `lock`, which `client` must hold alone.
    pub(super) fn proclaim(
        &mut self,
        client: ClientId,
        lock: &LockName,
        token: FencingToken,
        value: &[u8],
    ) -> Answer {
        if value.len() > MAX_VALUE {
            return Err(Rejection::ValueTooLarge { max: MAX_VALUE });
        }
        if !self.check_holder(lock, client, token)?.is_exclusive() {
            return Err(Rejection::NotExclusive);
        }
        self.proclaimed
            .insert(lock.clone(), (token, value.to_vec()));
        Ok(Reply::Proclaimed)
    }

    /// The value proclaimed under a current grant of `lock`, with that grant's token.
    pub fn proclaimed(&self, lock: &LockName) -> Option<(FencingToken, &[u8])> {
        let (token, value) = self.proclaimed.get(lock)?;
        let current = self.locks.get(lock)?.holder_with(*token).is_some();
        current.then_some((*token, value.as_slice()))
    }

    /// Forgets the values of locks that left the table during one apply, so that the values
    /// kept never outnumber the locks.
    pub(super) fn forget_freed_values(&mut self, outcomes: &[Outcome]) {
        if self.proclaimed.is_empty() {
            return;
        }
        for outcome in outcomes {
            if let Outcome::Freed { lock } = outcome {
                self.proclaimed.remove(lock);
            }
        }
    }
}
