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
mod tests {
    use super::*;
    use crate::command::{Command, Entry};
    use crate::message::{AppendOutcome, PeerBody, PeerMessage};
    use crate::node::HardState;
    use crate::protocol::{ClientResponse, Rejection};
    use crate::types::{ClientId, ConnId, LogIndex, NodeId, Seq, Term};

    fn entries(term: u64, from: u64, to: u64) -> Effect {
        Effect::Persist(Persist::Entries(
            (from..=to)
                .map(|i| Entry {
                    term: Term(term),
                    index: LogIndex(i),
                    command: Command::Noop,
                })
                .collect(),
        ))
    }

    fn ack(index: u64) -> Effect {
        Effect::Send(PeerMessage {
            from: NodeId(2),
            to: NodeId(1),
            term: Term(1),
            body: PeerBody::AppendResponse {
                prev_index: LogIndex(0),
                outcome: AppendOutcome::Accepted {
                    match_index: LogIndex(index),
                },
            },
        })
    }

    fn append_entries() -> Effect {
        Effect::Send(PeerMessage {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(1),
            body: PeerBody::AppendEntries {
                prev: LogPosition::default(),
                entries: Vec::new(),
                commit: LogIndex(0),
            },
        })
    }

    fn reply() -> Effect {
        Effect::Reply {
            conn: ConnId(1),
            response: ClientResponse {
                client: ClientId(1),
                seq: Seq(1),
                result: Err(Rejection::NotLeader { hint: None }),
            },
        }
    }

    fn position(term: u64, index: u64) -> Option<LogPosition> {
        Some(LogPosition::new(Term(term), LogIndex(index)))
    }

    #[test]
    fn nothing_waits_while_nothing_is_unsynced() {
        let mut q = PersistQueue::default();
        assert_eq!(q.push(ack(3)), Some(ack(3)));
        assert_eq!(q.push(reply()), Some(reply()));
        assert!(q.start().is_none());
        assert!(q.is_idle());
    }

    #[test]
    fn an_ack_waits_for_the_persist_before_it_but_other_effects_do_not() {
        let mut q = PersistQueue::default();
        assert_eq!(q.push(entries(1, 1, 2)), None);
        assert_eq!(q.push(ack(2)), None);
        assert_eq!(q.push(append_entries()), Some(append_entries()));
        assert_eq!(q.push(reply()), Some(reply()));
        let batch = q.start().unwrap();
        assert_eq!(batch.len(), 1);
        let done = q.finish();
        assert_eq!(done.persisted, position(1, 2));
        assert_eq!(done.released, vec![ack(2)]);
        assert!(q.is_idle());
    }

    #[test]
    fn persists_polled_during_a_sync_share_the_next_one() {
        let mut q = PersistQueue::default();
        let _ = q.push(entries(1, 1, 1));
        let first = q.start().unwrap();
        assert_eq!(first.len(), 1);
        let _ = q.push(entries(1, 2, 2));
        let _ = q.push(Effect::Persist(Persist::HardState(HardState::default())));
        let _ = q.push(entries(1, 3, 4));
        assert!(q.start().is_none(), "one sync at a time");
        assert_eq!(q.backlog().entries, 4);
        let _ = q.finish();
        let second = q.start().unwrap();
        assert_eq!(second.len(), 3);
        assert_eq!(q.finish().persisted, position(1, 4));
        assert_eq!(q.backlog().entries, 0);
    }

    #[test]
    fn an_ack_polled_during_a_sync_waits_for_that_sync_only_if_nothing_was_gathered_since() {
        let mut q = PersistQueue::default();
        let _ = q.push(entries(1, 1, 1));
        let _ = q.start();
        // Nothing new gathered: waits for the sync under way.
        assert_eq!(q.push(ack(1)), None);
        let _ = q.push(entries(1, 2, 2));
        // Something gathered: waits for the next sync too.
        assert_eq!(q.push(ack(2)), None);
        let done = q.finish();
        assert_eq!(done.released, vec![ack(1)]);
        let _ = q.start();
        assert_eq!(q.finish().released, vec![ack(2)]);
    }

    #[test]
    fn the_backlog_counts_bytes_of_appends_and_snapshots_until_their_sync_is_done() {
        let mut q = PersistQueue::default();
        let append = Entry {
            term: Term(1),
            index: LogIndex(1),
            command: Command::Client(crate::protocol::ClientRequest {
                client: ClientId(1),
                seq: Seq(1),
                acked_below: Seq(1),
                op: crate::protocol::Op::Append {
                    lock: "l".into(),
                    token: crate::types::FencingToken(1),
                    file: "f".into(),
                    data: vec![0; 10_000],
                },
            }),
        };
        let _ = q.push(Effect::Persist(Persist::Entries(vec![append])));
        let snapshot = crate::node::Snapshot {
            last: LogPosition::default(),
            data: vec![0; 5_000],
        };
        let _ = q.push(Effect::Persist(Persist::Snapshot {
            snapshot: std::sync::Arc::new(snapshot),
            replaces_log: false,
        }));
        let backlog = q.backlog();
        assert_eq!(backlog.entries, 1);
        assert!(backlog.bytes >= 15_000, "{backlog:?}");
        let _ = q.start();
        assert_eq!(q.backlog(), backlog, "in flight still counts");
        let _ = q.finish();
        assert_eq!(q.backlog(), Backlog::default());
    }

    #[test]
    fn heartbeat_acks_held_for_one_sync_collapse_into_the_newest() {
        let mut q = PersistQueue::default();
        let _ = q.push(entries(1, 1, 1));
        let _ = q.start();
        let _ = q.push(entries(1, 2, 2));
        // A stalled disk: heartbeats keep coming, each answered after the next sync.
        for _ in 0..100 {
            let _ = q.push(ack(2));
        }
        let _ = q.push(ack(3));
        let _ = q.finish();
        let _ = q.start();
        assert_eq!(q.finish().released, vec![ack(3)]);
    }

    #[test]
    fn an_ack_for_an_earlier_sync_is_not_dropped_for_a_later_one() {
        let mut q = PersistQueue::default();
        let _ = q.push(entries(1, 1, 1));
        let _ = q.start();
        let _ = q.push(ack(1));
        let _ = q.push(entries(1, 2, 2));
        let _ = q.push(ack(2));
        assert_eq!(q.finish().released, vec![ack(1)]);
        let _ = q.start();
        assert_eq!(q.finish().released, vec![ack(2)]);
    }

    #[test]
    fn a_sync_of_hard_state_alone_reports_no_position() {
        let mut q = PersistQueue::default();
        let _ = q.push(Effect::Persist(Persist::HardState(HardState::default())));
        let _ = q.start();
        assert_eq!(q.finish().persisted, None);
        assert_eq!(q.finish().released, Vec::new(), "no sync is under way");
    }

    #[test]
    fn the_report_is_the_last_entry_written_even_when_a_later_persist_truncates() {
        let mut q = PersistQueue::default();
        let _ = q.push(entries(1, 1, 5));
        let _ = q.push(entries(2, 3, 3));
        let _ = q.start();
        assert_eq!(q.finish().persisted, position(2, 3));
    }
}
