//! Linearizable reads without the log (read-index). A read is answered from the leader's state
//! machine once two things hold: a majority has acknowledged this leader's term in a round that
//! started after the read arrived (so no newer leader had been elected before it), and the state
//! machine has applied everything committed when it arrived. Nothing is written or synced, so a
//! read costs one round trip to the followers instead of a log entry and a sync on a majority.

use super::progress::reached_by_quorum;
use super::Node;
use crate::message::PeerBody;
use crate::names::FileName;
use crate::types::{ClientId, ConnId, LogIndex, NodeId, Seq};
use std::collections::{BTreeMap, VecDeque};

/// A read waiting for its round and its index.
#[derive(Clone, Debug)]
struct PendingRead {
    conn: ConnId,
    client: ClientId,
    seq: Seq,
    file: FileName,
    offset: u64,
    /// Answered once the state machine has applied this far.
    index: LogIndex,
}

/// A leader's reads in flight.
#[derive(Debug, Default)]
pub(super) struct Reads {
    /// Rounds started so far; a round is one ReadIndex to every follower.
    round: u64,
    /// The highest round each follower has acknowledged in this term.
    acked: BTreeMap<NodeId, u64>,
    /// Reads that arrived since the last round started: they go into the next one.
    unsent: Vec<PendingRead>,
    /// Reads in a round, in the order they arrived, with the round.
    in_round: VecDeque<(u64, PendingRead)>,
}

impl Reads {
    /// Every read not yet answered, for a leader that steps down.
    pub fn drain(&mut self) -> impl Iterator<Item = (ConnId, ClientId, Seq)> + '_ {
        let unsent = self.unsent.drain(..);
        let in_round = self.in_round.drain(..).map(|(_, r)| r);
        unsent.chain(in_round).map(|r| (r.conn, r.client, r.seq))
    }
}

impl Node {
    /// Takes a read at the leader. It waits at least for everything committed now, and for
    /// this term's first entry: entries of earlier terms may be committed without this leader
    /// knowing until its own entry commits.
    pub(super) fn start_read(
        &mut self,
        conn: ConnId,
        client: ClientId,
        seq: Seq,
        file: FileName,
        offset: u64,
    ) {
        let commit = self.commit;
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        let index = commit.max(leader.term_start);
        leader.reads.unsent.push(PendingRead {
            conn,
            client,
            seq,
            file,
            offset,
            index,
        });
    }

    /// Starts a round for the reads that arrived since the last one (called with the flush, so
    /// one round serves every read of a batch).
    pub(super) fn start_read_round(&mut self) {
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        if leader.reads.unsent.is_empty() {
            return;
        }
        leader.reads.round += 1;
        let round = leader.reads.round;
        let reads = std::mem::take(&mut leader.reads.unsent);
        leader
            .reads
            .in_round
            .extend(reads.into_iter().map(|r| (round, r)));
        for peer in leader.progress.keys() {
            let body = PeerBody::ReadIndex { round };
            self.out.send(self.cfg.id, *peer, self.term, body);
        }
        self.serve_reads();
    }

    /// A follower was asked to confirm this leader's term.
    pub(super) fn on_read_index(&mut self, from: NodeId, round: u64) {
        self.heard_from_leader(from);
        self.send(from, PeerBody::ReadIndexAck { round });
    }

    /// A follower confirmed this leader's term up to `round`.
    pub(super) fn on_read_index_ack(&mut self, from: NodeId, round: u64) {
        let now = self.now;
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        if let Some(p) = leader.progress.get_mut(&from) {
            p.last_heard = now;
        }
        let acked = leader.reads.acked.entry(from).or_default();
        *acked = (*acked).max(round);
        self.serve_reads();
    }

    /// Answers every read whose round a majority has confirmed and whose index is applied.
    pub(super) fn serve_reads(&mut self) {
        let quorum = self.cfg.quorum();
        let applied = self.applied;
        let Some(leader) = self.role.leader_mut() else {
            return;
        };
        // Called after every apply: nothing to do without reads in a round.
        if leader.reads.in_round.is_empty() {
            return;
        }
        // The highest round confirmed by a majority, this leader included.
        let mut rounds: Vec<u64> = leader
            .progress
            .keys()
            .map(|id| leader.reads.acked.get(id).copied().unwrap_or(0))
            .collect();
        rounds.push(leader.reads.round);
        let Some(confirmed) = reached_by_quorum(rounds, quorum) else {
            return;
        };
        let mut ready = Vec::new();
        while leader
            .reads
            .in_round
            .front()
            .is_some_and(|(round, read)| *round <= confirmed && read.index <= applied)
        {
            if let Some((_, read)) = leader.reads.in_round.pop_front() {
                ready.push(read);
            }
        }
        for read in ready {
            let answer = self.sm.read(&read.file, read.offset, &self.cfg.limits);
            self.reply(read.conn, read.client, read.seq, answer);
        }
    }
}
