//! Checks of a request that do not depend on state: the leader runs them before proposing, so a
//! malformed request never reaches the log, and applying runs them again, so the state machine
//! is total on its own.

use crate::config::Limits;
use crate::protocol::{Mode, Op, Rejection};
use std::time::Duration;

/// Checks a lock or file name against the limits.
pub(crate) fn check_name(len: usize, limits: &Limits) -> Result<(), Rejection> {
    if len == 0 || len > limits.max_name_len {
        return Err(Rejection::BadName {
            max: limits.max_name_len,
        });
    }
    Ok(())
}

/// The refusal of a lease outside what a node accepts: the cluster's limits, narrowed by the
/// node's own cap (which the configuration keeps within the limits). One constructor, so the
/// range a client is told is the range that is checked.
pub(crate) fn bad_lease(limits: &Limits, cap: Option<Duration>) -> Rejection {
    Rejection::BadLease {
        min: limits.min_lease,
        max: cap.map_or(limits.max_lease, |cap| cap.min(limits.max_lease)),
    }
}

/// A page must be allowed at least one row.
fn check_limit(limit: u32) -> Result<(), Rejection> {
    if limit == 0 {
        return Err(Rejection::Invalid("a page limit must be at least 1".into()));
    }
    Ok(())
}

/// Checks the parts of a request that do not depend on state. The leader runs this before
/// proposing, so a malformed request never reaches the log; applying runs it again, so the state
/// machine is total on its own.
pub(crate) fn check_request(op: &Op, limits: &Limits) -> Result<(), Rejection> {
    match op {
        Op::Acquire { .. } | Op::AcquireAs { .. } => {
            let Some(acquire) = op.as_acquire() else {
                return Ok(());
            };
            check_name(acquire.lock.len(), limits)?;
            if acquire.lease < limits.min_lease || acquire.lease > limits.max_lease {
                return Err(bad_lease(limits, None));
            }
            if acquire.mode == (Mode::Permit { permits: 0 }) {
                return Err(Rejection::Invalid(
                    "a semaphore needs at least one permit".into(),
                ));
            }
            Ok(())
        }
        Op::Release { lock, .. } | Op::Cancel { lock, .. } | Op::Revoke { lock } => {
            check_name(lock.len(), limits)
        }
        Op::Locks {
            prefix,
            after,
            limit,
        } => {
            if prefix.len() > limits.max_name_len {
                return Err(Rejection::BadName {
                    max: limits.max_name_len,
                });
            }
            if let Some(after) = after {
                check_name(after.len(), limits)?;
            }
            check_limit(*limit)
        }
        Op::Sessions { limit, .. } => check_limit(*limit),
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
        Op::Read { file, .. } | Op::TailFile { file, .. } => check_name(file.len(), limits),
        Op::WatchLock { lock, .. } => check_name(lock.len(), limits),
        Op::Proclaim { lock, value, .. } => {
            check_name(lock.len(), limits)?;
            if value.len() > crate::protocol::MAX_VALUE {
                return Err(Rejection::ValueTooLarge {
                    max: crate::protocol::MAX_VALUE,
                });
            }
            Ok(())
        }
        Op::KeepAlive | Op::Members | Op::Promote { .. } | Op::Remove { .. } => Ok(()),
        // An address is opaque here, but bounded like a name so a log entry stays small.
        Op::AddLearner { addr, .. } => check_name(addr.len(), limits),
        Op::Status => Err(Rejection::Invalid(
            "status is not a replicated operation".into(),
        )),
    }
}
