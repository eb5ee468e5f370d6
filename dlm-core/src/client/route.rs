//! Where the client sends next: the node it believes leads, or the next one to ask.

use crate::types::NodeId;

/// The node to try first: the last one that answered as leader or was named as leader,
/// else the next after the last that failed.
#[derive(Clone, Debug)]
pub(super) struct Route {
    nodes: Vec<NodeId>,
    target: usize,
    leader_known: bool,
}

impl Route {
    /// Starts at the first node (callers check that there is one).
    pub(super) fn new(nodes: Vec<NodeId>) -> Route {
        Route {
            nodes,
            target: 0,
            leader_known: false,
        }
    }

    /// The node to send to.
    pub(super) fn target(&self) -> NodeId {
        self.nodes
            .get(self.target % self.nodes.len().max(1))
            .copied()
            .unwrap_or(NodeId(0))
    }

    /// Whether the target answered as leader, or was named leader, since the last failure.
    pub(super) fn leader_known(&self) -> bool {
        self.leader_known
    }

    /// `node` answered as leader.
    pub(super) fn answered_by(&mut self, node: NodeId) {
        if let Some(i) = self.nodes.iter().position(|n| *n == node) {
            self.target = i;
            self.leader_known = true;
        }
    }

    /// A node named `leader` as the leader.
    pub(super) fn follow(&mut self, leader: NodeId) {
        self.answered_by(leader);
    }

    /// `node` failed, was silent, or knows no leader: move on to the next node, unless another
    /// request already did.
    pub(super) fn moved_from(&mut self, node: NodeId) {
        if self.target() == node && !self.nodes.is_empty() {
            self.target = (self.target + 1) % self.nodes.len();
        }
        self.leader_known = false;
    }
}
