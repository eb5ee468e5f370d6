//! Exact-event tests of the window of lock events: what each kind of entry reports, and what
//! a watch from a position is answered.

use super::*;
use crate::protocol::{Mode, MAX_VALUE};
use crate::state_machine::test_support::{request, rules};
use crate::types::{ClientId, FencingToken};
use std::time::Duration;

fn acquire(lock: &str) -> Op {
    Op::Acquire {
        lock: lock.into(),
        lease: Duration::from_secs(1),
        wait: Some(Duration::MAX),
    }
}

/// A state machine and a window fed entry by entry, as a node applies them.
struct World {
    sm: StateMachine,
    history: EventHistory,
    index: LogIndex,
}

impl World {
    fn new(capacity: usize) -> World {
        World {
            sm: StateMachine::new(),
            history: EventHistory::new(LogIndex(0), capacity),
            index: LogIndex(0),
        }
    }

    /// Applies `command` as the next entry; the events it recorded.
    fn apply(&mut self, command: Command) -> Vec<LockChange> {
        self.index = self.index.next();
        let touched = self.history.before(&command, &self.sm);
        self.sm.apply(&command, &rules(), &mut Vec::new());
        self.history.record(self.index, &command, touched, &self.sm);
        self.history
            .events
            .iter()
            .filter(|(_, e)| e.at.index == self.index)
            .map(|(_, e)| e.change.clone())
            .collect()
    }
}

fn granted(client: u128, token: u64) -> LockChange {
    LockChange::Granted {
        client: ClientId(client).tag(),
        token: FencingToken(token),
        mode: Mode::Exclusive,
    }
}

#[test]
fn grants_queues_releases_and_hand_offs_are_reported_in_order() {
    let mut w = World::new(100);
    assert_eq!(w.apply(request(1, 1, acquire("a"))), [granted(1, 1)]);
    assert_eq!(
        w.apply(request(2, 1, acquire("a"))),
        [LockChange::Queue { waiting: 1 }]
    );
    let release = Op::Release {
        lock: "a".into(),
        token: FencingToken(1),
    };
    assert_eq!(
        w.apply(request(1, 2, release)),
        [
            LockChange::Released {
                token: FencingToken(1)
            },
            granted(2, 2),
            LockChange::Queue { waiting: 0 },
        ]
    );
    // A keep-alive or an append changes no lock: no event, nothing scanned.
    assert_eq!(w.apply(request(2, 2, Op::KeepAlive)), []);
    // A refused request leaves the lock as it was.
    let wrong = Op::Release {
        lock: "a".into(),
        token: FencingToken(1),
    };
    assert_eq!(w.apply(request(1, 3, wrong)), []);
}

#[test]
fn expiries_revokes_and_proclaims_say_what_ended_the_grant() {
    let mut w = World::new(100);
    w.apply(request(1, 1, acquire("a")));
    let proclaim = Op::Proclaim {
        lock: "a".into(),
        token: FencingToken(1),
        value: b"node-1".to_vec(),
    };
    assert_eq!(
        w.apply(request(1, 2, proclaim)),
        [LockChange::Proclaimed {
            token: FencingToken(1),
            value: b"node-1".to_vec()
        }]
    );
    let expire = Command::Expire {
        lock: "a".into(),
        token: FencingToken(1),
        renewals: 0,
    };
    assert_eq!(
        w.apply(expire),
        [LockChange::Expired {
            token: FencingToken(1)
        }]
    );
    // The value went with the grant.
    assert_eq!(view(&w.sm, &"a".into()).proclaimed, None);
    w.apply(request(2, 1, acquire("a")));
    let revoke = Op::Revoke { lock: "a".into() };
    assert_eq!(
        w.apply(request(9, 1, revoke)),
        [LockChange::Revoked {
            token: FencingToken(2)
        }]
    );
}

#[test]
fn a_session_expiry_reports_every_lock_it_held_or_waited_for() {
    let mut w = World::new(100);
    w.apply(request(1, 1, acquire("a")));
    w.apply(request(2, 1, acquire("b")));
    w.apply(request(1, 2, acquire("b")));
    let changes = w.apply(Command::ExpireSession {
        client: ClientId(1),
    });
    assert_eq!(
        changes,
        [
            LockChange::Expired {
                token: FencingToken(1)
            },
            LockChange::Queue { waiting: 0 },
        ]
    );
    let locks: Vec<&str> = w
        .history
        .events
        .iter()
        .filter(|(_, e)| e.at.index == w.index)
        .map(|(l, _)| l.as_str())
        .collect();
    assert_eq!(locks, ["a", "b"]);
}

#[test]
fn a_watch_gets_the_events_after_its_position_and_waits_when_there_are_none() {
    let mut w = World::new(100);
    w.apply(request(1, 1, acquire("a")));
    w.apply(request(3, 1, acquire("other")));
    w.apply(request(2, 1, acquire("a")));
    let lock: LockName = "a".into();
    let start = w.history.page(&lock, WatchFrom::Now, &w.sm, w.index);
    let start = start.expect("a watch from now is answered at once");
    assert_eq!(start.state.as_ref().map(|s| s.waiting), Some(1));
    assert_eq!(start.resume, EventPosition::end_of(LogIndex(3)));
    assert!(start.events.is_empty() && !start.compacted);
    assert_eq!(
        w.history
            .page(&lock, WatchFrom::After(start.resume), &w.sm, w.index),
        None
    );
    // From the first grant: only the later events of this lock.
    let first = EventPosition {
        index: LogIndex(1),
        n: 0,
    };
    let page = w
        .history
        .page(&lock, WatchFrom::After(first), &w.sm, w.index);
    let page = page.expect("an event follows");
    assert_eq!(
        page.events,
        [LockEvent {
            at: EventPosition {
                index: LogIndex(3),
                n: 0
            },
            change: LockChange::Queue { waiting: 1 }
        }]
    );
    assert_eq!(page.resume, EventPosition::end_of(LogIndex(3)));
    assert_eq!(
        EventHistory::nothing_new(page.resume, LogIndex(7)).resume,
        EventPosition::end_of(LogIndex(7))
    );
}

