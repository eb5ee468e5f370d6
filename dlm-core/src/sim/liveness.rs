//! The bounded-liveness checks: once faults stop, a leader within a bound and every call
//! outstanding at the heal answered within another; and an abandoned acquire undone within a
//! bound of its abandonment. Apart from the per-step safety invariants, since these are
//! checked against the clock, not the state.

use super::{Sim, Violation};
use crate::names::LockName;

/// How long into the heal phase a leader is certain to be elected and known to clients.
pub(super) const ABANDON_SETTLE: u64 = 2_000_000_000;
/// Once faults stop, a leader is elected within this (several election time-outs of 300 ms:
/// pre-vote, a split vote or two, a restarted node catching up).
const LEADER_BOUND: u64 = 2_000_000_000;
/// Once faults stop, every call outstanding at that moment ends within this: the client's
/// deadline (5 s) after a leader is known.
const CALLS_BOUND: u64 = LEADER_BOUND + 5_000_000_000 + 1_000_000_000;
/// How long after its abandonment (once the cluster has settled) an acquire may still hold
/// its lock: a cancel's round trip and commit, well under a lease.
pub(super) const ABANDON_BOUND: u64 = 500_000_000;

impl Sim {
    /// When the next bounded-liveness check of the heal phase is due.
    pub(super) fn liveness_check_at(&self) -> u64 {
        match self.liveness_checks {
            _ if self.chaos => u64::MAX,
            0 => self.chaos_end + LEADER_BOUND,
            1 => self.chaos_end + CALLS_BOUND,
            _ => u64::MAX,
        }
    }

    /// Liveness with bounds, once faults stop (silent cuts healed, crashed nodes back): a
    /// leader within [`LEADER_BOUND`], and every client call that was outstanding at the heal
    /// ended within [`CALLS_BOUND`].
    pub(super) fn check_liveness(&mut self) -> Result<(), Violation> {
        let stage = self.liveness_checks;
        self.liveness_checks += 1;
        if stage == 0 && !self.led_since_heal {
            let b = (
                "bounded_liveness",
                format!(
                    "no leader within {} ms of the heal",
                    LEADER_BOUND / 1_000_000
                ),
            );
            return Err(self.violation(b));
        }
        if stage == 1 {
            let healed = self.chaos_end;
            let stuck = self
                .clients
                .iter()
                .find(|c| c.alive && c.calling.as_ref().is_some_and(|call| call.2 < healed));
            if let Some(c) = stuck {
                let b = (
                    "bounded_liveness",
                    format!(
                        "client {} still waits {} ms after the heal on {:?}",
                        c.idx,
                        CALLS_BOUND / 1_000_000,
                        c.calling
                    ),
                );
                return Err(self.violation(b));
            }
        }
        Ok(())
    }

    /// No lock stays granted to an acquire its caller abandoned: [`ABANDON_BOUND`] after the
    /// abandonment (or after the heal phase has had [`ABANDON_SETTLE`] to elect a leader, for
    /// one made during the chaos phase), the newest state no longer lists a grant of the lock
    /// to that session that the client does not claim.
    pub(super) fn check_abandoned(&mut self) -> Result<(), Violation> {
        let now = self.now;
        if now < self.checker.abandoned_due {
            return Ok(());
        }
        let newest = self
            .nodes
            .iter()
            .filter_map(|sn| sn.node.as_ref())
            .max_by_key(|n| n.applied_index());
        let mut broken = None;
        let clients = &self.clients;
        let pending: Vec<(usize, LockName)> = self
            .checker
            .abandoned
            .iter()
            .filter(|a| a.3 > now)
            .map(|a| (a.0, a.2.clone()))
            .collect();
        self.checker.abandoned.retain(|(client, session, lock, due)| {
            if *due > now {
                return true;
            }
            if pending.iter().any(|(c, l)| c == client && l == lock) {
                // A later acquire of the same lock, abandoned too, may hold it now (it could
                // not have been granted while this one's grant stood): its own bound applies.
                return false;
            }
            let holder = newest
                .and_then(|n| n.state_machine().lock(lock))
                .and_then(|l| l.holder_of(*session));
            if let Some(h) = holder {
                let c = &clients[*client];
                if c.alive && c.id() == *session && !c.claims(lock, h.token) {
                    broken = Some((
                        "abandoned_acquires_undone",
                        format!(
                            "client {client}'s abandoned acquire of {lock:?} still holds {} {} ms after the bound",
                            h.token,
                            (now - due) / 1_000_000
                        ),
                    ));
                }
            }
            false
        });
        self.checker.abandoned_due = self
            .checker
            .abandoned
            .iter()
            .map(|a| a.3)
            .min()
            .unwrap_or(u64::MAX);
        match broken {
            Some(b) => Err(self.violation(b)),
            None => Ok(()),
        }
    }
}
