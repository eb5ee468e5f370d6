//! The bookkeeping of a driver that syncs in the background: which persists go into the next
//! sync, which effects must wait for a sync, and what to report when one finishes. Sans-IO, so
//! the tokio driver and the simulator share the rule rather than each writing it down.

use crate::node::{Effect, Persist};
use crate::types::LogPosition;
use std::collections::VecDeque;

/// Orders a node's effects against its syncs, one sync at a time (see [`Effect`] for the
/// contract it implements).
///
/// ```
/// # use dlm_core::{Input, PersistQueue};
/// # fn drive(node: &mut dlm_core::Node, now: dlm_core::Time) {
/// let mut queue = PersistQueue::default();
/// while let Some(effect) = node.poll_effect() {
///     if let Some(now_ok) = queue.push(effect) {
///         let _ = now_ok; // send, reply or mirror it at once
///     }
/// }
/// if let Some(batch) = queue.start() {
///     // ... write `batch` and sync it (in the background), then:
///     let done = queue.finish();
///     for released in done.released {
///         let _ = released; // the acknowledgements that waited for this sync
///     }
///     if let Some(position) = done.persisted {
///         node.handle(now, Input::Persisted(position));
///     }
/// }
/// # }
/// ```
#[derive(Debug, Default)]
pub struct PersistQueue {
    /// Persists polled since the last sync started: they share the next one (group commit).
    gathering: Vec<Persist>,
    /// What `gathering` holds.
    gathering_backlog: Backlog,
    /// The sync under way, if any.
    in_flight: Option<InFlight>,
    /// Effects that wait, each with the number of the sync it waits for.
    held: VecDeque<(u64, Effect)>,
    /// Syncs started so far; the one in flight is number `started`.
    started: u64,
}

/// What the sync under way covers.
#[derive(Debug)]
struct InFlight {
    /// The last log position it makes durable, if it moves the end of the log.
    position: Option<LogPosition>,
    /// What it writes.
    backlog: Backlog,
}

/// How much is waiting to be made durable: a driver stops taking input past a bound, so a
/// stalled disk cannot grow memory without end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Log entries.
    pub entries: usize,
    /// Their estimated size, and that of any snapshot, in bytes.
    pub bytes: usize,
}

impl Backlog {
    fn add(&mut self, persist: &Persist) {
        match persist {
            Persist::Entries(entries) => {
                self.entries += entries.len();
                self.bytes += entries.iter().map(crate::log::entry_size).sum::<usize>();
            }
            Persist::Snapshot { snapshot, .. } => self.bytes += snapshot.data.len(),
            Persist::HardState(_) => {}
        }
    }
}

/// What a finished sync lets the driver do.
#[derive(Debug, Default)]
#[must_use]
pub struct SyncDone {
    /// Report this to the node as [`crate::Input::Persisted`].
    pub persisted: Option<LogPosition>,
    /// Effects that waited for the sync, in the order they were polled: execute them now.
    pub released: Vec<Effect>,
}

impl PersistQueue {
    /// Takes one polled effect. Returns it if it may be executed at once; keeps it otherwise (a
    /// persist, for the next sync, or an effect that must wait for earlier persists).
    pub fn push(&mut self, effect: Effect) -> Option<Effect> {
        if let Effect::Persist(persist) = effect {
            self.gathering_backlog.add(&persist);
            self.gathering.push(persist);
            return None;
        }
        if !effect.waits_for_persist() {
            return Some(effect);
        }
        let waits_for = if !self.gathering.is_empty() {
            self.started + 1
        } else if self.in_flight.is_some() {
            self.started
        } else {
            return Some(effect);
        };
        self.drop_superseded(waits_for, &effect);
        self.held.push_back((waits_for, effect));
        None
    }

    /// An acceptance released by the same sync as an earlier one to the same leader in the same
    /// term, for at least as much of the log, makes the earlier one say nothing more: drop it.
    /// Otherwise a follower whose disk stalls would hold one per heartbeat without bound.
    fn drop_superseded(&mut self, waits_for: u64, newer: &Effect) {
        let Some((to, term, index)) = accepted_up_to(newer) else {
            return;
        };
        let same_sync = self
            .held
            .iter()
            .rev()
            .take_while(|(w, _)| *w == waits_for)
            .count();
        let first = self.held.len() - same_sync;
        let mut i = first;
        while i < self.held.len() {
            let superseded = accepted_up_to(&self.held[i].1)
                .is_some_and(|(t, tm, ix)| t == to && tm == term && ix <= index);
            if superseded {
                let _ = self.held.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// The persists of the next sync, in order, if no sync is under way and any are waiting.
    /// Write them all, sync once, then call [`PersistQueue::finish`].
    pub fn start(&mut self) -> Option<Vec<Persist>> {
        if self.in_flight.is_some() || self.gathering.is_empty() {
            return None;
        }
        let batch = std::mem::take(&mut self.gathering);
        let position = batch.iter().rev().find_map(Persist::log_position);
        self.in_flight = Some(InFlight {
            position,
            backlog: std::mem::take(&mut self.gathering_backlog),
        });
        self.started += 1;
        Some(batch)
    }

    /// The sync under way is durable. Returns what to report to the node and the effects it
    /// releases. Without a sync under way it returns nothing.
    pub fn finish(&mut self) -> SyncDone {
        let Some(done) = self.in_flight.take() else {
            return SyncDone::default();
        };
        let mut released = Vec::new();
        while self
            .held
            .front()
            .is_some_and(|(waits_for, _)| *waits_for <= self.started)
        {
            if let Some((_, effect)) = self.held.pop_front() {
                released.push(effect);
            }
        }
        SyncDone {
            persisted: done.position,
            released,
        }
    }

    /// Whether a sync is under way.
    pub fn is_syncing(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Whether nothing is gathered, in flight or held.
    pub fn is_idle(&self) -> bool {
        self.gathering.is_empty() && self.in_flight.is_none() && self.held.is_empty()
    }

    /// What is not yet durable, gathered or in flight.
    pub fn backlog(&self) -> Backlog {
        let in_flight = self
            .in_flight
            .as_ref()
            .map_or(Backlog::default(), |f| f.backlog);
        Backlog {
            entries: self.gathering_backlog.entries + in_flight.entries,
            bytes: self.gathering_backlog.bytes + in_flight.bytes,
        }
    }
}

/// To whom, in which term and up to where an accepted AppendResponse says the log matches.
fn accepted_up_to(effect: &Effect) -> Option<(crate::types::NodeId, crate::types::Term, u64)> {
    use crate::message::{AppendOutcome, PeerBody};
    let Effect::Send(msg) = effect else {
        return None;
    };
    match msg.body {
        PeerBody::AppendResponse {
            outcome: AppendOutcome::Accepted { match_index },
            ..
        } => Some((msg.to, msg.term, match_index.get())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
