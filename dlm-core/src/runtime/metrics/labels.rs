//! The `op` and `outcome` labels of the client request counter.

use crate::protocol::{Op, Rejection, Reply};

/// The kind of a client request. A request whose arrival the driver did not see (a retry
/// already answered, or one that arrived while the table of pending requests was full) is
/// named from its answer where the answer tells, and is `Unknown` otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Acquire,
    Release,
    Cancel,
    KeepAlive,
    Append,
    Read,
    Status,
    Locks,
    Sessions,
    Revoke,
    /// Membership changes and the members query.
    Members,
    /// An election's leader setting its value.
    Proclaim,
    /// Watching a lock's events or tailing a file.
    Watch,
    Unknown,
}

impl OpKind {
    pub(crate) const COUNT: usize = 14;

    pub(crate) const ALL: [OpKind; OpKind::COUNT] = [
        OpKind::Acquire,
        OpKind::Release,
        OpKind::Cancel,
        OpKind::KeepAlive,
        OpKind::Append,
        OpKind::Read,
        OpKind::Status,
        OpKind::Locks,
        OpKind::Sessions,
        OpKind::Revoke,
        OpKind::Members,
        OpKind::Proclaim,
        OpKind::Watch,
        OpKind::Unknown,
    ];

    pub(crate) fn of(op: &Op) -> OpKind {
        match op {
            Op::Acquire { .. } | Op::AcquireAs { .. } => OpKind::Acquire,
            Op::Release { .. } => OpKind::Release,
            Op::Cancel { .. } => OpKind::Cancel,
            Op::KeepAlive => OpKind::KeepAlive,
            Op::Append { .. } => OpKind::Append,
            Op::Read { .. } => OpKind::Read,
            Op::Status => OpKind::Status,
            Op::Locks { .. } => OpKind::Locks,
            Op::Sessions { .. } => OpKind::Sessions,
            Op::Revoke { .. } => OpKind::Revoke,
            Op::AddLearner { .. } | Op::Promote { .. } | Op::Remove { .. } | Op::Members => {
                OpKind::Members
            }
            Op::Proclaim { .. } => OpKind::Proclaim,
            Op::WatchLock { .. } | Op::TailFile { .. } => OpKind::Watch,
        }
    }

