//! The leader's volatile clocks: lease deadlines, wait time-outs, lock-delays and idle sessions.
//!
//! None of this is replicated. A new leader rebuilds it from the state machine, starting every
//! lease afresh from its own `now`: it may extend a lease, never shorten it. A timer that fires is
//! checked against the state machine before the leader proposes anything, so stale heap entries
//! (a lease renewed since, a waiter already granted) are harmless.

use crate::command::Command;
use crate::names::LockName;
use crate::state_machine::DetHasher;
use crate::state_machine::{Slot, StateMachine};
use crate::types::{ClientId, FencingToken, Seq, Time};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Lease(LockName, FencingToken),
    Wait(ClientId, Seq),
    Delay(LockName),
}

/// The leader's timers.
#[derive(Debug, Default)]
pub(crate) struct LeaderTimers {
    /// Each grant's lease deadline, by lock and token (a shared lock has several grants).
    leases: HashMap<(LockName, FencingToken), Time, DetHasher>,
    waits: HashMap<(ClientId, Seq), (LockName, Time), DetHasher>,
    delays: HashMap<LockName, Time, DetHasher>,
    heap: BinaryHeap<Reverse<(Time, Timer)>>,
    /// When each session was last heard from.
    seen: HashMap<ClientId, Time, DetHasher>,
    next_sweep: Time,
}

impl LeaderTimers {
    /// Timers for a new leader: every grant, wait and delay in `sm` starts afresh at `now`.
    pub fn rebuild(sm: &StateMachine, now: Time, lock_delay: Duration) -> LeaderTimers {
        let mut timers = LeaderTimers {
            next_sweep: now,
            ..LeaderTimers::default()
        };
        for (lock, state) in sm.locks() {
            for holder in &state.holders {
                timers.arm_lease(lock.clone(), holder.token, now + holder.lease);
            }
            if state.delayed {
                timers.arm_delay(lock.clone(), now + lock_delay);
            }
            for waiter in &state.waiters {
                timers.arm_wait(lock.clone(), waiter.client, waiter.seq, now + waiter.wait);
            }
        }
        for (client, _) in sm.sessions() {
            timers.seen.insert(*client, now);
        }
        timers
    }

    /// How long the lease of grant `token` of `lock` has left at `now`, if it has a timer.
    pub fn lease_left(&self, lock: &LockName, token: FencingToken, now: Time) -> Option<Duration> {
        let deadline = self.leases.get(&(lock.clone(), token))?;
        Some(deadline.saturating_since(now))
    }

    /// How long since `client` was last heard from, if it has been.
    pub fn idle_for(&self, client: ClientId, now: Time) -> Option<Duration> {
        self.seen
            .get(&client)
            .map(|seen| now.saturating_since(*seen))
    }

    /// Starts or restarts the lease of a grant. A restart (a renewal) leaves the old heap entry
    /// behind, so it may compact: holders that only renew never forget a lock, and would
    /// otherwise keep an entry per renewal for a whole lease.
    pub fn arm_lease(&mut self, lock: LockName, token: FencingToken, deadline: Time) {
        self.heap
            .push(Reverse((deadline, Timer::Lease(lock.clone(), token))));
        if self.leases.insert((lock, token), deadline).is_some() {
            self.compact();
        }
    }

    /// Renews every lease `client` holds, from `now`.
    pub fn renew(&mut self, sm: &StateMachine, client: ClientId, now: Time) {
        let Some(session) = sm.session(client) else {
            return;
        };
        for lock in &session.held {
            if let Some(holder) = sm.lock(lock).and_then(|s| s.holder_of(client)) {
                self.arm_lease(lock.clone(), holder.token, now + holder.lease);
            }
        }
    }

    /// Arms the time-out of a queued acquire (a wait of `Duration::MAX` never fires).
    pub fn arm_wait(&mut self, lock: LockName, client: ClientId, seq: Seq, deadline: Time) {
        if deadline == Time::MAX {
            return;
        }
        self.heap
            .push(Reverse((deadline, Timer::Wait(client, seq))));
        self.waits.insert((client, seq), (lock, deadline));
    }

    /// Arms the end of a lock-delay.
    pub fn arm_delay(&mut self, lock: LockName, deadline: Time) {
        self.heap
            .push(Reverse((deadline, Timer::Delay(lock.clone()))));
        self.delays.insert(lock, deadline);
    }

    /// Drops the wait time-out of a request that was answered.
    pub fn forget_wait(&mut self, client: ClientId, seq: Seq) {
        if self.waits.remove(&(client, seq)).is_some() {
            self.compact();
        }
    }

    /// Drops the lease of a grant that ended.
    pub fn forget_lease(&mut self, lock: LockName, token: FencingToken) {
        if self.leases.remove(&(lock, token)).is_some() {
            self.compact();
        }
    }

    /// Drops the delay timer of a lock that left the table (its grants' leases went as each
    /// grant ended).
    pub fn forget_lock(&mut self, lock: &LockName) {
        if self.delays.remove(lock).is_some() {
            self.compact();
        }
    }

