//! What a read-index read is answered once it may be: a file chunk, or a page of the lock table
//! or of the sessions, with the lease and idle times from this leader's timers.

use super::leader_timers::LeaderTimers;
use crate::config::Config;
use crate::protocol::{Op, Rejection, Reply};
use crate::state_machine::StateMachine;
use crate::types::Time;

/// The answer to a read (an [`Op::Read`] or an [`Op::is_query`] op) from a leader's state at
/// `now`.
pub(super) fn answer_read(
    cfg: &Config,
    sm: &StateMachine,
    timers: &LeaderTimers,
    now: Time,
    op: &Op,
) -> Result<Reply, Rejection> {
    match op {
        Op::Read { file, offset } => sm.read(file, *offset, &cfg.limits),
        Op::Locks {
            prefix,
            after,
            limit,
        } => {
            let lease_left = |lock: &_, token| timers.lease_left(lock, token, now);
            let page = sm.locks_page(prefix, after.as_ref(), *limit, lease_left);
            Ok(Reply::Locks(page))
        }
        Op::Sessions { after, limit } => {
            let idle = |client| timers.idle_for(client, now);
            Ok(Reply::Sessions(sm.sessions_page(*after, *limit, idle)))
        }
        // Admission takes only reads and queries as reads.
        _ => Err(Rejection::Invalid("not a read".into())),
    }
}
