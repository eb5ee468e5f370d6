//! Why a client call failed, and, when nothing could be reached, why for each node.

use crate::protocol::Rejection;
use crate::types::NodeId;
use std::fmt;

/// What went wrong with one node during a call, as last seen.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeCause {
    /// Not tried before the call gave up.
    NotTried,
    /// The connection could not be made or broke.
    Connection(String),
    /// The node refused the handshake, and why.
    Refused(String),
    /// It answered that no leader is known (an election is under way or no quorum exists).
    NoLeader,
    /// It answered that it does not lead, and named the node it believes does.
    NotLeader(NodeId),
    /// It did not answer within the attempt time-out.
    Silent,
}

impl fmt::Display for NodeCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeCause::NotTried => write!(f, "not tried"),
            NodeCause::Connection(reason) => write!(f, "connection failed: {reason}"),
            NodeCause::Refused(reason) => write!(f, "handshake refused: {reason}"),
            NodeCause::NoLeader => write!(f, "no leader elected"),
            NodeCause::NotLeader(leader) => write!(f, "not the leader (it named node {leader})"),
            NodeCause::Silent => write!(f, "timed out waiting for an answer"),
        }
    }
}

/// Why no leader could be reached: the last thing seen of every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    /// Each node of the configuration, with its cause.
    pub causes: Vec<(NodeId, NodeCause)>,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no leader reachable before the deadline")?;
        for (i, (node, cause)) in self.causes.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}node {node}: {cause}")?;
        }
        Ok(())
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
    /// answer was lost for longer than the lease). The grant has been given back; ask again.
    #[error("the grant's lease ran out before its answer arrived")]
    GrantExpired,
    /// No leader answered before the call's deadline; the causes say what each node did.
    #[error("{0}")]
    Unavailable(Unreachable),
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
    /// The client has shut down (its driver is gone).
    #[error("the client has shut down")]
    Closed,
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
