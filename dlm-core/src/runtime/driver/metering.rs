//! The driver's counting for metrics ([`crate::runtime::metrics`]): what arrives and what is
//! answered, which persists carry a snapshot, which applied entries are expiries. Kept apart
//! from the loop so the loop's policy reads whole; every call here is a few atomics or one
//! hash-table operation on a table whose capacity is kept.

use super::Driver;
use crate::command::Command;
use crate::node::{Node, Persist};
use crate::protocol::{ClientRequest, ClientResponse, Op, Rejection, Reply};
use crate::runtime::metrics::{outcome_index, Counters, OpKind, StateGauges};
use crate::runtime::storage::Storage;
use crate::runtime::transport::Transport;
use crate::types::{ClientId, LogIndex, Seq, Time};
use rustc_hash::FxHashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Requests awaiting their answer past which the table starts again empty (their answers are
/// then counted by what the answer tells). Answers normally come within a batch or two; what
/// piles up is requests whose answer this node never sends (a retry answered elsewhere).
const MAX_PENDING: usize = 65_536;

/// A request seen arriving and not yet answered.
struct Pending {
    op: OpKind,
    arrived: Time,
}

pub(super) struct Metering {
    pub(super) counters: Arc<Counters>,
    pending: FxHashMap<(ClientId, Seq), Pending>,
    /// The last applied index whose entry was looked at.
    scanned: LogIndex,
}

impl Metering {
    pub(super) fn new(counters: Arc<Counters>, applied: LogIndex) -> Metering {
        Metering {
            counters,
            pending: FxHashMap::default(),
            scanned: applied,
        }
    }

    /// A client request is about to be handed to the node. A retry keeps the first arrival.
    pub(super) fn arrived(&mut self, request: &ClientRequest, now: Time) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.clear();
        }
        self.pending
            .entry((request.client, request.seq))
            .or_insert(Pending {
                op: OpKind::of(&request.op),
                arrived: now,
            });
    }

    /// An answer is going out; `now` is asked only for a grant.
    pub(super) fn answered(&mut self, response: &ClientResponse, now: impl FnOnce() -> Time) {
        let pending = self.pending.remove(&(response.client, response.seq));
        let op = match (&pending, &response.result) {
            (Some(p), _) => p.op,
            (None, Ok(reply)) => OpKind::of_reply(reply),
            (None, Err(_)) => OpKind::Unknown,
        };
        self.counters
            .count_answer(op, outcome_index(&response.result));
        if let Ok(Reply::Revoked { .. }) = &response.result {
            self.counters.revokes.fetch_add(1, Ordering::Relaxed);
        }
        if let (Some(p), Ok(Reply::Granted { .. })) = (pending, &response.result) {
            let waited = now().saturating_since(p.arrived);
            self.counters.lock_wait.observe(waited);
        }
    }

    /// The transport refused a request itself (see [`crate::runtime::Incoming::Refused`]).
    pub(super) fn refused(&self, op: &Op, rejection: Rejection) {
        self.counters
            .count_answer(OpKind::of(op), outcome_index(&Err(rejection)));
    }

    /// A persist is going to storage.
    pub(super) fn persisting(&self, persist: &Persist, now: impl FnOnce() -> Time) {
        if let Persist::Snapshot { snapshot, .. } = persist {
            self.counters.snapshot_taken(snapshot.last.index, now());
        }
    }

    /// Looks at the entries applied since the last call: counts expiries. Entries already
    /// compacted away (a snapshot installed from the leader) are skipped.
    pub(super) fn applied(&mut self, node: &Node) {
        let applied = node.applied_index();
        let floor = applied.minus(u64::try_from(node.log_len()).unwrap_or(u64::MAX));
        self.scanned = self.scanned.max(floor);
        while self.scanned < applied {
            self.scanned = self.scanned.next();
            if let Some(entry) = node.entry(self.scanned) {
                if matches!(entry.command, Command::Expire { .. }) {
                    self.counters.expiries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl<S: Storage, T: Transport> Driver<S, T> {
    /// What a scrape asked for: counted over the state machine now, between two batches.
    pub(super) fn state_gauges(&self) -> StateGauges {
        let sm = self.node.state_machine();
        let (mut held_locks, mut waiting_acquires) = (0, 0);
        for (_, lock) in sm.locks() {
            held_locks += usize::from(!lock.holders.is_empty());
            waiting_acquires += lock.waiters.len();
        }
        StateGauges {
            log_len: self.node.log_len(),
            held_locks,
            waiting_acquires,
            sessions: sm.sessions().count(),
            grants: sm.last_token().0,
            links: self.transport.peer_links(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Op, Rejection};
    use crate::types::FencingToken;
    use std::time::Duration;

    fn metering() -> Metering {
        let counters = Arc::new(Counters::new(tokio::time::Instant::now(), [], LogIndex(0)));
        Metering::new(counters, LogIndex(0))
    }

    fn request(client: u128, seq: u64, op: Op) -> ClientRequest {
        ClientRequest {
            client: ClientId(client),
            seq: Seq(seq),
            acked_below: Seq(1),
            pending: Vec::new(),
            op,
        }
    }

    fn answer(client: u128, seq: u64, result: Result<Reply, Rejection>) -> ClientResponse {
        ClientResponse {
            client: ClientId(client),
            seq: Seq(seq),
            result,
        }
    }

    fn acquire() -> Op {
        Op::Acquire {
            lock: "l".into(),
            lease: Duration::from_secs(1),
            wait: Some(Duration::from_secs(5)),
        }
    }

    const GRANTED: Reply = Reply::Granted {
        token: FencingToken(1),
        lease: Duration::from_secs(1),
    };

    #[test]
    fn an_answer_is_counted_under_the_op_that_arrived_and_a_grant_times_the_wait() {
        let mut m = metering();
        m.arrived(&request(1, 1, acquire()), Time::from_millis(10));
        // A retry while the first is pending keeps the first arrival.
        m.arrived(&request(1, 1, acquire()), Time::from_millis(30));
        m.answered(&answer(1, 1, Ok(GRANTED)), || Time::from_millis(50));
        let c = &m.counters;
        assert_eq!(c.answers(OpKind::Acquire, "ok"), 1);
        let wait = c.lock_wait.snapshot();
        assert_eq!(wait.count, 1);
        assert!(
            (wait.sum_seconds - 0.040).abs() < 1e-9,
            "{}",
            wait.sum_seconds
        );
        m.arrived(&request(1, 2, Op::KeepAlive), Time::from_millis(60));
        m.answered(
            &answer(1, 2, Err(Rejection::NotLeader { hint: None })),
            || unreachable!("only a grant asks the time"),
        );
        assert_eq!(m.counters.answers(OpKind::KeepAlive, "not_leader"), 1);
        assert!(m.pending.is_empty(), "answered requests are forgotten");
    }

    #[test]
    fn an_answer_to_a_request_not_seen_is_named_by_what_it_tells() {
        let mut m = metering();
        m.answered(&answer(2, 1, Ok(Reply::Released)), Time::default);
        m.answered(&answer(2, 2, Err(Rejection::Busy)), Time::default);
        assert_eq!(m.counters.answers(OpKind::Release, "ok"), 1);
        assert_eq!(m.counters.answers(OpKind::Unknown, "busy"), 1);
        assert_eq!(m.counters.lock_wait.snapshot().count, 0);
    }

    #[test]
    fn a_revoke_that_took_a_grant_is_counted_and_one_refused_is_not() {
        let mut m = metering();
        let revoke = || Op::Revoke { lock: "l".into() };
        m.arrived(&request(5, 1, revoke()), Time::ZERO);
        let taken = Reply::Revoked {
            client: ClientId(6),
            token: FencingToken(3),
        };
        m.answered(&answer(5, 1, Ok(taken)), Time::default);
        m.arrived(&request(5, 2, revoke()), Time::ZERO);
        m.answered(&answer(5, 2, Err(Rejection::NotHeld)), Time::default);
        assert_eq!(m.counters.revokes.load(Ordering::Relaxed), 1);
        assert_eq!(m.counters.answers(OpKind::Revoke, "ok"), 1);
    }

    #[test]
    fn a_refusal_by_the_transport_is_counted_under_its_op() {
        let m = metering();
        let op = Op::Locks {
            prefix: String::new(),
            after: None,
            limit: 1,
        };
        m.refused(&op, Rejection::NotAuthorized("no".into()));
        assert_eq!(m.counters.answers(OpKind::Locks, "not_authorized"), 1);
    }

    #[test]
    fn the_pending_table_starts_again_when_full() {
        let mut m = metering();
        for seq in 0..MAX_PENDING as u64 {
            m.arrived(&request(3, seq, Op::Status), Time::ZERO);
        }
        assert_eq!(m.pending.len(), MAX_PENDING);
        m.arrived(&request(4, 1, Op::Status), Time::ZERO);
        assert_eq!(m.pending.len(), 1);
    }
}
