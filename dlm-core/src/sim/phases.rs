//! The chaos phase's fault injection and the checks at the end of the heal phase.

use super::{Sim, Violation};
use crate::node::Node;

impl Sim {
    /// Injects one fault of the chaos phase.
    pub(super) fn fault(&mut self) -> Result<(), Violation> {
        self.next_fault = self.now + 50_000_000 + self.rng.below(400_000_000);
        let f = self.cfg.faults.clone();
        let n = self.nodes.len();
        // Drawn only when on, so that runs without membership faults replay as before.
        if f.membership && self.rng.chance(0.3) {
            return self.membership_fault();
        }
        let target = self.rng.below(n as u64) as usize;
        match self.rng.below(9) {
            0 => {
                self.net.reroll_loss(&f, &mut self.rng);
                self.log(|| "fault: new loss rate".into());
            }
            1 | 2 if f.partitions && n > 1 => {
                if self.rng.chance(0.5) {
                    self.isolate(target);
                    self.log(|| format!("fault: isolate node {}", target + 1));
                } else {
                    let other = (target + 1 + self.rng.below(n as u64 - 1) as usize) % n;
                    self.net.cut(target, other);
                    self.log(|| format!("fault: cut {} → {}", target + 1, other + 1));
                }
            }
            3 => {
                self.net.heal();
                self.log(|| "fault: links restored".into());
            }
            4 if f.crashes && self.nodes[target].node.is_some() => {
                self.nodes[target].crash_pending = true;
            }
            5 if f.pauses => {
                let until = self.now + 50_000_000 + self.rng.below(1_500_000_000);
                self.nodes[target].paused_until = until;
                self.log(|| format!("fault: pause node {} until {until}", target + 1));
            }
            // A planned restart: the leader hands over, then goes down part-way through.
            7 if f.crashes
                && self.nodes[target]
                    .node
                    .as_ref()
                    .is_some_and(Node::is_leader) =>
            {
                self.log(|| format!("fault: node {} restarts as planned", target + 1));
                self.feed(target, crate::node::Input::HandOver)?;
                self.nodes[target].crash_pending = true;
            }
            // A lock holder left alone with a stalled leader (see `Sim::strand`).
            8 if f.partitions && f.pauses && n > 1 => {
                let holders: Vec<usize> = (0..self.clients.len())
                    .filter(|c| self.clients[*c].holding.is_some())
                    .collect();
                if !holders.is_empty() {
                    let c = holders[self.rng.below(holders.len() as u64) as usize];
                    self.strand(c);
                }
            }
            6 if f.client_crashes => {
                let alive = self.clients.iter().filter(|c| c.alive).count();
                if alive * 2 > self.clients.len() && self.rng.chance(0.3) {
                    let c = self.rng.below(self.clients.len() as u64) as usize;
                    self.clients[c].alive = false;
                    self.log(|| format!("fault: client {c} crashes"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// After heal: every request answered, every node caught up, every acknowledged append in
    /// every file exactly once, no crashed client holding anything.
    pub(super) fn final_checks(&mut self) -> Result<(), Violation> {
        if let Err(b) = self.checker.overlaps_explained() {
            return Err(self.violation(b));
        }
        for c in &self.clients {
            if let (true, Some((call, what, started, _))) = (c.alive, &c.calling) {
                let b = (
                    "liveness",
                    format!(
                        "client {} {call} {what:?} started at {} ms still unanswered",
                        c.idx,
                        started / 1_000_000
                    ),
                );
                return Err(self.violation(b));
            }
        }
        let leaders: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.node(*i).is_some_and(Node::is_leader))
            .collect();
        if leaders.len() != 1 {
            return Err(self.violation(("liveness", format!("leaders after heal: {leaders:?}"))));
        }
        let commit = self.node(leaders[0]).map(Node::commit_index);
        // Only the members of the configuration in force must have caught up: a node outside
        // it (removed, or never added) is sent nothing.
        let config = self.node(leaders[0]).map(|n| n.membership().clone());
        let outside = |i: usize| {
            config
                .as_ref()
                .is_some_and(|c| !c.contains(crate::types::NodeId(i as u64 + 1)))
        };
        for i in 0..self.nodes.len() {
            if outside(i) {
                continue;
            }
            let Some(node) = self.node(i) else {
                return Err(self.violation(("liveness", format!("node {} down", i + 1))));
            };
            if Some(node.applied_index()) != commit {
                let b = (
                    "liveness",
                    format!(
                        "node {} applied {} of {commit:?}",
                        i + 1,
                        node.applied_index()
                    ),
                );
                return Err(self.violation(b));
            }
            if let Err(b) = self.checker.acked_appends_durable(node) {
                return Err(self.violation(b));
            }
            for c in self.clients.iter().filter(|c| !c.alive) {
                if let Some(s) = node.state_machine().session(c.id()) {
                    if !s.held.is_empty() {
                        let b = (
                            "crashed_client_locks_expire",
                            format!("client {} still holds {:?}", c.idx, s.held),
                        );
                        return Err(self.violation(b));
                    }
                }
            }
        }
        Ok(())
    }
}
