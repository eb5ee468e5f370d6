//! What scenario tests use to look at a run and steer it: accessors, crash and restart, cuts.

use super::{Sim, SimClient, Summary, Violation};
use crate::node::Node;

impl Sim {
    /// What the run did so far.
    pub fn summary(&self) -> Summary {
        Summary {
            fingerprint: self.fingerprint,
            steps: self.steps,
            client_ops: self.clients.iter().map(SimClient::ops).sum(),
            revoked: self.checker.revoked_grants() as u64,
            reconfigured: self.checker.reconfigurations() as u64,
            leaders_removed: self.leaders_removed,
            pending_sent: self.pending_sent,
            watches: self.checker.watches_checked(),
        }
    }

    /// True virtual time, in nanoseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Node `idx` (id `idx + 1`), if it is up.
    pub fn node(&self, idx: usize) -> Option<&Node> {
        self.nodes.get(idx)?.node.as_ref()
    }

    /// Index of the node that is leader in the highest term, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.nodes.len())
            .filter(|i| self.node(*i).is_some_and(Node::is_leader))
            .max_by_key(|i| self.node(*i).map(Node::term))
    }

    /// How many `Granted` replies node `idx` has sent.
    pub fn grants_sent(&self, idx: usize) -> u64 {
        self.nodes[idx].grants_sent
    }

    /// How many snapshots node `idx` has installed from a leader.
    pub fn snapshots_installed(&self, idx: usize) -> u64 {
        self.nodes[idx].restored
    }

    /// Client operations answered so far.
    pub fn client_ops(&self) -> u64 {
        self.clients.iter().map(SimClient::ops).sum()
    }

    /// Stops the chaos phase now (faults off, every node up).
    pub fn heal(&mut self) -> Result<(), Violation> {
        self.chaos = false;
        self.net.heal();
        self.stranded = None;
        for i in 0..self.nodes.len() {
            self.nodes[i].paused_until = 0;
            self.nodes[i].crash_pending = false;
            if self.nodes[i].node.is_none() {
                self.start_node(i)?;
            }
        }
        Ok(())
    }

    /// Crashes node `idx` at once (everything persisted survives); it stays down until
    /// [`Sim::restart`].
    pub fn crash(&mut self, idx: usize) {
        self.crash_now(idx, u64::MAX);
    }

    /// Tells node `idx` it is about to stop ([`crate::Input::HandOver`]).
    pub fn hand_over(&mut self, idx: usize) -> Result<(), Violation> {
        self.feed(idx, crate::node::Input::HandOver)
    }

    /// Restarts node `idx` from its durable copy.
    pub fn restart(&mut self, idx: usize) -> Result<(), Violation> {
        self.nodes[idx].down_until = 0;
        self.start_node(idx)
    }

    /// From now on, node `idx`'s syncs take `latency` (one already under way keeps its time).
    pub fn set_disk_latency(&mut self, idx: usize, latency: std::time::Duration) {
        self.nodes[idx].disk.latency = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
    }

    /// Cuts messages from node `from` to node `to` (indexes); `both` cuts the way back too.
    pub fn cut(&mut self, from: usize, to: usize, both: bool) {
        self.net.cut(from, to);
        if both {
            self.net.cut(to, from);
        }
    }

    /// Cuts node `idx` off from every other node.
    pub fn isolate(&mut self, idx: usize) {
        for j in 0..self.nodes.len() {
            if j != idx {
                self.cut(idx, j, true);
            }
        }
    }

    /// Cuts client `client` off from node `node` (indexes), both ways, until the links are
    /// restored.
    pub fn cut_client(&mut self, client: usize, node: usize) {
        self.net.cut_client(client, node);
    }

    /// Pauses node `idx` until true time `until`: no ticks, deliveries held back, as in a long
    /// garbage-collection or scheduling stall.
    pub fn pause(&mut self, idx: usize, until: u64) {
        self.nodes[idx].paused_until = until;
    }

    /// The lock client `client` holds (and may act on), if any.
    pub fn holding(&self, client: usize) -> Option<&super::Holding> {
        self.clients.get(client)?.holding.as_ref()
    }

    /// Leaves client `client`, holding a lock, alone with the leader on one side of a partition,
    /// and stalls the leader long enough to be deposed. It wakes to the holder's first
    /// keep-alive once a successor has led for a while, before its timers tell it that it has
    /// lost its quorum: whatever it answers must not outlive the successor's view of the lease.
    /// Unwoken, it sleeps to the end of the holder's lease, when an answer would no longer be
    /// believed. Returns false (and does nothing) without a leader or a lock held.
    pub fn strand(&mut self, client: usize) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let Some(safe_until) = self.holding(client).map(|h| h.safe_until) else {
            return false;
        };
        for other in 0..self.clients.len() {
            for node in (0..self.nodes.len()).filter(|node| (other == client) != (*node == leader))
            {
                self.net.cut_client(other, node);
            }
        }
        self.isolate(leader);
        let until = safe_until.max(self.now + 300_000_000);
        self.nodes[leader].paused_until = until;
        self.stranded = Some(super::Stranded {
            node: leader,
            client,
        });
        self.log(|| format!("node {} alone with client {client}, paused", leader + 1));
        true
    }

    /// Restores every link.
    pub fn reconnect(&mut self) {
        self.net.heal();
    }
}
