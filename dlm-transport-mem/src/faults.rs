//! Per-link fault settings and the endpoints a link joins.

use dlm_core::NodeId;
use std::fmt;
use std::time::Duration;

/// One end of a link: a node, or a client known by the pseudo-id the network gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// A node.
    Node(NodeId),
    /// A client, by the pseudo-id [`crate::MemNetwork::client`] gave it.
    Client(u64),
}

impl From<NodeId> for Endpoint {
    fn from(id: NodeId) -> Self {
        Endpoint::Node(id)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Node(id) => write!(f, "node {id}"),
            Endpoint::Client(id) => write!(f, "client #{id}"),
        }
    }
}

/// What one directed link does to the messages it carries.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkFaults {
    /// Probability in `[0, 1]` that a message is lost.
    pub drop: f64,
    /// Probability in `[0, 1]` that a message that is not lost arrives twice.
    pub duplicate: f64,
    /// Each copy is delivered after a delay drawn uniformly from `delay.0..=delay.1`.
    pub delay: (Duration, Duration),
}

impl LinkFaults {
    /// A perfect link: nothing lost, nothing duplicated, no delay.
    pub const NONE: LinkFaults = LinkFaults {
        drop: 0.0,
        duplicate: 0.0,
        delay: (Duration::ZERO, Duration::ZERO),
    };
}

impl Default for LinkFaults {
    fn default() -> Self {
        LinkFaults::NONE
    }
}