    /// Rebuilds the heap once stale entries (renewed, answered or freed timers) outnumber live
    /// ones, so a long run of short holds keeps the heap the size of what is actually armed.
    fn compact(&mut self) {
        let live = self.leases.len() + self.waits.len() + self.delays.len();
        if self.heap.len() <= 2 * live + 1024 {
            return;
        }
        let leases = self
            .leases
            .iter()
            .map(|((lock, token), due)| Reverse((*due, Timer::Lease(lock.clone(), *token))));
        let waits = self
            .waits
            .iter()
            .map(|((client, seq), (_, due))| Reverse((*due, Timer::Wait(*client, *seq))));
        let delays = self
            .delays
            .iter()
            .map(|(lock, due)| Reverse((*due, Timer::Delay(lock.clone()))));
        self.heap = leases.chain(waits).chain(delays).collect();
    }

    /// Notes that `client` was heard from.
    pub fn touch(&mut self, client: ClientId, now: Time) {
        self.seen.insert(client, now);
    }

    /// The earliest time something may be due.
    pub fn next_deadline(&self) -> Time {
        let heap = self.heap.peek().map_or(Time::MAX, |Reverse((t, _))| *t);
        heap.min(self.next_sweep)
    }

    /// Pops every timer due at `now` and returns the commands to propose for those still valid.
    pub fn fire(
        &mut self,
        sm: &StateMachine,
        now: Time,
        session_ttl: Duration,
        out: &mut Vec<Command>,
    ) {
        while let Some(Reverse((due, _))) = self.heap.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, timer))) = self.heap.pop() else {
                break;
            };
            match timer {
                Timer::Lease(lock, token) => {
                    // Only the newest arming of this lease counts.
                    let key = (lock, token);
                    if self.leases.get(&key) != Some(&due) {
                        continue;
                    }
                    self.leases.remove(&key);
                    let (lock, token) = key;
                    if let Some(holder) = sm.lock(&lock).and_then(|s| s.holder_with(token)) {
                        out.push(Command::Expire {
                            lock,
                            token,
                            renewals: holder.renewals,
                        });
                    }
                }
                Timer::Wait(client, seq) => {
                    if self
                        .waits
                        .get(&(client, seq))
                        .is_none_or(|(_, d)| *d != due)
                    {
                        continue;
                    }
                    let Some((lock, _)) = self.waits.remove(&(client, seq)) else {
                        continue;
                    };
                    if matches!(sm.slot(client, seq), Some(Slot::Waiting(_))) {
                        out.push(Command::CancelWait { lock, client, seq });
                    }
                }
                Timer::Delay(lock) => {
                    if self.delays.get(&lock) != Some(&due) {
                        continue;
                    }
                    self.delays.remove(&lock);
                    if sm.lock(&lock).is_some_and(|s| s.delayed) {
                        out.push(Command::LiftDelay { lock });
                    }
                }
            }
        }
        if now >= self.next_sweep {
            self.sweep_sessions(sm, now, session_ttl, out);
        }
    }

    /// Proposes the expiry of sessions idle for `session_ttl`, and forgets sessions that are gone.
    fn sweep_sessions(
        &mut self,
        sm: &StateMachine,
        now: Time,
        session_ttl: Duration,
        out: &mut Vec<Command>,
    ) {
        self.next_sweep = now + session_ttl / 4;
        self.seen.retain(|client, _| sm.session(*client).is_some());
        for (client, _) in sm.sessions() {
            let seen = *self.seen.entry(*client).or_insert(now);
            if now.saturating_since(seen) >= session_ttl {
                out.push(Command::ExpireSession { client: *client });
                // Not again until another full idle period, should this proposal be lost.
                self.seen.insert(*client, now);
            }
        }
    }
}

/// What is armed, for tests of the code that arms it.
#[cfg(test)]
impl LeaderTimers {
    /// The lease armed on `lock` (of its newest grant, if it has several).
    pub fn lease_of(&self, lock: &LockName) -> Option<(FencingToken, Time)> {
        self.leases
            .iter()
            .filter(|((l, _), _)| l == lock)
            .map(|((_, token), due)| (*token, *due))
            .max()
    }

    pub fn wait_of(&self, client: ClientId, seq: Seq) -> Option<Time> {
        self.waits.get(&(client, seq)).map(|(_, due)| *due)
    }

    pub fn delay_of(&self, lock: &LockName) -> Option<Time> {
        self.delays.get(lock).copied()
    }

