//! Node configuration, with validation. Every time-out, limit and batch size is here, with
//! defaults suited to a LAN cluster.

use crate::types::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

/// Limits on what clients may ask for. Each has a typed refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest lock or file name, in bytes.
    pub max_name_len: usize,
    /// Largest single append, in bytes.
    pub max_append: usize,
    /// Largest file, in bytes.
    pub max_file: u64,
    /// Largest read chunk returned by one `Read`.
    pub max_read: usize,
    /// Most waiters queued on one lock.
    pub max_waiters: usize,
    /// Most client sessions at once.
    pub max_sessions: usize,
    /// Most answered-but-unacknowledged requests kept per session.
    pub max_unacked: usize,
    /// Most locks one session holds and waits for together; an acquire past it is refused
    /// [`crate::Rejection::TooManyLocks`]. A keep-alive's answer lists every lock the session
    /// holds, so this bounds it: [`Config::validate`] checks that such an answer fits in
    /// [`crate::frame::MAX_MESSAGE`] with names of `max_name_len` bytes. Waits count too,
    /// since each may become a grant without another check.
    pub max_locks_per_session: usize,
    /// Shortest lease a client may ask for.
    pub min_lease: Duration,
    /// Longest lease a client may ask for.
    pub max_lease: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_name_len: 256,
            max_append: 1 << 20,
            max_file: 64 << 20,
            max_read: 1 << 20,
            max_waiters: 10_000,
            max_sessions: 100_000,
            max_unacked: 1024,
            max_locks_per_session: 10_000,
            min_lease: Duration::from_millis(100),
            max_lease: Duration::from_secs(300),
        }
    }
}

/// Configuration of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node.
    pub id: NodeId,
    /// The voters the cluster starts with: its configuration until a
    /// [`crate::Command::Membership`] in the log or a snapshot replaces it (membership then
    /// changes at run time, one server at a time; see [`crate::Membership`]). A node that is not
    /// among them starts outside the cluster: it never stands for election, and waits for a
    /// leader to add it (as a learner) and send it the log.
    pub members: Vec<NodeId>,
    /// Where start-up members listen, in the transport's form (the core never reads it):
    /// filled into the start-up configuration, so that [`crate::Node::membership`] lists
    /// usable addresses and the first membership change writes them into the log. An id
    /// missing here has an empty address there. A configuration recovered from the log or a
    /// snapshot carries its own addresses and wins over these.
    pub addresses: BTreeMap<NodeId, String>,
    /// Seed of the election-jitter generator. Give each node its own.
    pub seed: u64,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// Base election time-out; also the check-quorum window.
    pub election_timeout: Duration,
    /// Added per rank (0 for the lowest id), so the lowest-id live node usually stands first.
    pub election_stagger: Duration,
    /// Upper bound of the random part of the election time-out.
    pub election_jitter: Duration,
    /// Hand leadership to a lower-id member once it is fully caught up.
    pub prefer_lowest_id: bool,
    /// Most entries in one AppendEntries.
    pub max_batch_entries: usize,
    /// Soft limit of entry payload bytes in one AppendEntries (one entry is always allowed).
    pub max_batch_bytes: usize,
    /// Most AppendEntries in flight to one follower.
    pub max_inflight: usize,
    /// Take a snapshot every this many applied entries.
    pub snapshot_every: u64,
    /// Entries kept in memory behind a snapshot, so a briefly lagging follower needs no snapshot.
    pub log_retain: u64,
    /// Size of one snapshot chunk.
    pub snapshot_chunk: usize,
    /// After a lease expires, the lock stays ungranted this long (a grace period for a holder
    /// whose writes may still be in flight). Zero disables it.
    pub lock_delay: Duration,
    /// A client session with no request for this long is expired and its locks released. Must
    /// be longer than any lease and than any client's retry deadline.
    pub session_ttl: Duration,
    /// Longest lease this node grants while it leads, within `limits`; `None` for no cap beyond
    /// `limits.max_lease`. Only the leader checks it, when a request arrives, never when an entry
    /// is applied: members may have different caps without their state machines diverging. A
    /// grant made under another leader keeps its lease, which keep-alives renew as it was given.
    pub lease_cap: Option<Duration>,
    /// A learner is promoted to voter only if its log is known to match the leader's within
    /// this many entries of the leader's last index, so that a new voter does not leave the
    /// cluster waiting while it catches up (and in any case only if it holds the entry that
    /// made it a learner and was heard within an election time-out).
    pub promote_max_lag: u64,
    /// How many recent lock events the node keeps for watches (each a few dozen bytes, more
    /// with a proclaimed value). A watcher that falls further behind is answered with the
    /// lock's current state, marked compacted. 0 keeps none: every resumed watch is then
    /// answered that way.
    pub watch_history: usize,
    /// Most watches and tails a leader holds waiting at once; more are refused
    /// [`crate::Rejection::TooManyWatches`].
    pub max_watches: usize,
    /// Client limits.
    pub limits: Limits,
}

