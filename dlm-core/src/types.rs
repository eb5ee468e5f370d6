//! Newtypes for every id, counter and instant that crosses a module boundary, so that a term can
//! never be passed where a log index is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

macro_rules! counter_newtype {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw value, for display, hashing into storage formats and arithmetic at edges.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

counter_newtype!(
    /// A member of the cluster. Lower ids are preferred as leader.
    NodeId(u64)
);
counter_newtype!(
    /// A Raft term: a logical epoch with at most one leader.
    Term(u64)
);
counter_newtype!(
    /// Position of an entry in the replicated log; the first entry has index 1, 0 means "none".
    LogIndex(u64)
);
counter_newtype!(
    /// A fencing token: every grant of any lock takes the next value, so a resource can refuse a
    /// writer whose token is lower than one it has already seen.
    FencingToken(u64)
);
counter_newtype!(
    /// A client's request number. Each new request takes the next seq; a retry reuses it, which is
    /// what lets the service apply every request at most once.
    Seq(u64)
);
counter_newtype!(
    /// A client connection as numbered by the transport; replies are addressed to it.
    ConnId(u64)
);

impl Term {
    /// The term after this one.
    pub const fn next(self) -> Term {
        Term(self.0 + 1)
    }
}

impl LogIndex {
    /// The index after this one.
    pub const fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
    /// The index before this one (saturating at 0).
    pub const fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
    /// The index `n` entries after this one (saturating: indexes never wrap).
    pub const fn plus(self, n: u64) -> LogIndex {
        LogIndex(self.0.saturating_add(n))
    }
    /// The index `n` entries before this one, saturating at 0.
    pub const fn minus(self, n: u64) -> LogIndex {
        LogIndex(self.0.saturating_sub(n))
    }
}

impl FencingToken {
    /// The token after this one: what the next grant gets. Tokens only grow, so a resource
    /// that remembers the highest token it has seen refuses every earlier holder.
    pub const fn next(self) -> FencingToken {
        FencingToken(self.0 + 1)
    }
}

impl Seq {
    /// The seq after this one.
    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

/// A client's identity: 128 random bits chosen by the client itself, so that no coordination is
/// needed to create one and two clients practically never collide.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u128);

impl ClientId {
    /// Builds an id from random bits supplied by the caller (the core draws no OS randomness).
    pub const fn from_random(bits: u128) -> ClientId {
        ClientId(bits)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientId({:08x})", (self.0 >> 96) as u32)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", (self.0 >> 96) as u32)
    }
}

impl ClientId {
    /// What others may be told of this client: see [`ClientTag`].
    pub const fn tag(self) -> ClientTag {
        ClientTag((self.0 >> 96) as u32)
    }
}

/// A client as anyone may see it: the first 32 of its id's 128 random bits, which is what a
/// [`ClientId`] displays as. A client id is its session's only credential (a request that
/// carries it, and a grant's token, acts as that holder), so answers that any client may get,
/// such as a watch's, name holders by tag; the 96 bits left out cannot be guessed. Operators'
/// listings (admin-only where nodes authenticate) show whole ids, whose display matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientTag(pub u32);

impl fmt::Display for ClientTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A monotonic instant in nanoseconds since an arbitrary origin chosen by the driver.
///
/// The core never reads a clock: every call takes `now: Time`, so a simulator can make any time it
/// wants and a run replays exactly. Durations are plain [`std::time::Duration`]s; only durations,
/// never instants, go on the wire, because two nodes' origins differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(u64);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(0);
    /// Later than any instant a driver will produce; used for "no deadline".
    pub const MAX: Time = Time(u64::MAX);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }
    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Time {
        Time(millis.saturating_mul(1_000_000))
    }
    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Adds a duration, saturating at [`Time::MAX`] so that "wait forever" cannot overflow.
    pub fn saturating_add(self, d: Duration) -> Time {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(nanos))
    }
    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        self.saturating_add(d)
    }
}

/// The last entry of a log (or of a snapshot): enough to compare two logs for up-to-dateness and
/// to run the consistency check of AppendEntries.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// Term of the entry.
    pub term: Term,
    /// Index of the entry.
    pub index: LogIndex,
}

impl LogPosition {
    /// The position of an entry.
    pub const fn new(term: Term, index: LogIndex) -> LogPosition {
        LogPosition { term, index }
    }
}