    pub fn seen(&self, client: ClientId) -> Option<Time> {
        self.seen.get(&client).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(i: usize) -> LockName {
        LockName::from(format!("l{i}"))
    }

    /// `live` armed timers (up to 50 of them waits and 50 lock-delays, the rest leases on
    /// distinct locks) plus a lease on lock "x", and lock "l0"'s lease renewed `renewals` times
    /// (each renewal leaves a stale heap entry behind), without compacting.
    fn armed(live: usize, renewals: usize) -> LeaderTimers {
        let mut timers = LeaderTimers::default();
        let extra = (live.saturating_sub(1) / 2).min(50);
        for i in 0..live - 2 * extra {
            timers.arm_lease(lock(i), FencingToken(1), Time::from_millis(10));
        }
        for i in 0..extra {
            let client = ClientId(i as u128);
            timers.arm_wait(lock(i), client, Seq(1), Time::from_millis(10));
            timers.arm_delay(lock(1_000 + i), Time::from_millis(10));
        }
        timers.arm_lease("x".into(), FencingToken(2), Time::from_millis(10));
        // The stale entries go straight onto the heap: renewing through arm_lease would
        // compact as it goes.
        for r in 0..renewals {
            let due = Time::from_millis(11 + r as u64);
            let lease = Timer::Lease(lock(0), FencingToken(1));
            timers.heap.push(Reverse((due, lease)));
            timers.leases.insert((lock(0), FencingToken(1)), due);
        }
        timers
    }

    /// The heap is rebuilt from the live timers once it holds more than twice as many entries
    /// as are live, plus 1,024 (so renewals cannot grow it without bound), and not before.
    #[test]
    fn forgetting_a_lease_compacts_the_heap_only_past_the_bound() {
        // After "x" is forgotten 600 are live: the bound is 2 x 600 + 1,024 = 2,224 entries.
        let mut at_bound = armed(600, 1_623);
        assert_eq!(at_bound.heap.len(), 2_224);
        at_bound.forget_lease("x".into(), FencingToken(2));
        assert_eq!(at_bound.heap.len(), 2_224, "compacted at the bound");

        let mut past_bound = armed(600, 1_624);
        past_bound.forget_lease("x".into(), FencingToken(2));
        assert_eq!(past_bound.heap.len(), 600, "not compacted past the bound");
        assert!(past_bound.lease_of(&"x".into()).is_none());
        // What is left is what is live: l0 at its last renewal, the others at 10 ms.
        let due: Vec<Time> = past_bound.heap.iter().map(|Reverse((t, _))| *t).collect();
        assert_eq!(
            due.iter()
                .filter(|t| **t == Time::from_millis(1_634))
                .count(),
            1
        );
        assert_eq!(
            due.iter().filter(|t| **t == Time::from_millis(10)).count(),
            599
        );
        assert_eq!((past_bound.waits.len(), past_bound.delays.len()), (50, 50));
    }

    /// Renewals alone (no lock ever forgotten) keep the heap within the bound too.
    #[test]
    fn renewals_alone_compact_the_heap_past_the_bound() {
        // 500 leases, 50 waits, 50 delays and x's lease: 601 live.
        let mut timers = armed(600, 0);
        let mut compacted = false;
        for r in 0..10_000u64 {
            let i = (r % 500) as usize;
            let before = timers.heap.len();
            timers.arm_lease(lock(i), FencingToken(1), Time::from_millis(20 + r));
            compacted |= timers.heap.len() < before;
            assert!(timers.heap.len() <= 2 * 601 + 1_024, "renewal {r}");
        }
        assert!(compacted);
        assert_eq!(timers.leases.len(), 501);
    }

    /// A lease forgotten compacts too; so does a lock's delay; a lease of another grant of
    /// the same lock stays armed.
    #[test]
    fn a_lease_or_a_delay_alone_is_enough_to_compact() {
        let mut lease_only = armed(0, 1_100);
        lease_only.arm_lease(lock(0), FencingToken(5), Time::from_millis(40));
        lease_only.forget_lease(lock(0), FencingToken(1));
        assert_eq!(lease_only.heap.len(), 2, "x's lease and l0's other grant's");
        assert_eq!(
            lease_only.lease_of(&lock(0)),
            Some((FencingToken(5), Time::from_millis(40)))
        );

        let mut delay_only = armed(0, 1_100);
        delay_only.leases.remove(&(lock(0), FencingToken(1)));
        delay_only.arm_delay(lock(7), Time::from_millis(50));
        delay_only.forget_lock(&lock(7));
        assert!(delay_only.delays.is_empty());
        assert_eq!(delay_only.heap.len(), 1);
    }

    /// An answered wait is forgotten (and compacts the heap like a lock does).
    #[test]
    fn an_answered_wait_is_forgotten() {
        let mut timers = armed(0, 1_100);
        let client = ClientId(9);
        timers.arm_wait("x".into(), client, Seq(4), Time::from_millis(20));
        timers.forget_wait(client, Seq(4));
        assert!(timers.waits.is_empty());
        assert_eq!(timers.heap.len(), 2, "x's lease and l0's last renewal");
    }

    /// A new leader's session sweep is due at once: idle sessions left by the old leader are
    /// looked at from the start, not at time zero nor later.
    #[test]
    fn a_rebuilt_leaders_sweep_is_due_at_its_start() {
        let now = Time::from_millis(5_000);
        let timers = LeaderTimers::rebuild(&StateMachine::new(), now, Duration::ZERO);
        assert_eq!(timers.next_deadline(), now);
    }
}