impl Config {
    /// A configuration with defaults for node `id` of `members`.
    pub fn new(id: NodeId, members: impl IntoIterator<Item = NodeId>) -> Config {
        let mut members: Vec<NodeId> = members.into_iter().collect();
        members.sort();
        members.dedup();
        Config {
            id,
            members,
            addresses: BTreeMap::new(),
            seed: id.get(),
            heartbeat_interval: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            election_stagger: Duration::from_millis(100),
            election_jitter: Duration::from_millis(100),
            prefer_lowest_id: true,
            max_batch_entries: 4096,
            max_batch_bytes: 1 << 20,
            max_inflight: 8,
            snapshot_every: 10_000,
            log_retain: 1_000,
            snapshot_chunk: 256 << 10,
            lock_delay: Duration::ZERO,
            session_ttl: Duration::from_secs(600),
            lease_cap: None,
            promote_max_lag: 1_000,
            watch_history: 10_000,
            max_watches: 10_000,
            limits: Limits::default(),
        }
    }

    /// A single-node cluster.
    pub fn single(id: NodeId) -> Config {
        Config::new(id, [id])
    }

    /// Checks that the configuration can work, and that no message its limits allow could
    /// outgrow the frame budget ([`crate::frame`]).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        let mut sorted = self.members.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.members.len() {
            return Err(ConfigError::DuplicateMember);
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::Invalid("heartbeat_interval must be positive"));
        }
        if self.election_timeout < self.heartbeat_interval * 2 {
            return Err(ConfigError::Invalid(
                "election_timeout must be at least twice heartbeat_interval",
            ));
        }
        if self.max_batch_entries == 0 || self.max_inflight == 0 || self.snapshot_chunk == 0 {
            return Err(ConfigError::Invalid(
                "max_batch_entries, max_inflight and snapshot_chunk must be positive",
            ));
        }
        if self.snapshot_every == 0 {
            return Err(ConfigError::Invalid("snapshot_every must be positive"));
        }
        let l = &self.limits;
        if l.max_name_len == 0
            || l.max_append == 0
            || l.max_read == 0
            || l.max_sessions == 0
            || l.max_locks_per_session == 0
        {
            return Err(ConfigError::Invalid("limits must be positive"));
        }
        if l.min_lease.is_zero() || l.min_lease > l.max_lease {
            return Err(ConfigError::Invalid("need 0 < min_lease <= max_lease"));
        }
        if self.session_ttl <= l.max_lease {
            return Err(ConfigError::Invalid("session_ttl must exceed max_lease"));
        }
        if let Some(cap) = self.lease_cap {
            if cap < l.min_lease || cap > l.max_lease {
                return Err(ConfigError::Invalid(
                    "lease_cap must lie within [limits.min_lease, limits.max_lease]",
                ));
            }
        }
        crate::frame::check(self)
    }

    /// How many votes make a majority of the start-up voters (the node counts from the
    /// configuration in force: [`crate::Node::membership`]).
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// Position of this node among the start-up voters ordered by id (0 = lowest id).
    pub fn rank(&self) -> usize {
        self.members.iter().filter(|m| **m < self.id).count()
    }

    /// The other start-up voters.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().copied().filter(move |m| *m != self.id)
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `members` is empty.
    #[error("the cluster has no members")]
    NoMembers,
    /// A member is listed twice.
    #[error("a member is listed twice")]
    DuplicateMember,
    /// Some value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(&'static str),
    /// Under these limits `what` could encode to `bound` bytes, more than the frame budget
    /// [`crate::frame::MAX_MESSAGE`]: lower the limits it names.
    #[error("{what} could take {bound} bytes, over the {max}-byte frame budget")]
    MessageTooLarge {
        /// The message, and the settings that size it.
        what: &'static str,
        /// Its largest encoded size under the configuration.
        bound: usize,
        /// The frame budget.
        max: usize,
    },
}
