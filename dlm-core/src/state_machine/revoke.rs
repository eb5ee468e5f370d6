//! An operator's force-release ([`crate::Op::Revoke`]).
//!
//! It ends the lock's oldest current grant (its only one, unless the lock is shared or a
//! semaphore: another revoke ends the next) as a release would, so the head of the queue is granted in the same
//! entry under the next token (tokens only grow), and without lock-delay: the operator asked for
//! the lock to move, and the fence, not the delay, is what keeps the revoked holder out. The
//! holder's session remembers the grant as revoked, so that its later append, release or
//! keep-alive is told so ([`Rejection::Revoked`], `Reply::KeptAlive::revoked`) instead of a bare
//! "not held".

use super::apply::Answer;
use super::{Outcome, StateMachine};
use crate::names::LockName;
use crate::protocol::{Rejection, Reply};

impl StateMachine {
    pub(super) fn revoke(&mut self, lock: &LockName, out: &mut Vec<Outcome>) -> Answer {
        // Holders are kept in grant order: the first is the oldest.
        let Some(holder) = self.take_holder(lock, |_| true) else {
            return Err(Rejection::NotHeld);
        };
        self.ended(lock, &holder, out);
        if let Some(session) = self.sessions.get_mut(&holder.client) {
            session.record_revoked(lock, holder.token);
        }
        self.grant_next(lock, out);
        Ok(Reply::Revoked {
            client: holder.client,
            token: holder.token,
        })
    }
}
