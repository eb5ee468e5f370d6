//! The operator of the membership faults: it asks the leader of the highest term for one
//! change at a time (add a node outside the cluster as a learner, promote a learner, remove a
//! member, the leader itself included), sometimes crashes that leader right after, and takes
//! the answers. Refusals (a change in progress, a learner behind, the last voter) are expected
//! outcomes, not violations: the invariants judge what the cluster does.

use super::{Sim, Violation};
use crate::membership::Membership;
use crate::node::Input;
use crate::protocol::{ClientRequest, ClientResponse, Op, Reply};
use crate::types::{ClientId, ConnId, NodeId, Seq};

/// The connection the operator's requests come in on (no simulated client has it).
pub(super) const OPERATOR_CONN: ConnId = ConnId(u64::MAX);
/// The operator's client id.
const OPERATOR: ClientId = ClientId(u128::MAX);

impl Sim {
    /// One membership fault: a change asked of the current leader, if there is one.
    pub(super) fn membership_fault(&mut self) -> Result<(), Violation> {
        let Some(leader) = self.leader() else {
            return Ok(());
        };
        let Some(config) = self.node(leader).map(|n| n.membership().clone()) else {
            return Ok(());
        };
        let op = self.pick_change(config);
        self.admin_seq += 1;
        let request = ClientRequest::new(OPERATOR, Seq(self.admin_seq), Seq(1), op);
        self.log(|| format!("fault: operator asks node {}: {:?}", leader + 1, request.op));
        self.feed(
            leader,
            Input::Client {
                conn: OPERATOR_CONN,
                request,
            },
        )?;
        // A crash in the middle of a change: the entry may be only in the leader's memory, on
        // its disk alone, or on a few followers.
        if self.cfg.faults.crashes && self.rng.chance(0.2) {
            self.nodes[leader].crash_pending = true;
        }
        Ok(())
    }

    /// A change for `leader`'s configuration: to a node outside it, add it; to a learner,
    /// promote it; or remove a member, the leader included. Which of these, and of whom, is
    /// drawn; the number of voters wanders between one and every node.
    fn pick_change(&mut self, config: Membership) -> Op {
        let all = self.nodes.len() as u64;
        let outside: Vec<NodeId> = (1..=all)
            .map(NodeId)
            .filter(|id| !config.contains(*id))
            .collect();
        let learners: Vec<NodeId> = config.learners().iter().map(|m| m.id).collect();
        let members: Vec<NodeId> = config.members().map(|m| m.id).collect();
        let pick =
            |ids: &[NodeId], rng: &mut super::SimRng| ids[rng.below(ids.len() as u64) as usize];
        // Grow while small, shrink while large, either in between.
        let grow = match config.voters().len() {
            0..=2 => 0.8,
            3 => 0.5,
            _ => 0.3,
        };
        if !learners.is_empty() && self.rng.chance(0.7) {
            return Op::Promote {
                id: pick(&learners, &mut self.rng),
            };
        }
        if !outside.is_empty() && self.rng.chance(grow) {
            let id = pick(&outside, &mut self.rng);
            return Op::AddLearner {
                id,
                addr: format!("sim:{id}"),
            };
        }
        Op::Remove {
            id: pick(&members, &mut self.rng),
        }
    }

    /// The operator's answer arrived (or was lost: it does not retry). A removal of the node
    /// that answers it (the leader that applied it) is counted.
    pub(super) fn operator_answer(&mut self, idx: usize, response: &ClientResponse) {
        if let Ok(Reply::Reconfigured(config)) = &response.result {
            if !config.contains(NodeId(idx as u64 + 1)) {
                self.leaders_removed += 1;
            }
        }
        self.log(|| format!("operator ← node {}: {:?}", idx + 1, response.result));
    }
}
