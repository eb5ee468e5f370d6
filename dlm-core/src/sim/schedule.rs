//! How the run moves on: each step takes the earliest of a delivery, a node's deadline or
//! restart, a finished sync and a client's wake-up (or a fault or a liveness check that is
//! due), advances true time to it and handles it. Apart from the handlers, so that the order
//! in which things happen is decided in one place.

use super::{Sim, Violation};
use crate::node::Input;
use crate::types::Time;

/// How long after the heal phase starts clients stop starting new work, so that everything in
/// flight can settle before the final checks.
const QUIESCE: u64 = 6_000_000_000;

impl Sim {
    /// One step of the whole run (phases and faults included).
    pub(super) fn step(&mut self) -> Result<(), Violation> {
        let end = if self.chaos {
            self.chaos_end
        } else {
            self.heal_end
        };
        if self.chaos && self.now >= self.chaos_end {
            self.log(|| "heal: faults off".into());
            return self.heal();
        }
        let fault_at = if self.chaos {
            self.next_fault
        } else {
            u64::MAX
        };
        if fault_at <= self.now {
            self.fault()?;
            return Ok(());
        }
        let check_at = self.liveness_check_at();
        if check_at <= self.now {
            return self.check_liveness();
        }
        self.step_bounded(end.min(fault_at).min(check_at))
    }

    /// Advances to the next thing that happens, but not past `limit`.
    pub(super) fn step_bounded(&mut self, limit: u64) -> Result<(), Violation> {
        self.steps += 1;
        let mut next = limit;
        let mut what = Next::Limit;
        if let Some(t) = self.net.next_time() {
            if t < next {
                next = t;
                what = Next::Deliver;
            }
        }
        for (i, sn) in self.nodes.iter().enumerate() {
            let t = match &sn.node {
                None if sn.down_until != u64::MAX => sn.down_until,
                None => continue,
                Some(_) if sn.paused_until > self.now => sn.paused_until,
                Some(node) => {
                    let d = node.next_deadline();
                    if d == Time::MAX {
                        continue;
                    }
                    sn.true_of(d)
                }
            };
            if t < next {
                next = t;
                what = Next::Node(i);
            }
        }
        for (i, sn) in self.nodes.iter().enumerate() {
            // A paused node finishes its sync when it resumes (its entry above wakes it).
            let Some(t) = sn.disk.done_at() else {
                continue;
            };
            if sn.node.is_some() && sn.paused_until <= self.now && t < next {
                next = t;
                what = Next::Disk(i);
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let t = c.next_wake();
            if t < next {
                next = t;
                what = Next::Client(i);
            }
        }
        if next <= self.now {
            self.stuck += 1;
            if self.stuck > 100_000 {
                let b = (
                    "progress",
                    "100000 steps without time advancing".to_string(),
                );
                return Err(self.violation(b));
            }
        } else {
            self.stuck = 0;
        }
        self.now = self.now.max(next);
        match what {
            Next::Limit => Ok(()),
            Next::Deliver => self.deliver(),
            Next::Node(i) => {
                if self.nodes[i].node.is_none() {
                    return self.restart(i);
                }
                self.feed(i, Input::Tick)
            }
            Next::Disk(i) => self.sync_done(i),
            Next::Client(i) => self.client_wake(i),
        }?;
        self.check_abandoned()
    }

    fn client_wake(&mut self, i: usize) -> Result<(), Violation> {
        let quiet = !self.chaos && self.now >= self.chaos_end + QUIESCE;
        let mut events = Vec::new();
        let workload = (self.cfg.locks, self.cfg.kinds);
        self.clients[i].wake(self.now, quiet, workload, &mut self.rng, &mut events);
        self.client_events(i, events)
    }
}

enum Next {
    Limit,
    Deliver,
    Node(usize),
    Disk(usize),
    Client(usize),
}