#[test]
fn a_long_history_comes_in_pages_that_resume_where_they_stopped() {
    let mut w = World::new(10_000);
    let lock: LockName = "a".into();
    for client in 1..=(MAX_EVENTS_PER_PAGE as u128 + 10) {
        w.apply(request(client, 1, acquire("a")));
    }
    let from = WatchFrom::After(EventPosition::end_of(LogIndex(0)));
    let page = w.history.page(&lock, from, &w.sm, w.index).expect("events");
    assert_eq!(page.events.len(), MAX_EVENTS_PER_PAGE);
    assert_eq!(page.resume, page.events[MAX_EVENTS_PER_PAGE - 1].at);
    let rest = w
        .history
        .page(&lock, WatchFrom::After(page.resume), &w.sm, w.index);
    let rest = rest.expect("the rest");
    assert_eq!(rest.events.len(), 10);
    assert_eq!(rest.resume, EventPosition::end_of(w.index));
}

#[test]
fn large_proclaimed_values_shrink_the_window_to_its_byte_budget() {
    let mut w = World::new(4);
    w.apply(request(1, 1, acquire("a")));
    let budget = 4 * VALUE_BYTES_PER_EVENT;
    let proclaim = |byte| Op::Proclaim {
        lock: "a".into(),
        token: FencingToken(1),
        value: vec![byte; budget / 2],
    };
    w.apply(request(1, 2, proclaim(b'x')));
    w.apply(request(1, 3, proclaim(b'y')));
    assert_eq!(w.history.events.len(), 3, "within both budgets");
    w.apply(request(1, 4, proclaim(b'z')));
    // Four events fit the count, but three values of half the budget do not: the oldest
    // entries go until the values fit.
    assert_eq!(w.history.value_bytes, budget);
    assert_eq!(w.history.complete_after, LogIndex(2));
    assert_eq!(w.history.events.len(), 2);
}

#[test]
fn a_page_of_large_values_stops_at_about_page_bytes() {
    let mut w = World::new(10_000);
    w.apply(request(1, 1, acquire("a")));
    let value = vec![b'v'; MAX_VALUE];
    for seq in 2..100u64 {
        let proclaim = Op::Proclaim {
            lock: "a".into(),
            token: FencingToken(1),
            value: [&value[..MAX_VALUE - 1], &[seq as u8]].concat(),
        };
        w.apply(request(1, seq, proclaim));
    }
    let lock: LockName = "a".into();
    let from = WatchFrom::After(EventPosition::end_of(LogIndex(0)));
    let page = w.history.page(&lock, from, &w.sm, w.index).expect("events");
    let per_event = MAX_VALUE + EVENT_BYTES;
    assert_eq!(
        page.events.len(),
        crate::introspection::PAGE_BYTES / per_event + 2,
        "the grant, then proclaims until past the page's bytes"
    );
    assert_eq!(page.resume, page.events.last().map(|e| e.at).unwrap());
}

#[test]
fn a_watcher_behind_the_window_gets_the_state_marked_compacted() {
    let mut w = World::new(3);
    let lock: LockName = "a".into();
    w.apply(request(1, 1, acquire("a"))); // 1: granted
    w.apply(request(2, 1, acquire("a"))); // 2: queue 1
    let release = Op::Release {
        lock: "a".into(),
        token: FencingToken(1),
    };
    w.apply(request(1, 2, release)); // 3: released, granted, queue 0: evicts 1 and 2
    assert_eq!(w.history.complete_after, LogIndex(2));
    let behind = WatchFrom::After(EventPosition::end_of(LogIndex(1)));
    let page = w
        .history
        .page(&lock, behind, &w.sm, w.index)
        .expect("state");
    assert!(page.compacted);
    assert_eq!(page.state, Some(view(&w.sm, &lock)));
    assert_eq!(page.resume, EventPosition::end_of(LogIndex(3)));
    // The end of the last evicted entry is still covered; a position inside it is not.
    let covered = WatchFrom::After(EventPosition::end_of(LogIndex(2)));
    let page = w
        .history
        .page(&lock, covered, &w.sm, w.index)
        .expect("events");
    assert!(!page.compacted && page.events.len() == 3);
    let inside = WatchFrom::After(EventPosition {
        index: LogIndex(2),
        n: 0,
    });
    let page = w
        .history
        .page(&lock, inside, &w.sm, w.index)
        .expect("state");
    assert!(page.compacted);
    // After a snapshot is installed nothing before it is known.
    w.history.reset(LogIndex(10));
    let page = w.history.page(&lock, covered, &w.sm, LogIndex(10));
    assert!(page.expect("state").compacted);
}
