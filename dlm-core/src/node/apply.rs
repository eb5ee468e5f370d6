//! Applying committed entries and turning what happened into replies, timers and file effects.

use super::{Applied, Effect, Node};
use crate::state_machine::Outcome;

impl Node {
    /// Applies every committed entry not yet applied.
    pub(super) fn apply_committed(&mut self) {
        while self.applied < self.commit {
            let index = self.applied.next();
            let Some(entry) = self.log.get(index) else {
                // Only reachable if the log lost a committed entry; stop rather than skip it.
                break;
            };
            self.sm
                .apply(&entry.command, &self.rules, &mut self.outcomes);
            self.applied = index;
            self.route_outcomes();
        }
        self.serve_reads();
        self.maybe_snapshot();
    }

    fn route_outcomes(&mut self) {
        let now = self.now;
        let mut outcomes = std::mem::take(&mut self.outcomes);
        for outcome in outcomes.drain(..) {
            if let Outcome::Appended { file, offset, data } = outcome {
                self.out
                    .push(Effect::Applied(Applied::Appended { file, offset, data }));
                continue;
            }
            let Some(leader) = self.role.leader_mut() else {
                continue;
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
                Outcome::Renewed { client } => leader.timers.renew(&self.sm, client, now),
                Outcome::Touched { client } => leader.timers.touch(client, now),
                Outcome::Freed { lock } => leader.timers.forget_lock(&lock),
                Outcome::Appended { .. } => {}
            }
        }
        self.outcomes = outcomes;
    }
}
