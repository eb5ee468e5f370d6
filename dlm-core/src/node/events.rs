//! The window of recent lock events every node keeps, for watches.
//!
//! Events are derived from each committed entry by comparing the locks it touches before and
//! after it is applied, so they are a function of the committed log alone: every node numbers
//! them the same, and a watcher can resume at any leader from the position it reached. The
//! window holds the most recent `capacity` events; a node knows nothing of what came before
//! the state it started or installed a snapshot from.

use crate::command::Command;
use crate::names::LockName;
use crate::protocol::{
    EventPosition, HolderView, LockChange, LockEvent, LockView, Op, WatchFrom, WatchPage,
};
use crate::state_machine::{Holder, LockState, StateMachine};
use crate::types::{FencingToken, LogIndex};
use std::collections::VecDeque;

/// Most events in one answer to a watch (fewer once their values pass about
/// [`crate::introspection::PAGE_BYTES`]).
pub const MAX_EVENTS_PER_PAGE: usize = 256;

/// About what an event without a value takes on the wire.
const EVENT_BYTES: usize = 48;

/// The locks an entry may change, with what of their state the events are read from, taken
/// before it.
pub(crate) struct Touched(Vec<(LockName, Before)>);

/// What of a lock's state its events compare: the grants' tokens (sorted, so that finding one
/// is a binary search: a lock with thousands of readers costs each entry that touches it one
/// pass over them, not a pass per grant), the queue's length and the proclaimed value.
struct Before {
    tokens: Vec<FencingToken>,
    waiting: u32,
    proclaimed: Option<(FencingToken, Vec<u8>)>,
}

impl Before {
    fn of(sm: &StateMachine, lock: &LockName) -> Before {
        let Some(state) = sm.lock(lock) else {
            return Before {
                tokens: Vec::new(),
                waiting: 0,
                proclaimed: None,
            };
        };
        let mut tokens: Vec<FencingToken> = state.holders.iter().map(|h| h.token).collect();
        tokens.sort_unstable();
        Before {
            tokens,
            waiting: waiting(state),
            proclaimed: sm.proclaimed(lock).map(|(t, v)| (t, v.to_vec())),
        }
    }
}

fn waiting(state: &LockState) -> u32 {
    u32::try_from(state.waiters.len()).unwrap_or(u32::MAX)
}

/// What an entry did to grants that ended under it.
#[derive(Clone, Copy)]
enum EndReason {
    Released,
    Expired,
    Revoked,
}

/// A node's window of recent events.
#[derive(Debug)]
pub(crate) struct EventHistory {
    /// Events in position order, each with its lock.
    events: VecDeque<(LockName, LockEvent)>,
    /// Every event of every entry after this index is in the window.
    complete_after: LogIndex,
    capacity: usize,
    /// What the events' values take (proclaimed values, up to `MAX_VALUE` each), held under
    /// [`VALUE_BYTES_PER_EVENT`] times the capacity, so a burst of large proclaims cannot make
    /// the window cost more than its count of small events suggests.
    value_bytes: usize,
}

/// The value bytes the window allows per event of its capacity, on average.
pub const VALUE_BYTES_PER_EVENT: usize = 64;

fn value_len(event: &LockEvent) -> usize {
    match &event.change {
        LockChange::Proclaimed { value, .. } => value.len(),
        _ => 0,
    }
}

/// A lock's state as watchers see it.
pub(crate) fn view(sm: &StateMachine, lock: &LockName) -> LockView {
    let Some(state) = sm.lock(lock) else {
        return LockView::default();
    };
    LockView {
        holders: state
            .holders
            .iter()
            .map(|h| HolderView {
                client: h.client.tag(),
                token: h.token,
                mode: h.mode,
            })
            .collect(),
        waiting: waiting(state),
        proclaimed: sm.proclaimed(lock).map(|(t, v)| (t, v.to_vec())),
    }
}

impl EventHistory {
    /// A window that starts empty after `index` (what the node's state already reflects).
    pub(crate) fn new(index: LogIndex, capacity: usize) -> EventHistory {
        EventHistory {
            events: VecDeque::new(),
            complete_after: index,
            capacity,
            value_bytes: 0,
        }
    }

