//! The kinds of lock a name can be, and the mode an acquire asks for.
//!
//! A name's kind is fixed by the acquire that brings it into the lock table and holds while the
//! name stays there (held, queued for or delayed); once it leaves the table, the next acquire
//! may make it another kind. Every kind shares one FIFO queue per name, one lease and one
//! fencing token per grant, and the same dedup, cancellation, keep-alive and revoke rules.

use serde::{Deserialize, Serialize};

/// What kind of lock a name is while it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum LockKind {
    /// One holder at a time (what [`Op::Acquire`](super::Op::Acquire) takes).
    #[default]
    Exclusive,
    /// A read-write lock: any number of readers together, or one writer alone.
    Shared,
    /// A counting semaphore: at most `permits` holders together, one permit each.
    Semaphore {
        /// How many holders it admits at once (at least 1).
        permits: u32,
    },
}

/// How an acquire wants a lock ([`Op::AcquireAs`](super::Op::AcquireAs)). The mode names the
/// kind: [`Mode::Read`] and [`Mode::Write`] are the modes of a [`LockKind::Shared`] lock, and
/// [`Mode::Permit`] fixes a semaphore's size. An acquire whose mode does not fit the kind the
/// name has is refused with [`Rejection::WrongKind`](super::Rejection::WrongKind).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Mode {
    /// The whole lock, as [`Op::Acquire`](super::Op::Acquire) takes it.
    #[default]
    Exclusive,
    /// A shared (reader's) grant of a read-write lock.
    Read,
    /// The exclusive (writer's) grant of a read-write lock.
    Write,
    /// One permit of a semaphore of `permits` permits.
    Permit {
        /// The semaphore's size; the first acquire of the name fixes it.
        permits: u32,
    },
}

impl Mode {
    /// The kind of lock this mode belongs to.
    pub fn kind(self) -> LockKind {
        match self {
            Mode::Exclusive => LockKind::Exclusive,
            Mode::Read | Mode::Write => LockKind::Shared,
            Mode::Permit { permits } => LockKind::Semaphore { permits },
        }
    }

    /// Whether a grant in this mode excludes every other holder of the lock, so that it may
    /// append to the files the lock guards.
    pub fn is_exclusive(self) -> bool {
        matches!(self, Mode::Exclusive | Mode::Write)
    }
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockKind::Exclusive => write!(f, "exclusive"),
            LockKind::Shared => write!(f, "shared"),
            LockKind::Semaphore { permits } => write!(f, "semaphore of {permits}"),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Exclusive => write!(f, "exclusive"),
            Mode::Read => write!(f, "read"),
            Mode::Write => write!(f, "write"),
            Mode::Permit { permits } => write!(f, "permit of {permits}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_names_its_kind_and_only_whole_grants_are_exclusive() {
        assert_eq!(Mode::Exclusive.kind(), LockKind::Exclusive);
        assert_eq!(Mode::Read.kind(), LockKind::Shared);
        assert_eq!(Mode::Write.kind(), LockKind::Shared);
        assert_eq!(
            Mode::Permit { permits: 3 }.kind(),
            LockKind::Semaphore { permits: 3 }
        );
        assert!(Mode::Exclusive.is_exclusive());
        assert!(Mode::Write.is_exclusive());
        assert!(!Mode::Read.is_exclusive());
        assert!(!Mode::Permit { permits: 1 }.is_exclusive());
    }
}
