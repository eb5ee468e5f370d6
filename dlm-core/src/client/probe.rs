//! Probes: asking the node a waiting acquire is long-polled at whether it still leads, so a
//! waiting client follows a new leader soon after one is elected.

use super::*;

impl ClientCore {
    /// Asks `node` whether it still leads, unless a probe of it is under way.
    pub(super) fn start_probe(&mut self, node: NodeId) {
        let probing = self
            .requests
            .values()
            .any(|r| r.purpose == Purpose::Probe(node));
        if probing {
            return;
        }
        let give_up_at = self.now + self.cfg.leader_check;
        let seq = self.number(Purpose::Probe(node), Op::Status, give_up_at);
        if let Some(r) = self.requests.get_mut(&seq) {
            r.pinned = Some(node);
        }
        self.send(seq);
    }

    /// A probe of `node` answered `status` (`None`: it failed or went unanswered). The
    /// waiting acquires sent to `node` stay if it still leads, and move otherwise: to the
    /// leader it names, else to the next node, which will name one.
    pub(super) fn probed(&mut self, node: NodeId, status: Option<NodeStatus>) {
        let waiting: Vec<Seq> = self
            .requests
            .iter()
            .filter(|(_, r)| r.waits() && r.at == Some(node) && r.call().is_some())
            .map(|(seq, _)| *seq)
            .collect();
        let (now, deadline, check) = (self.now, self.cfg.deadline, self.cfg.leader_check);
        let leads = status.as_ref().is_some_and(|s| s.role == Role::Leader);
        let cause = match &status {
            None => NodeCause::Silent,
            Some(s) => s.leader.map_or(NodeCause::NoLeader, NodeCause::NotLeader),
        };
        if leads {
            self.route.answered_by(node);
        } else {
            self.route.moved_from(node);
            let named = status.and_then(|s| s.leader);
            if let Some(leader) = named.filter(|l| *l != node && self.cfg.nodes.contains(l)) {
                self.route.follow(leader);
            }
        }
        for seq in waiting {
            let Some(r) = self.requests.get_mut(&seq) else {
                continue;
            };
            if leads {
                r.touch_leader(now, deadline);
                r.probe_at = now + check;
            } else {
                r.causes.insert(node, cause.clone());
                r.at = None;
                r.hops = 0;
                self.send(seq);
            }
        }
    }
}
