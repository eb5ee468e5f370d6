//! What a running node counts about itself, for a metrics exporter (the `dlm` crate's
//! Prometheus listener reads it; an embedder may read it too, through
//! [`ServerHandle::metrics`](super::ServerHandle::metrics)).
//!
//! Counting stays off the node's path: the driver bumps plain atomics where it drains the
//! node's effects (replies, persists, syncs) and where it feeds peer messages, and nothing
//! touches the sans-IO core. Gauges that need the state machine (held locks, waiting
//! acquires, sessions, grants, log length) and the transport's link states are computed by the
//! driver only when a scrape asks, through a channel, between two batches; a scrape never
//! holds anything the node's work needs.

mod histogram;
mod labels;

pub use histogram::HistogramSnapshot;
pub(crate) use labels::{outcome_index, OpKind, OUTCOMES};

use super::transport::PeerLinkState;
use crate::protocol::NodeStatus;
use crate::types::{LogIndex, NodeId, Time};
use histogram::{AtomicHistogram, SYNC_BOUNDS, WAIT_BOUNDS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// A scrape's question to the driver, answered between two batches.
pub(crate) type GaugeRequest = oneshot::Sender<StateGauges>;

/// The counters a driver keeps; shared with every [`MetricsReader`].
#[derive(Debug)]
pub(crate) struct Counters {
    /// The driver's clock origin: [`Time`]s below are nanoseconds from it.
    origin: Instant,
    /// Answers sent, by [`OpKind`] and outcome ([`OUTCOMES`]).
    requests: [[AtomicU64; OUTCOMES.len()]; OpKind::COUNT],
    pub(crate) sync: AtomicHistogram,
    pub(crate) lock_wait: AtomicHistogram,
    /// `Expire` entries this node applied.
    pub(crate) expiries: AtomicU64,
    /// Locks taken away from their holders by an administrator. Nothing counts these yet:
    /// revoke is being added on another branch; its driver side bumps this where it sees the
    /// revoke's successful answer (next to `Metering::answered`) or its applied entry (next to
    /// the `Expire` count in `Metering::applied`).
    pub(crate) revokes: AtomicU64,
    /// When the last snapshot was handed to storage (a [`Time`] plus one; 0: none yet).
    snapshot_at: AtomicU64,
    snapshot_index: AtomicU64,
    /// The commit index when the node started, so that commits count from the start.
    commit_at_start: LogIndex,
    /// Per member of the configuration in force but this node: when a message from it last
    /// arrived (a [`Time`] plus one; 0: never). Replaced when the configuration changes
    /// ([`Counters::set_peers`]); every message reads it, so a lock for reading, uncontended.
    peers: RwLock<Box<[(NodeId, AtomicU64)]>>,
}

impl Counters {
    pub(crate) fn new(
        origin: Instant,
        peers: impl IntoIterator<Item = NodeId>,
        commit: LogIndex,
    ) -> Counters {
        Counters {
            origin,
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            sync: AtomicHistogram::new(SYNC_BOUNDS),
            lock_wait: AtomicHistogram::new(WAIT_BOUNDS),
            expiries: AtomicU64::new(0),
            revokes: AtomicU64::new(0),
            snapshot_at: AtomicU64::new(0),
            snapshot_index: AtomicU64::new(0),
            commit_at_start: commit,
            peers: RwLock::new(peers.into_iter().map(|p| (p, AtomicU64::new(0))).collect()),
        }
    }

    /// The peers are now `peers` (the configuration changed): a peer that stays keeps its last
    /// contact, a new one starts at never, a former one is no longer shown.
    pub(crate) fn set_peers(&self, peers: impl IntoIterator<Item = NodeId>) {
        let mut table = self.peers.write().unwrap_or_else(|e| e.into_inner());
        let next = peers
            .into_iter()
            .map(|p| {
                let at = table
                    .iter()
                    .find(|(id, _)| *id == p)
                    .map_or(0, |(_, at)| at.load(Ordering::Relaxed));
                (p, AtomicU64::new(at))
            })
            .collect();
        *table = next;
    }

    fn peers(&self) -> std::sync::RwLockReadGuard<'_, Box<[(NodeId, AtomicU64)]>> {
        self.peers.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn count_answer(&self, op: OpKind, outcome: usize) {
        if let Some(count) = self.requests[op.index()].get(outcome) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Answers counted under `op` and `outcome` (for tests).
    #[cfg(test)]
    pub(crate) fn answers(&self, op: OpKind, outcome: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.requests[op.index()][i].load(Ordering::Relaxed))
    }

    pub(crate) fn heard_from(&self, peer: NodeId, now: Time) {
        if let Some((_, at)) = self.peers().iter().find(|(id, _)| *id == peer) {
            at.store(now.as_nanos().saturating_add(1), Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot_taken(&self, index: LogIndex, now: Time) {
        self.snapshot_index.store(index.0, Ordering::Relaxed);
        self.snapshot_at
            .store(now.as_nanos().saturating_add(1), Ordering::Relaxed);
    }

    /// How long ago, by the driver's clock, the moment `stored` (a [`Time`] plus one) was.
    fn age(&self, stored: u64) -> Option<Duration> {
        let at = Duration::from_nanos(stored.checked_sub(1)?);
        Some(self.origin.elapsed().saturating_sub(at))
    }
}

/// The driver's answer to a scrape: what needs the node's state machine or the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateGauges {
    /// Entries in the in-memory log.
    pub log_len: usize,
    /// Locks with a holder.
    pub held_locks: usize,
    /// Acquires queued behind a holder.
    pub waiting_acquires: usize,
    /// Client sessions.
    pub sessions: usize,
    /// Grants ever made by the cluster: the last fencing token, which every grant raises by
    /// one, so every node reports the same once it has applied the same entries.
    pub grants: u64,
    /// The transport's links to the peers (empty if the transport does not tell).
    pub links: Vec<PeerLinkState>,
}

/// One kind of answer and how many there were.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCount {
    /// The request's kind: `acquire`, `release`, `cancel`, `keep_alive`, `append`, `read`,
    /// `status`, `locks`, `sessions`, `revoke`, or `unknown` (see the README's Metrics section).
    pub op: &'static str,
    /// `ok`, or the rejection in snake case (`busy`, `not_leader`, `timed_out`, ...).
    pub outcome: &'static str,
    /// Answers sent.
    pub count: u64,
}

/// What the node knows of one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerSnapshot {
    /// The peer.
    pub peer: NodeId,
    /// Time since a message from it last arrived (`None`: none since the start). A follower
    /// hears from the leader only, so a link between followers stays quiet.
    pub last_contact: Option<Duration>,
    /// The transport's view of the link, if the transport tells and the driver answered.
    pub link: Option<PeerLinkState>,
}

/// Everything a scrape reports, read at one moment.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Role, term, leader, commit and applied index, last log index.
    pub status: NodeStatus,
    /// `None` when the driver did not answer in time (stopped, or stuck in a long batch).
    pub state: Option<StateGauges>,
    /// Entries committed since the node started (its rate is commits per second).
    pub commits: u64,
    /// Answers to clients by kind and outcome; only those that occurred.
    pub requests: Vec<RequestCount>,
    /// Durations of the storage's syncs (writes plus `fdatasync`, one per group commit).
    pub sync: HistogramSnapshot,
    /// From an acquire's arrival at this node to its grant being sent, for grants this node
    /// answered (as leader).
    pub lock_wait: HistogramSnapshot,
    /// `Expire` entries applied: leases that ran out on the leader (one that finds the grant
    /// renewed or replaced in the meantime changes nothing, and is counted too).
    pub expiries: u64,
    /// Locks revoked by an administrator. Always 0 for now: revoke is being added on another
    /// branch, which bumps the counter behind this where the driver sees a revoke answered.
    pub revokes: u64,
    /// The index of the last snapshot this node stored since it started, and how long ago.
    pub snapshot: Option<(LogIndex, Duration)>,
    /// Every peer, in id order.
    pub peers: Vec<PeerSnapshot>,
}