    /// Every event in the window, in position order, with its lock.
    #[cfg(feature = "sim")]
    pub(crate) fn all(&self) -> impl DoubleEndedIterator<Item = &(LockName, LockEvent)> {
        self.events.iter()
    }

    /// Forgets every event: the state jumped to `index` (a snapshot was installed).
    pub fn reset(&mut self, index: LogIndex) {
        self.events.clear();
        self.value_bytes = 0;
        self.complete_after = index;
    }

    /// The locks `command` may change, with their state now, before it is applied.
    pub(crate) fn before(&self, command: &Command, sm: &StateMachine) -> Touched {
        if self.capacity == 0 {
            return Touched(Vec::new());
        }
        let locks: Vec<LockName> = match command {
            Command::Client(request) => match &request.op {
                Op::Release { lock, .. }
                | Op::Cancel { lock, .. }
                | Op::Revoke { lock }
                | Op::Proclaim { lock, .. } => vec![lock.clone()],
                op => op
                    .as_acquire()
                    .map(|a| a.lock.clone())
                    .into_iter()
                    .collect(),
            },
            Command::Expire { lock, .. }
            | Command::LiftDelay { lock }
            | Command::CancelWait { lock, .. } => vec![lock.clone()],
            Command::ExpireSession { client } => match sm.session(*client) {
                Some(session) => {
                    let waiting = session.slots.values().filter_map(|slot| match slot {
                        crate::state_machine::Slot::Waiting(lock) => Some(lock.clone()),
                        _ => None,
                    });
                    let mut all: Vec<LockName> = session.held.to_vec();
                    all.extend(waiting);
                    all.sort();
                    all.dedup();
                    all
                }
                None => Vec::new(),
            },
            Command::Noop | Command::Membership { .. } => Vec::new(),
        };
        Touched(
            locks
                .into_iter()
                .map(|lock| {
                    let before = Before::of(sm, &lock);
                    (lock, before)
                })
                .collect(),
        )
    }

    /// Records the events entry `index` (`command`) made, comparing the touched locks with
    /// their state after it; returns the locks that had any.
    pub(crate) fn record(
        &mut self,
        index: LogIndex,
        command: &Command,
        touched: Touched,
        sm: &StateMachine,
    ) -> Vec<LockName> {
        let mut changed = Vec::new();
        let mut n = 0u32;
        let reason = end_reason(command);
        for (lock, before) in touched.0 {
            let changes = changes(&before, sm, &lock, reason);
            if changes.is_empty() {
                continue;
            }
            for change in changes {
                let at = EventPosition { index, n };
                n = n.saturating_add(1);
                let event = LockEvent { at, change };
                self.value_bytes += value_len(&event);
                self.events.push_back((lock.clone(), event));
            }
            changed.push(lock);
        }
        self.evict();
        changed
    }

    /// Drops the oldest entries' events beyond the capacity (in events, and in value bytes), a
    /// whole entry at a time, so that the window always holds every event of the entries it
    /// covers.
    fn evict(&mut self) {
        let max_value_bytes = self.capacity.saturating_mul(VALUE_BYTES_PER_EVENT);
        while self.events.len() > self.capacity || self.value_bytes > max_value_bytes {
            let Some((_, oldest)) = self.events.front() else {
                break;
            };
            let index = oldest.at.index;
            while self
                .events
                .front()
                .is_some_and(|(_, e)| e.at.index == index)
            {
                if let Some((_, event)) = self.events.pop_front() {
                    self.value_bytes -= value_len(&event);
                }
            }
            self.complete_after = self.complete_after.max(index);
        }
    }

    /// Whether every event after `position` is still in the window.
    fn covers(&self, position: EventPosition) -> bool {
        position.index > self.complete_after
            || (position.index == self.complete_after && position.is_end())
    }

