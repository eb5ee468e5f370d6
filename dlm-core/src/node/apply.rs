//! Applying committed entries and turning what happened into replies, timers and file effects.
//! [`OutcomeRouter`] borrows where outcomes go: the output on every node, and on the leader its
//! waiting connections and lock timers.

use super::output::Output;
use super::role::Leader;
use super::{Applied, Effect, Node};
use crate::config::Config;
use crate::state_machine::{Outcome, StateMachine};
use crate::types::Time;

/// Where the outcomes of an applied entry go, borrowed from the node.
pub(super) struct OutcomeRouter<'a> {
    pub cfg: &'a Config,
    pub now: Time,
    /// The state machine after the entry, for renewals.
    pub sm: &'a StateMachine,
    /// The leader's state; None on a node that does not lead, which only mirrors files.
    pub leader: Option<&'a mut Leader>,
    pub out: &'a mut Output,
}

impl OutcomeRouter<'_> {
    /// Routes one outcome: file appends to the driver on every node; on the leader, answers to
    /// the connections waiting for them, and leases, waits, lock-delays and session clocks to
    /// its timers, counted from now.
    pub fn route(&mut self, outcome: Outcome) {
        let now = self.now;
        if let Outcome::Appended { file, offset, data } = outcome {
            self.out
                .push(Effect::Applied(Applied::Appended { file, offset, data }));
            return;
        }
        let Some(leader) = self.leader.as_deref_mut() else {
            return;
        };
        match outcome {
            Outcome::Reply(response) => {
                // Whatever it was, an answered request is not waiting any more.
                leader.timers.forget_wait(response.client, response.seq);
                if let Some(conn) = leader.waiting.remove(&(response.client, response.seq)) {
                    self.out.push(Effect::Reply { conn, response });
                }
            }
            Outcome::Granted { lock, token, lease } => {
                leader.timers.arm_lease(lock, token, now + lease);
            }
            Outcome::Queued {
                lock,
                client,
                seq,
                wait,
            } => leader.timers.arm_wait(lock, client, seq, now + wait),
            Outcome::Delayed { lock } => {
                leader.timers.arm_delay(lock, now + self.cfg.lock_delay);
            }
            Outcome::Renewed { client } => leader.timers.renew(self.sm, client, now),
            Outcome::Touched { client } => leader.timers.touch(client, now),
            Outcome::Freed { lock } => leader.timers.forget_lock(&lock),
            Outcome::Ended { lock, token } => leader.timers.forget_lease(lock, token),
            Outcome::Appended { .. } => {}
        }
    }
}

impl Node {
    /// Applies every committed entry not yet applied.
    pub(super) fn apply_committed(&mut self) {
        let mut changed_locks = Vec::new();
        let mut grown_files = Vec::new();
        while self.applied < self.commit {
            let index = self.applied.next();
            let Some(entry) = self.log.get(index) else {
                // Only reachable if the log lost a committed entry; stop rather than skip it.
                break;
            };
            let touched = self.history.before(&entry.command, &self.sm);
            self.sm
                .apply(&entry.command, &self.rules, &mut self.outcomes);
            self.applied = index;
            let changed = self
                .history
                .record(index, &entry.command, touched, &self.sm);
            if self.role.leader().is_some_and(|l| l.watches.len() > 0) {
                changed_locks.extend(changed);
                grown_files.extend(self.outcomes.iter().filter_map(|o| match o {
                    Outcome::Appended { file, .. } => Some(file.clone()),
                    _ => None,
                }));
            }
            let mut router = OutcomeRouter {
                cfg: &self.cfg,
                now: self.now,
                sm: &self.sm,
                leader: self.role.leader_mut(),
                out: &mut self.out,
            };
            for outcome in self.outcomes.drain(..) {
                router.route(outcome);
            }
        }
        if !changed_locks.is_empty() || !grown_files.is_empty() {
            changed_locks.sort();
            changed_locks.dedup();
            grown_files.sort();
            grown_files.dedup();
            self.serve_watches(&changed_locks, &grown_files);
        }
        self.serve_reads();
        self.maybe_snapshot();
        self.settle_membership();
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