/// Reads a running node's metrics; cheap to clone. Outlives the node: after it has stopped,
/// a read gives the last status and counters, without [`MetricsSnapshot::state`].
#[derive(Clone, Debug)]
pub struct MetricsReader {
    counters: Arc<Counters>,
    ask: mpsc::Sender<GaugeRequest>,
    status: watch::Receiver<NodeStatus>,
}

impl MetricsReader {
    pub(crate) fn new(
        counters: Arc<Counters>,
        ask: mpsc::Sender<GaugeRequest>,
        status: watch::Receiver<NodeStatus>,
    ) -> MetricsReader {
        MetricsReader {
            counters,
            ask,
            status,
        }
    }

    /// Reads everything, waiting at most `wait` for the driver's answer about the state
    /// machine and the links.
    pub async fn read(&self, wait: Duration) -> MetricsSnapshot {
        let state = tokio::time::timeout(wait, self.ask_driver())
            .await
            .ok()
            .flatten();
        self.snapshot(state)
    }

    async fn ask_driver(&self) -> Option<StateGauges> {
        let (tx, rx) = oneshot::channel();
        self.ask.send(tx).await.ok()?;
        rx.await.ok()
    }

    fn snapshot(&self, state: Option<StateGauges>) -> MetricsSnapshot {
        let c = &self.counters;
        let status = self.status.borrow().clone();
        let mut requests = Vec::new();
        for op in OpKind::ALL {
            for (outcome, count) in OUTCOMES.iter().zip(&c.requests[op.index()]) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    requests.push(RequestCount {
                        op: op.label(),
                        outcome,
                        count,
                    });
                }
            }
        }
        let snapshot = c
            .age(c.snapshot_at.load(Ordering::Relaxed))
            .map(|age| (LogIndex(c.snapshot_index.load(Ordering::Relaxed)), age));
        let links = state.as_ref().map(|s| s.links.as_slice()).unwrap_or(&[]);
        let mut peers: Vec<PeerSnapshot> = c
            .peers()
            .iter()
            .map(|(peer, at)| PeerSnapshot {
                peer: *peer,
                last_contact: c.age(at.load(Ordering::Relaxed)),
                link: links.iter().find(|l| l.peer == *peer).cloned(),
            })
            .collect();
        peers.sort_by_key(|p| p.peer);
        MetricsSnapshot {
            commits: status.commit.0.saturating_sub(c.commit_at_start.0),
            status,
            state,
            requests,
            sync: c.sync.snapshot(),
            lock_wait: c.lock_wait.snapshot(),
            expiries: c.expiries.load(Ordering::Relaxed),
            revokes: c.revokes.load(Ordering::Relaxed),
            snapshot,
            peers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contacts(counters: &Counters) -> Vec<(NodeId, u64)> {
        let peers = counters.peers();
        peers
            .iter()
            .map(|(id, at)| (*id, at.load(Ordering::Relaxed)))
            .collect()
    }

    /// A new configuration keeps what is known of the peers that stay, starts the new ones at
    /// never, and forgets the former ones; a message from a non-member is not counted.
    #[test]
    fn the_peer_table_follows_the_configuration_and_keeps_what_it_knew() {
        let counters = Counters::new(Instant::now(), [NodeId(2), NodeId(3)], LogIndex(0));
        counters.heard_from(NodeId(2), Time::from_nanos(41));
        counters.heard_from(NodeId(4), Time::from_nanos(7));
        assert_eq!(contacts(&counters), vec![(NodeId(2), 42), (NodeId(3), 0)]);
        counters.set_peers([NodeId(2), NodeId(4)]);
        assert_eq!(contacts(&counters), vec![(NodeId(2), 42), (NodeId(4), 0)]);
        counters.heard_from(NodeId(4), Time::from_nanos(99));
        assert_eq!(contacts(&counters), vec![(NodeId(2), 42), (NodeId(4), 100)]);
    }
}