    /// The answer to a watch of `lock` from `from` at a node that has applied up to `applied`,
    /// or `None` if there is nothing to report yet (the watch waits).
    pub fn page(
        &self,
        lock: &LockName,
        from: WatchFrom,
        sm: &StateMachine,
        applied: LogIndex,
    ) -> Option<WatchPage> {
        let now = EventPosition::end_of(applied);
        let after = match from {
            WatchFrom::After(position) if self.covers(position) => position,
            WatchFrom::After(_) => return Some(state_page(lock, sm, now, true)),
            WatchFrom::Now => return Some(state_page(lock, sm, now, false)),
        };
        let start = self.events.partition_point(|(_, e)| e.at <= after);
        let mut events = Vec::new();
        let mut truncated = false;
        let mut bytes = 0;
        for (name, event) in self.events.range(start..) {
            if name != lock {
                continue;
            }
            // At least one event, however large its value, so that a watch always moves on.
            let full =
                events.len() == MAX_EVENTS_PER_PAGE || bytes > crate::introspection::PAGE_BYTES;
            if full {
                truncated = true;
                break;
            }
            bytes += EVENT_BYTES + value_len(event);
            events.push(event.clone());
        }
        let resume = match events.last() {
            None => return None,
            Some(last) if truncated => last.at,
            Some(_) => now.max(after),
        };
        Some(WatchPage {
            state: None,
            state_at: resume,
            compacted: false,
            events,
            resume,
        })
    }

    /// The answer to a watch that waited for `wait` and saw nothing.
    pub fn nothing_new(after: EventPosition, applied: LogIndex) -> WatchPage {
        let resume = after.max(EventPosition::end_of(applied));
        WatchPage {
            state: None,
            state_at: resume,
            compacted: false,
            events: Vec::new(),
            resume,
        }
    }
}

/// A page that carries the lock's current state instead of events.
fn state_page(lock: &LockName, sm: &StateMachine, at: EventPosition, compacted: bool) -> WatchPage {
    WatchPage {
        state: Some(view(sm, lock)),
        state_at: at,
        compacted,
        events: Vec::new(),
        resume: at,
    }
}

/// What changed from `before` to the state of `lock` now: grants that ended (oldest first),
/// then new grants (oldest first), then a new proclaimed value, then the queue's length.
fn changes(
    before: &Before,
    sm: &StateMachine,
    lock: &LockName,
    reason: EndReason,
) -> Vec<LockChange> {
    let state = sm.lock(lock);
    let holders = state.map_or(&[][..], |s| s.holders.as_slice());
    let mut now: Vec<FencingToken> = holders.iter().map(|h| h.token).collect();
    now.sort_unstable();
    let mut changes = Vec::new();
    for &token in before
        .tokens
        .iter()
        .filter(|t| now.binary_search(t).is_err())
    {
        changes.push(match reason {
            EndReason::Released => LockChange::Released { token },
            EndReason::Expired => LockChange::Expired { token },
            EndReason::Revoked => LockChange::Revoked { token },
        });
    }
    let mut granted: Vec<&Holder> = holders
        .iter()
        .filter(|h| before.tokens.binary_search(&h.token).is_err())
        .collect();
    granted.sort_unstable_by_key(|h| h.token);
    for new in granted {
        changes.push(LockChange::Granted {
            client: new.client.tag(),
            token: new.token,
            mode: new.mode,
        });
    }
    let proclaimed = sm.proclaimed(lock);
    if proclaimed != before.proclaimed.as_ref().map(|(t, v)| (*t, v.as_slice())) {
        if let Some((token, value)) = proclaimed {
            changes.push(LockChange::Proclaimed {
                token,
                value: value.to_vec(),
            });
        }
    }
    let waiting_now = state.map_or(0, waiting);
    if waiting_now != before.waiting {
        changes.push(LockChange::Queue {
            waiting: waiting_now,
        });
    }
    changes
}

fn end_reason(command: &Command) -> EndReason {
    match command {
        Command::Expire { .. } | Command::ExpireSession { .. } => EndReason::Expired,
        Command::Client(request) if matches!(request.op, Op::Revoke { .. }) => EndReason::Revoked,
        _ => EndReason::Released,
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
