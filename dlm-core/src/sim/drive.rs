//! How the simulator drives one node: feed an input, execute the effects the disk lets through,
//! sync, report what became durable, and check the invariants.

use super::{fold, Sim, Violation};
use crate::node::{Applied, Effect, Input};
use crate::persist_queue::SyncDone;
use crate::protocol::Reply;

impl Sim {
    /// Feeds node `idx` one input, executes its effects and checks the invariants.
    pub(super) fn feed(&mut self, idx: usize, input: Input) -> Result<(), Violation> {
        let local = self.nodes[idx].local(self.now);
        if self.nodes[idx].node.is_none() {
            return Ok(());
        }
        if self.cfg.history > 0 {
            match &input {
                Input::Peer(m) => {
                    self.log(|| format!("node {} ← {} t{} {:?}", idx + 1, m.from, m.term, m.body))
                }
                Input::Client { request, .. } => self.log(|| {
                    format!(
                        "node {} ← client {:?} {:?}",
                        idx + 1,
                        request.seq,
                        request.op
                    )
                }),
                Input::HandOver => self.log(|| format!("node {} hands over", idx + 1)),
                Input::Tick | Input::Persisted(_) => {}
            }
        }
        if let Some(node) = self.nodes[idx].node.as_mut() {
            node.handle(local, input);
        }
        self.settle(idx)
    }

    /// Node `idx`'s sync under way is durable.
    pub(super) fn sync_done(&mut self, idx: usize) -> Result<(), Violation> {
        let sn = &mut self.nodes[idx];
        if sn.node.is_none() {
            return Ok(());
        }
        let done = sn.disk.finish_sync(&mut sn.durable);
        self.log(|| format!("node {} synced {:?}", idx + 1, done.persisted));
        self.release(idx, done)?;
        self.settle(idx)
    }

    /// Drains node `idx`, starting syncs as the disk allows, until nothing more happens now;
    /// then checks the invariants.
    fn settle(&mut self, idx: usize) -> Result<(), Violation> {
        loop {
            self.drain(idx)?;
            let now = self.now;
            let sn = &mut self.nodes[idx];
            if sn.node.is_none() {
                return Ok(());
            }
            // Only a disk without latency finishes here; a slow one finishes at its own step.
            let Some(done) = sn.disk.start_sync(now, &mut sn.durable) else {
                break;
            };
            self.release(idx, done)?;
        }
        let Some(node) = self.nodes[idx].node.as_ref() else {
            return Ok(());
        };
        if !self.nodes[idx].durable.holds_durable_mark(node) {
            let b = (
                "durable_mark",
                format!(
                    "node {} counts up to {} as durable, which its storage does not hold",
                    idx + 1,
                    node.durable_index()
                ),
            );
            return Err(self.violation(b));
        }
        if let Err(b) = self.checker.check_node(idx, node) {
            return Err(self.violation(b));
        }
        if node.is_leader() {
            if node.term() > self.newest_leader.0 {
                self.newest_leader = (node.term(), self.now);
            }
            // A leader of the newest term, not a stale one yet to hear of it.
            if !self.chaos && node.term() == self.newest_leader.0 {
                self.led_since_heal = true;
            }
        }
        Ok(())
    }

    /// Executes what a finished sync released and reports it durable to the node.
    fn release(&mut self, idx: usize, done: SyncDone) -> Result<(), Violation> {
        for effect in done.released {
            self.execute(idx, effect)?;
        }
        if let Some(position) = done.persisted {
            let local = self.nodes[idx].local(self.now);
            if let Some(node) = self.nodes[idx].node.as_mut() {
                node.handle(local, Input::Persisted(position));
            }
        }
        Ok(())
    }

    /// Polls node `idx` dry. A pending crash strikes between two effects, so whatever was not
    /// yet executed (or not yet synced) is lost.
    fn drain(&mut self, idx: usize) -> Result<(), Violation> {
        loop {
            let sn = &mut self.nodes[idx];
            let Some(node) = sn.node.as_mut() else {
                return Ok(());
            };
            let Some(effect) = node.poll_effect() else {
                return Ok(());
            };
            if sn.crash_pending && self.rng.chance(0.25) {
                let down = self.now + 100_000_000 + self.rng.below(2_000_000_000);
                self.crash_now(idx, down);
                return Ok(());
            }
            let h = &mut self.fingerprint;
            fold(h, self.now);
            fold(h, idx as u64);
            fold(
                h,
                match &effect {
                    Effect::Persist(_) => 1,
                    Effect::Send(msg) => msg.to.0 << 8 | msg.term.0 << 16 | 2,
                    Effect::Reply { response, .. } => {
                        response.seq.0 << 8 | u64::from(response.result.is_ok()) << 4 | 3
                    }
                    Effect::Applied(_) => 4,
                },
            );
            if let Some(effect) = self.nodes[idx].disk.queue.push(effect) {
                self.execute(idx, effect)?;
            }
        }
    }

    /// Executes one effect that the disk lets through.
    fn execute(&mut self, idx: usize, effect: Effect) -> Result<(), Violation> {
        match effect {
            // The disk's queue keeps every persist for a sync (as the runtime driver's does).
            Effect::Persist(p) => {
                let _ = self.nodes[idx].disk.queue.push(Effect::Persist(p));
            }
            Effect::Send(msg) => {
                // Catches a vote or an acknowledgement that left before its sync.
                if !self.nodes[idx].durable.backs(&msg) {
                    return Err(self.violation((
                        "promise_before_durable",
                        format!(
                            "node {} sent {:?} t{} ahead of its storage",
                            idx + 1,
                            msg.body,
                            msg.term
                        ),
                    )));
                }
                self.net.send_peer(self.now, self.chaos, msg, &mut self.rng)
            }
            Effect::Reply { conn, response } if conn == super::membership::OPERATOR_CONN => {
                self.operator_answer(idx, &response);
            }
            Effect::Reply { conn, response } => {
                if matches!(response.result, Ok(Reply::Granted { .. })) {
                    self.nodes[idx].grants_sent += 1;
                }
                let client = conn.0 as usize;
                self.net
                    .send_response(self.now, self.chaos, idx, client, response, &mut self.rng);
            }
            Effect::Applied(applied) => {
                if applied == Applied::Restored {
                    self.nodes[idx].restored += 1;
                }
                if let Applied::Appended { file, data, offset } = applied {
                    fold(&mut self.fingerprint, offset);
                    if let Err(b) = self.checker.append_fenced(idx, &file, &data) {
                        return Err(self.violation(b));
                    }
                }
            }
        }
        Ok(())
    }
}