    /// What a successful answer tells of its request.
    pub(crate) fn of_reply(reply: &Reply) -> OpKind {
        match reply {
            Reply::Granted { .. } => OpKind::Acquire,
            Reply::Released => OpKind::Release,
            Reply::Cancelled(_) => OpKind::Cancel,
            Reply::KeptAlive { .. } => OpKind::KeepAlive,
            Reply::Appended { .. } => OpKind::Append,
            Reply::Data { .. } => OpKind::Read,
            Reply::Status(_) => OpKind::Status,
            Reply::Locks(_) => OpKind::Locks,
            Reply::Sessions(_) => OpKind::Sessions,
            Reply::Revoked { .. } => OpKind::Revoke,
            Reply::Reconfigured(_) | Reply::Members(_) => OpKind::Members,
            Reply::Proclaimed => OpKind::Proclaim,
            Reply::Watched(_) => OpKind::Watch,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            OpKind::Acquire => "acquire",
            OpKind::Release => "release",
            OpKind::Cancel => "cancel",
            OpKind::KeepAlive => "keep_alive",
            OpKind::Append => "append",
            OpKind::Read => "read",
            OpKind::Status => "status",
            OpKind::Locks => "locks",
            OpKind::Sessions => "sessions",
            OpKind::Revoke => "revoke",
            OpKind::Members => "members",
            OpKind::Proclaim => "proclaim",
            OpKind::Watch => "watch",
            OpKind::Unknown => "unknown",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The `outcome` labels: `ok`, then one per [`Rejection`] variant.
pub(crate) const OUTCOMES: [&str; 30] = [
    "ok",
    "busy",
    "timed_out",
    "cancelled",
    "not_holder",
    "stale_token",
    "already_held",
    "already_waiting",
    "not_leader",
    "wrong_lock",
    "no_such_file",
    "bad_name",
    "bad_lease",
    "append_too_large",
    "file_too_large",
    "too_many_waiters",
    "too_many_sessions",
    "too_many_unacked",
    "session_expired",
    "seq_below_watermark",
    "invalid",
    "revoked",
    "not_held",
    "not_authorized",
    "membership",
    "wrong_kind",
    "not_exclusive",
    "value_too_large",
    "too_many_watches",
    "too_many_locks",
];

/// The index into [`OUTCOMES`] of an answer. Exhaustive on purpose: a new rejection must
/// get a label of its own.
pub(crate) fn outcome_index(result: &Result<Reply, Rejection>) -> usize {
    let rejection = match result {
        Ok(_) => return 0,
        Err(rejection) => rejection,
    };
    match rejection {
        Rejection::Busy => 1,
        Rejection::TimedOut => 2,
        Rejection::Cancelled => 3,
        Rejection::NotHolder => 4,
        Rejection::StaleToken { .. } => 5,
        Rejection::AlreadyHeld { .. } => 6,
        Rejection::AlreadyWaiting => 7,
        Rejection::NotLeader { .. } => 8,
        Rejection::WrongLock { .. } => 9,
        Rejection::NoSuchFile => 10,
        Rejection::BadName { .. } => 11,
        Rejection::BadLease { .. } => 12,
        Rejection::AppendTooLarge { .. } => 13,
        Rejection::FileTooLarge { .. } => 14,
        Rejection::TooManyWaiters { .. } => 15,
        Rejection::TooManySessions { .. } => 16,
        Rejection::TooManyUnacked { .. } => 17,
        Rejection::SessionExpired => 18,
        Rejection::SeqBelowWatermark => 19,
        Rejection::Invalid(_) => 20,
        Rejection::Revoked { .. } => 21,
        Rejection::NotHeld => 22,
        Rejection::NotAuthorized(_) => 23,
        Rejection::Membership(_) => 24,
        Rejection::WrongKind { .. } => 25,
        Rejection::NotExclusive => 26,
        Rejection::ValueTooLarge { .. } => 27,
        Rejection::TooManyWatches { .. } => 28,
        Rejection::TooManyLocks { .. } => 29,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_kind_sits_at_its_own_index() {
        for (i, kind) in OpKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind:?}");
        }
    }

    #[test]
    fn rejections_get_their_own_labels() {
        assert_eq!(OUTCOMES[outcome_index(&Ok(Reply::Released))], "ok");
        let busy = outcome_index(&Err(Rejection::Busy));
        assert_eq!(OUTCOMES[busy], "busy");
        let leader = outcome_index(&Err(Rejection::NotLeader { hint: None }));
        assert_eq!(OUTCOMES[leader], "not_leader");
        let invalid = outcome_index(&Err(Rejection::Invalid(String::new())));
        assert_eq!(OUTCOMES[invalid], "invalid");
        let revoked = outcome_index(&Err(Rejection::Revoked {
            token: crate::types::FencingToken(1),
        }));
        assert_eq!(OUTCOMES[revoked], "revoked");
        let not_held = outcome_index(&Err(Rejection::NotHeld));
        assert_eq!(OUTCOMES[not_held], "not_held");
        let not_authorized = outcome_index(&Err(Rejection::NotAuthorized(String::new())));
        assert_eq!(OUTCOMES[not_authorized], "not_authorized");
        let too_many_locks = outcome_index(&Err(Rejection::TooManyLocks { max: 1 }));
        assert_eq!(OUTCOMES[too_many_locks], "too_many_locks");
        let revoke = Reply::Revoked {
            client: crate::types::ClientId(1),
            token: crate::types::FencingToken(1),
        };
        assert_eq!(OpKind::of_reply(&revoke).label(), "revoke");
    }
}
