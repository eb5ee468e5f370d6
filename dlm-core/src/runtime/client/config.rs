//! Client settings and errors.

use crate::protocol::Rejection;
use crate::types::NodeId;
use std::time::Duration;

/// How a [`super::Client`] talks to the cluster.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Every node of the cluster.
    pub nodes: Vec<NodeId>,
    /// The lease asked for with every lock.
    pub lease: Duration,
    /// First retry back-off; doubled per attempt up to `backoff_cap`, with full jitter.
    pub backoff_base: Duration,
    /// Longest back-off.
    pub backoff_cap: Duration,
    /// How long one attempt at one node may take before the next attempt.
    pub attempt_timeout: Duration,
    /// How long a whole call may take (on top of the wait of a waiting acquire) before it fails
    /// with [`ClientError::Unavailable`].
    pub deadline: Duration,
    /// How much faster the servers' clocks may run than ours over one lease; subtracted from
    /// [`super::LockGuard::safe_until`].
    pub drift_bound: Duration,
    /// Seed for the client id and the jitter; `None` draws one from the OS.
    pub seed: Option<u64>,
}

impl ClientConfig {
    /// Defaults for a LAN cluster of `nodes`.
    pub fn new(nodes: impl IntoIterator<Item = NodeId>) -> ClientConfig {
        ClientConfig {
            nodes: nodes.into_iter().collect(),
            lease: Duration::from_secs(10),
            backoff_base: Duration::from_millis(10),
            backoff_cap: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(10),
            drift_bound: Duration::from_millis(100),
            seed: None,
        }
    }
}

/// Why a client call failed. New kinds of failure may be added, so matches need a fallback.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A try-lock found the lock taken.
    #[error("lock is busy")]
    Busy,
    /// A waiting acquire waited as long as it was allowed.
    #[error("timed out waiting for the lock")]
    TimedOut,
    /// The client does not hold the lock (any more).
    #[error("client does not hold the lock")]
    NotHolder,
    /// The lock was lost and granted to someone else since this token was issued.
    #[error("stale fencing token")]
    StaleToken,
    /// The lock was granted, but its lease ran out before the grant reached this client (the
    /// answer was lost for longer than the lease). The lock is free or someone else's; ask again.
    #[error("the grant's lease ran out before its answer arrived")]
    GrantExpired,
    /// No leader answered before the call's deadline.
    #[error("no quorum reachable before the deadline")]
    Unavailable,
    /// Every node refused the connection at the handshake (another cluster id, another protocol
    /// version, a missing or wrong cluster secret): retrying cannot help, so the call fails at
    /// once with a node's reason.
    #[error("every node refused the connection: {0}")]
    Refused(String),
    /// The service refused the request for another reason.
    #[error("rejected: {0}")]
    Rejected(Rejection),
    /// The answer did not fit the request.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<Rejection> for ClientError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Busy => ClientError::Busy,
            Rejection::TimedOut => ClientError::TimedOut,
            Rejection::NotHolder => ClientError::NotHolder,
            Rejection::StaleToken { .. } => ClientError::StaleToken,
            other => ClientError::Rejected(other),
        }
    }
}
