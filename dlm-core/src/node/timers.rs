//! The node's own clocks in one table: when a node that does not lead starts a pre-vote, when a
//! leader's next heartbeat is due, and when a hand-over in progress is given up. The leader's
//! lock timers (leases, waits, lock-delays, idle sessions) are a heap of their own in
//! [`LeaderTimers`]; the table takes their earliest deadline as one more entry, except while a
//! hand-over pauses them. [`Timers::next_deadline`] is the minimum of it all, and is what
//! [`crate::Node::next_deadline`] answers.

use super::leader_timers::LeaderTimers;
use super::Node;
use crate::types::Time;

/// One of the node's own deadlines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    /// A node that does not lead starts a pre-vote (armed only while not leading).
    Election,
    /// A leader sends heartbeats and checks its quorum (armed only while leading).
    Heartbeat,
    /// A leader gives up a hand-over that has not succeeded (armed exactly while one is under
    /// way). While it is armed the lock timers are paused: nothing new is proposed while the
    /// successor catches up.
    TransferEnd,
}

impl Deadline {
    const ALL: [Deadline; 3] = [
        Deadline::Election,
        Deadline::Heartbeat,
        Deadline::TransferEnd,
    ];

    fn slot(self) -> usize {
        match self {
            Deadline::Election => 0,
            Deadline::Heartbeat => 1,
            Deadline::TransferEnd => 2,
        }
    }
}

/// The table of the node's own deadlines. None armed means the node has not seen its first
/// input yet, and wants a tick at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Timers {
    due: [Option<Time>; 3],
}

impl Timers {
    /// Arms (or re-arms) `deadline` at `at`.
    pub fn arm(&mut self, deadline: Deadline, at: Time) {
        self.due[deadline.slot()] = Some(at);
    }

    /// Disarms `deadline`.
    pub fn clear(&mut self, deadline: Deadline) {
        self.due[deadline.slot()] = None;
    }

    /// When `deadline` is armed for, if it is.
    pub fn get(&self, deadline: Deadline) -> Option<Time> {
        self.due[deadline.slot()]
    }

    /// Whether `deadline` is armed and has come at `now`.
    pub fn is_due(&self, deadline: Deadline, now: Time) -> bool {
        self.get(deadline).is_some_and(|at| now >= at)
    }

    /// Whether a hand-over pauses the lock timers.
    pub fn locks_paused(&self) -> bool {
        self.get(Deadline::TransferEnd).is_some()
    }

    /// Switches the table to a leader's: heartbeats from `heartbeat` on, no election, no
    /// hand-over.
    pub fn lead(&mut self, heartbeat: Time) {
        self.due = [None; 3];
        self.arm(Deadline::Heartbeat, heartbeat);
    }

    /// Switches the table to a node that does not lead: only its election deadline, at `at`.
    pub fn follow(&mut self, election: Time) {
        self.due = [None; 3];
        self.arm(Deadline::Election, election);
    }

    /// The earliest of the armed deadlines and, unless paused, of the leader's `locks`; the
    /// time zero (tick at once) when nothing is armed.
    pub fn next_deadline(&self, locks: Option<&LeaderTimers>) -> Time {
        let own = Deadline::ALL.into_iter().filter_map(|d| self.get(d)).min();
        let locks = locks
            .filter(|_| !self.locks_paused())
            .map(LeaderTimers::next_deadline);
        match (own, locks) {
            (Some(own), Some(locks)) => own.min(locks),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => Time::ZERO,
        }
    }
}

impl Node {
    /// Runs whatever timers are due.
    pub(super) fn on_timers(&mut self) {
        let now = self.now;
        self.expire_watches();
        if !self.is_leader() {
            if self.timers.is_due(Deadline::Election, now) {
                self.start_pre_vote();
            }
            return;
        }
        // A transfer that ran out is given up before anything else, so that the timers it
        // paused fire on this tick.
        if let Some(mut handover) = self.handover() {
            handover.give_up_if_due();
        }
        // A removed leader whose hand-over ran out steps down now.
        self.settle_membership();
        if !self.is_leader() {
            return;
        }
        if self.timers.is_due(Deadline::Heartbeat, now) {
            self.timers
                .arm(Deadline::Heartbeat, now + self.cfg.heartbeat_interval);
            if !self.check_quorum() {
                return;
            }
            self.broadcast_heartbeat();
            self.forget_removed_members();
            if let Some(mut handover) = self.handover() {
                handover.repeat_request();
                handover.consider();
            }
        }
        self.fire_leader_timers();
    }

    fn fire_leader_timers(&mut self) {
        if self.timers.locks_paused() {
            return;
        }
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        let mut commands = std::mem::take(&mut self.proposals);
        leader
            .timers
            .fire(&self.sm, self.now, self.cfg.session_ttl, &mut commands);
        for command in commands.drain(..) {
            self.propose(command);
        }
        self.proposals = commands;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_machine::StateMachine;
    use std::time::Duration;

    fn ms(n: u64) -> Time {
        Time::from_millis(n)
    }

    /// A rebuilt leader's lock timers, whose first deadline (the session sweep) is `at`.
    fn locks_due_at(at: Time) -> LeaderTimers {
        LeaderTimers::rebuild(&StateMachine::new(), at, Duration::ZERO)
    }

    #[test]
    fn nothing_armed_asks_for_a_tick_at_once() {
        assert_eq!(Timers::default().next_deadline(None), Time::ZERO);
    }

    #[test]
    fn the_minimum_of_the_armed_deadlines_and_the_lock_timers() {
        let mut timers = Timers::default();
        timers.lead(ms(50));
        assert_eq!(timers.next_deadline(None), ms(50));
        assert_eq!(timers.next_deadline(Some(&locks_due_at(ms(30)))), ms(30));
        assert_eq!(timers.next_deadline(Some(&locks_due_at(ms(70)))), ms(50));
    }

    #[test]
    fn a_hand_over_pauses_the_lock_timers_until_it_ends() {
        let mut timers = Timers::default();
        timers.lead(ms(50));
        timers.arm(Deadline::TransferEnd, ms(40));
        assert!(timers.locks_paused());
        let locks = locks_due_at(ms(10));
        assert_eq!(timers.next_deadline(Some(&locks)), ms(40));
        timers.clear(Deadline::TransferEnd);
        assert!(!timers.locks_paused());
        assert_eq!(timers.next_deadline(Some(&locks)), ms(10));
    }

    #[test]
    fn role_changes_leave_only_that_roles_deadline() {
        let mut timers = Timers::default();
        timers.follow(ms(300));
        timers.lead(ms(20));
        timers.arm(Deadline::TransferEnd, ms(90));
        assert_eq!(timers.get(Deadline::Election), None);
        timers.follow(ms(400));
        assert_eq!(timers.get(Deadline::Heartbeat), None);
        assert_eq!(timers.get(Deadline::TransferEnd), None);
        assert_eq!(timers.next_deadline(None), ms(400));
    }

    #[test]
    fn due_means_armed_and_reached() {
        let mut timers = Timers::default();
        assert!(!timers.is_due(Deadline::Election, ms(1_000)));
        timers.follow(ms(300));
        assert!(!timers.is_due(Deadline::Election, ms(299)));
        assert!(timers.is_due(Deadline::Election, ms(300)));
        assert!(!timers.is_due(Deadline::Heartbeat, ms(1_000)));
    }
}
